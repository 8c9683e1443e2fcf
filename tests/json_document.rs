//! `--format json` lists connections by first packet while they finish in another order; past
//! a limit of memory it sorts them through temporary files. Forced to write a file every few
//! records, the documents must be the same bytes as when sorted in memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::Value;
use tcplife::analyze::{NoProgress, Settings, analyze};
use tcplife::report::json::JsonDocument;

/// The document of `path`, holding at most `limit` bytes of records in memory.
fn document(path: &str, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = JsonDocument::with_limit(&mut out, limit);
    let report = analyze(
        &[path.to_owned()],
        Settings::default(),
        &mut sink,
        &mut NoProgress,
    )
    .unwrap();
    assert!(report.first_error().is_none(), "{path}");
    drop(sink);
    out
}

/// Connection ids in the order `--format jsonl` writes them: the order they finish.
fn finish_order(path: &str) -> Vec<u64> {
    let out = tcplife(&["analyze", "--format", "jsonl", "--quiet", path]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v["id"].as_u64())
        .collect()
}

#[test]
fn records_that_finish_out_of_order_are_sorted_the_same_through_files() {
    let path = "testdata/zeek/ssh-basic/ssh.pcap";
    let finished = finish_order(path);
    let in_memory = document(path, usize::MAX);
    let doc: Value = serde_json::from_slice(&in_memory).unwrap();
    let listed: Vec<u64> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed.len(), finished.len());
    assert_ne!(listed, finished, "nothing to sort");
    // One temporary file per record, and files of a few records each.
    for limit in [1, 16 << 10, 64 << 10] {
        assert!(document(path, limit) == in_memory, "limit {limit}");
    }
}

#[test]
fn a_fixture_sorted_through_more_files_than_are_merged_at_once_is_its_expectation() {
    let path = "testdata/kernel/many-connections.pcap";
    // A file per record, 250 of them: more than are merged at once, so some are merged on
    // the way.
    let through_files = document(path, 1);
    let expected = std::fs::read(root().join("testdata/kernel/many-connections.expected.json"));
    assert!(
        through_files == expected.unwrap(),
        "differs from the expectation"
    );
}

//! Every trace from Zeek's test suite (testdata/zeek) is analysed to its end without error,
//! and the JSON is valid against the schema. Agreement with Zeek's own conn_state is printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::Value;

#[test]
fn every_zeek_trace_is_analysed_without_error() {
    let dir = root().join("testdata/zeek");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "expected the 30 Zeek cases, found {}",
        cases.len()
    );
    println!(
        "{:<24} {:>8} {:>12} {:>10}",
        "case", "packets", "connections", "undecodable"
    );
    for case in cases {
        let traces = captures_in(&case);
        assert_eq!(traces.len(), 1, "{}: one trace per case", case.display());
        let doc = analyze_json(&relative(&traces[0]));
        assert_schema_valid(&doc, &relative(&traces[0]));
        let input = &doc["inputs"][0];
        assert_eq!(input["error"], Value::Null);
        let undecodable: u64 = input["undecodable"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        println!(
            "{:<24} {:>8} {:>12} {:>10}",
            case.file_name().unwrap().to_string_lossy(),
            input["packets"],
            doc["summary"]["connections"],
            undecodable
        );
        assert!(input["packets"].as_u64().unwrap() > 0);
    }
}

//! `tcplife check` end to end through the binary: bless, check, partial expectations, the
//! directory form and the exit codes. The project's own kernel fixtures are checked with it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;

/// A scratch directory holding copies of some kernel fixtures.
fn scratch(name: &str, fixtures: &[&str]) -> TempDir {
    let dir = TempDir::new(&format!("check-{name}"));
    for f in fixtures {
        std::fs::copy(
            root().join(format!("testdata/kernel/{f}.pcap")),
            dir.join(format!("{f}.pcap")),
        )
        .unwrap();
    }
    dir
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tcplife(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn the_projects_fixtures_match_their_expectations() {
    let (code, stdout, stderr) = run(&["check", "testdata/kernel"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let captures = captures_in(&root().join("testdata/kernel")).len();
    assert!(
        stdout.contains(&format!(
            "{captures} captures: {captures} ok, 0 different, 0 errors"
        )),
        "{stdout}"
    );
}

#[test]
fn bless_then_check_matches() {
    let dir = scratch("bless", &["lost-final-ack"]);
    let capture = dir.join("lost-final-ack.pcap");
    let (code, out, _) = run(&["check", &s(&capture), "--bless"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("wrote"), "{out}");
    let expect = dir.join("lost-final-ack.pcap.expect.json");
    let text = std::fs::read_to_string(&expect).unwrap();
    assert!(
        !text.contains(&s(&dir)),
        "no absolute paths in an expectation"
    );
    assert!(
        !text.contains("version"),
        "no tool version in an expectation"
    );
    let v = read_json(&expect);
    assert_eq!(v["connections"][0]["outcome"], "closed_unacked");
    assert_eq!(
        v["connections"][0]["anomalies"],
        json!(["missing_final_ack"])
    );
    let (code, out, _) = run(&["check", &s(&capture)]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("matches"));
    // Blessing twice gives the same bytes.
    run(&["check", &s(&capture), "--bless"]);
    assert_eq!(std::fs::read_to_string(&expect).unwrap(), text);
}

#[test]
fn a_difference_names_the_connection_the_field_and_both_values() {
    let dir = scratch("differ", &["refused"]);
    let capture = dir.join("refused.pcap");
    run(&["check", &s(&capture), "--bless"]);
    let expect = dir.join("refused.pcap.expect.json");
    let mut v = read_json(&expect);
    v["connections"][0]["outcome"] = json!("closed");
    v["summary"]["connections"] = json!(2);
    write_json(&expect, &v);
    let (code, out, _) = run(&["check", &s(&capture)]);
    assert_eq!(code, Some(1), "{out}");
    let name = v["connections"][0]["connection"].as_str().unwrap();
    assert!(
        out.contains(&format!(
            "connection {name}: outcome: expected \"closed\", actual \"refused\""
        )),
        "{out}"
    );
    assert!(
        out.contains("summary.connections: expected 2, actual 1"),
        "{out}"
    );
    assert!(out.contains("2 difference(s)"), "{out}");
}

#[test]
fn a_partial_expectation_checks_only_what_it_keeps_and_bless_keeps_its_shape() {
    let dir = scratch("partial", &["time-wait-reuse"]);
    let capture = dir.join("time-wait-reuse.pcap");
    let expect = dir.join("time-wait-reuse.pcap.expect.json");
    run(&["check", &s(&capture), "--bless"]);
    let full = read_json(&expect);
    let partial: Vec<Value> = full["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"connection": c["connection"], "outcome": c["outcome"], "anomalies": c["anomalies"]}))
        .collect();
    write_json(
        &expect,
        &json!({"tcplife_expectation": 1, "connections": partial}),
    );
    let (code, out, _) = run(&["check", &s(&capture)]);
    assert_eq!(code, Some(0), "{out}");
    // A changed field it does not keep is not checked; one it keeps is.
    let mut v = read_json(&expect);
    v["connections"][1]["anomalies"] = json!([]);
    write_json(&expect, &v);
    let (code, out, _) = run(&["check", &s(&capture)]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("anomalies: expected [], actual [\"time_wait_reuse\"]"),
        "{out}"
    );
    run(&["check", &s(&capture), "--bless"]);
    let reblessed = read_json(&expect);
    assert!(
        reblessed.get("summary").is_none(),
        "re-blessing keeps the partial shape"
    );
    let keys: Vec<&String> = reblessed["connections"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, vec!["anomalies", "connection", "outcome"]);
    assert_eq!(
        reblessed["connections"][1]["anomalies"],
        json!(["time_wait_reuse"])
    );
}

#[test]
fn only_listed_connections_ignores_the_rest() {
    let dir = scratch("listed", &["time-wait-reuse"]);
    let capture = dir.join("time-wait-reuse.pcap");
    let expect = dir.join("time-wait-reuse.pcap.expect.json");
    run(&["check", &s(&capture), "--bless"]);
    let full = read_json(&expect);
    let first = json!({"connection": full["connections"][0]["connection"], "outcome": "closed"});
    write_json(&expect, &json!({"connections": [first.clone()]}));
    assert_eq!(
        run(&["check", &s(&capture)]).0,
        Some(1),
        "unlisted connections are differences by default"
    );
    write_json(
        &expect,
        &json!({"only_listed_connections": true, "connections": [first]}),
    );
    assert_eq!(run(&["check", &s(&capture)]).0, Some(0));
}

#[test]
fn a_directory_is_checked_capture_by_capture() {
    let dir = scratch("dir", &["normal-client-close", "refused", "unanswered-syn"]);
    let (code, out, _) = run(&["check", &s(&dir), "--bless"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&["check", &s(&dir)]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("3 captures: 3 ok, 0 different, 0 errors"),
        "{out}"
    );
    let expect = dir.join("refused.pcap.expect.json");
    let mut v = read_json(&expect);
    v["connections"][0]["conn_state"] = json!("S0");
    write_json(&expect, &v);
    let (code, out, _) = run(&["check", &s(&dir)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DIFFERS") && out.contains("refused.pcap") && out.contains("conn_state"),
        "{out}"
    );
    assert!(
        out.contains("3 captures: 2 ok, 1 different, 0 errors"),
        "{out}"
    );
    std::fs::remove_file(dir.join("unanswered-syn.pcap.expect.json")).unwrap();
    let (code, out, _) = run(&["check", &s(&dir)]);
    assert_eq!(code, Some(2), "a missing expectation is an error: {out}");
    assert!(out.contains("ERROR") && out.contains("--bless"), "{out}");
}

#[test]
fn errors_exit_2() {
    let dir = scratch("errors", &["refused"]);
    let capture = dir.join("refused.pcap");
    let (code, _, err) = run(&["check", &s(&dir.join("missing.pcap")), "--expect", "x.json"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.pcap"), "{err}");
    std::fs::write(dir.join("refused.pcap.expect.json"), "{ not json").unwrap();
    let (code, _, err) = run(&["check", &s(&capture)]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a valid expectation"), "{err}");
    let cut = dir.join("cut.pcap");
    let bytes = std::fs::read(&capture).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let (code, _, err) = run(&["check", &s(&cut), "--bless"]);
    assert_eq!(code, Some(2), "a damaged capture cannot be blessed");
    assert!(err.contains("byte"), "{err}");
}

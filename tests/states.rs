//! `tcplife states` and the state peaks of `analyze`, on captures made by the Linux kernel.
//! Every expected number is computed here from the `analyze --format json` records (the
//! timelines, `close.time_wait_ends`, the capture's first and last packet), never by the
//! states module itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::Value;

const LONG_CLOSE_WAIT: &str = "testdata/kernel/long-close-wait.pcap";
const MANY: &str = "testdata/kernel/many-connections.pcap";
const SYN_BURST: &str = "testdata/kernel/syn-burst.pcap";
const TIME_WAIT_REUSE: &str = "testdata/kernel/time-wait-reuse.pcap";
/// Ten connections to four server endpoints.
const WIKIPEDIA: &str = "testdata/zeek/wikipedia/wikipedia.pcap";

fn run_ok(args: &[&str]) -> String {
    let out = tcplife(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `states --at` as JSON lines.
fn at(capture: &str, time: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["states", "-q", capture, "--at", time, "--format", "jsonl"];
    args.extend_from_slice(extra);
    json_lines(&run_ok(&args))
}

/// `states --every` as JSON lines.
fn every(capture: &str, step: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "states", "-q", capture, "--every", step, "--format", "jsonl",
    ];
    args.extend_from_slice(extra);
    json_lines(&run_ok(&args))
}

fn ns(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

/// Epoch seconds with nine decimals, as `--at` takes them.
fn epoch(t: i64) -> String {
    format!(
        "{}.{:09}",
        t.div_euclid(1_000_000_000),
        t.rem_euclid(1_000_000_000)
    )
}

fn capture_span(doc: &Value) -> (i64, i64) {
    let input = &doc["inputs"][0];
    (
        ns(&input["first"]["time_ns"]),
        ns(&input["last"]["time_ns"]),
    )
}

/// When a side entered `state` and left it (the next transition), from its timeline.
fn visit(conn: &Value, side: &str, state: &str) -> Option<(i64, Option<i64>)> {
    let transitions = conn["states"][side]["transitions"].as_array().unwrap();
    let i = transitions.iter().position(|t| t["to"] == state)?;
    let enter = ns(&transitions[i]["time_ns"]);
    let leave = transitions.get(i + 1).map(|t| ns(&t["time_ns"]));
    Some((enter, leave))
}

fn count(row: &Value, state: &str) -> i64 {
    ns(&row["states"][state])
}

#[test]
fn the_server_is_in_close_wait_at_the_midpoint_and_not_after_it_closes() {
    let doc = analyze_json(LONG_CLOSE_WAIT);
    let conn = &doc["connections"][0];
    let (enter, leave) = visit(conn, "server", "CLOSE-WAIT").unwrap();
    let leave = leave.expect("the server leaves CLOSE-WAIT");
    assert!(leave - enter > 5_000_000_000, "a long CLOSE-WAIT");
    let mid = (enter + leave) / 2;

    let rows = at(LONG_CLOSE_WAIT, &epoch(mid), &[]);
    let server: Vec<&Value> = rows.iter().filter(|r| r["side"] == "server").collect();
    assert_eq!(server.len(), 1, "{rows:?}");
    assert_eq!(server[0]["state"], "CLOSE-WAIT");
    assert_eq!(server[0]["id"], conn["id"]);
    assert_eq!(ns(&server[0]["since_ns"]), enter);
    assert_eq!(ns(&server[0]["for_ns"]), mid - enter);
    assert_eq!(server[0]["local"], conn["server"]);
    assert_eq!(server[0]["peer"], conn["client"]);
    // By the midpoint the client's data had been received: the bytes so far are its total.
    assert_eq!(
        server[0]["received_bytes"],
        conn["client_sent"]["payload_bytes"]
    );

    let only = at(LONG_CLOSE_WAIT, &epoch(mid), &["--state", "close_wait"]);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["side"], "server");

    let after = at(
        LONG_CLOSE_WAIT,
        &epoch(leave + 1_000),
        &["--side", "server"],
    );
    assert!(
        after.iter().all(|r| r["state"] != "CLOSE-WAIT"),
        "still in CLOSE-WAIT after closing: {after:?}"
    );
    let before = at(
        LONG_CLOSE_WAIT,
        &epoch(enter - 1_000),
        &["--state", "CLOSE-WAIT"],
    );
    assert!(before.is_empty(), "{before:?}");
}

#[test]
fn the_instant_can_be_given_three_ways() {
    let doc = analyze_json(LONG_CLOSE_WAIT);
    let (first, _) = capture_span(&doc);
    let t = first + 3_000_000_000;
    let rfc3339 = doc["inputs"][0]["first"]["time"]
        .as_str()
        .unwrap()
        .replacen(":31.", ":34.", 1);
    let by_epoch = at(LONG_CLOSE_WAIT, &epoch(t), &[]);
    assert_eq!(by_epoch.len(), 2);
    assert_eq!(at(LONG_CLOSE_WAIT, "+3s", &[]), by_epoch);
    assert_eq!(at(LONG_CLOSE_WAIT, &rfc3339, &[]), by_epoch, "{rfc3339}");
}

/// The instant a TIME-WAIT endpoint leaves it: its timer, or the capture's end.
fn time_wait_stays(doc: &Value) -> Vec<(i64, i64)> {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            ["client", "server"].into_iter().filter_map(move |side| {
                let (enter, leave) = visit(c, side, "TIME-WAIT")?;
                let timer = ns(&c["close"]["time_wait_ends"]["time_ns"]);
                Some((enter, leave.unwrap_or(timer).min(timer)))
            })
        })
        .collect()
}

#[test]
fn every_active_closer_is_still_in_time_wait_at_the_end_of_many_connections() {
    let doc = analyze_json(MANY);
    let (first, last) = capture_span(&doc);
    let closers = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let closer = c["close"]["active_closer"].as_str().unwrap();
            let ends = ns(&c["close"]["time_wait_ends"]["time_ns"]);
            c["states"][closer]["final"] == "TIME-WAIT" && ends > last
        })
        .count();
    assert_eq!(closers, 250, "the capture is shorter than TIME-WAIT");
    let stays = time_wait_stays(&doc);

    let rows = every(MANY, "100ms", &[]);
    let end = rows.last().unwrap();
    assert_eq!(ns(&end["time_ns"]), last);
    assert_eq!(count(end, "TIME-WAIT"), closers as i64);
    assert_eq!(ns(&rows[0]["time_ns"]), first);
    for row in &rows {
        let t = ns(&row["time_ns"]);
        let expected = stays.iter().filter(|(a, b)| *a <= t && t < *b).count() as i64;
        assert_eq!(count(row, "TIME-WAIT"), expected, "at {t}");
        let total: i64 = row["states"].as_object().unwrap().values().map(ns).sum();
        assert_eq!(ns(&row["endpoints"]), total);
    }
}

#[test]
fn the_syn_burst_peaks_at_its_half_open_handshakes() {
    let doc = analyze_json(SYN_BURST);
    let half_open = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["states"]["server"]["final"] == "SYN-RECEIVED")
        .count() as i64;
    assert_eq!(half_open, 300);
    let latest_syn_ack = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| visit(c, "server", "SYN-RECEIVED").unwrap().0)
        .max()
        .unwrap();

    let peak = &doc["summary"]["state_peaks"]["states"]["SYN-RECEIVED"];
    assert_eq!(ns(&peak["endpoints"]), half_open);
    assert!(ns(&peak["time_ns"]) >= latest_syn_ack);
    assert!(
        ns(&peak["time_ns"]) - latest_syn_ack
            <= ns(&doc["summary"]["state_peaks"]["resolution_ns"])
    );
    assert_eq!(peak["host"]["side"], "server");
    assert_eq!(peak["host"]["ip"], doc["connections"][0]["server"]["ip"]);
    assert_eq!(ns(&peak["host"]["endpoints"]), half_open);

    let rows = every(SYN_BURST, "10ms", &["--state", "SYN-RECEIVED"]);
    let most = rows.iter().map(|r| count(r, "SYN-RECEIVED")).max().unwrap();
    assert_eq!(most, half_open);
    assert_eq!(count(rows.last().unwrap(), "SYN-RECEIVED"), half_open);
    assert_eq!(
        rows[0]["states"].as_object().unwrap().len(),
        1,
        "only the state asked for"
    );

    let text = run_ok(&["analyze", "-q", SYN_BURST]);
    assert!(
        text.contains("peak SYN-RECEIVED: 300 endpoints at +")
            && text.contains("on server 10.77.0.2 (port 8080)"),
        "{text}"
    );
}

#[test]
fn a_reused_4_tuple_ends_the_time_wait_it_found() {
    let doc = analyze_json(TIME_WAIT_REUSE);
    let conns = doc["connections"].as_array().unwrap();
    let reuses = conns
        .iter()
        .filter(|c| {
            c["anomalies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "time_wait_reuse")
        })
        .count();
    assert_eq!(reuses, conns.len() - 1);
    // The server closed each one actively and sat in TIME-WAIT until the next SYN.
    let rows = every(TIME_WAIT_REUSE, "10ms", &[]);
    assert!(rows.iter().all(|r| count(r, "TIME-WAIT") <= 1), "{rows:?}");
    assert_eq!(count(rows.last().unwrap(), "TIME-WAIT"), 1);
    let text = run_ok(&["analyze", "-q", TIME_WAIT_REUSE]);
    assert!(text.contains("peak TIME-WAIT: 1 endpoint at +"), "{text}");
}

#[test]
fn the_listing_agrees_with_the_series_at_every_instant() {
    let doc = analyze_json(WIKIPEDIA);
    let (first, last) = capture_span(&doc);
    let rows = every(WIKIPEDIA, "500ms", &[]);
    for row in rows.iter().step_by(3).chain(rows.last()) {
        let t = ns(&row["time_ns"]);
        let listed = at(WIKIPEDIA, &epoch(t), &[]);
        for (state, n) in row["states"].as_object().unwrap() {
            let in_state = listed.iter().filter(|r| r["state"] == *state).count() as i64;
            assert_eq!(in_state, ns(n), "{state} at +{} ns", t - first);
        }
    }
    assert!(ns(&rows.last().unwrap()["time_ns"]) == last);
}

#[test]
fn by_server_splits_the_overall_counts() {
    let overall = every(WIKIPEDIA, "250ms", &[]);
    let by_server = every(WIKIPEDIA, "250ms", &["--by", "server"]);
    let servers: std::collections::BTreeSet<String> =
        by_server.iter().map(|r| r["server"].to_string()).collect();
    assert!(servers.len() > 1, "{servers:?}");
    for row in &overall {
        let t = &row["time_ns"];
        let parts: Vec<&Value> = by_server.iter().filter(|r| r["time_ns"] == *t).collect();
        for (state, n) in row["states"].as_object().unwrap() {
            let sum: i64 = parts.iter().map(|r| count(r, state)).sum();
            assert_eq!(sum, ns(n), "{state} at {t}");
        }
    }
}

#[test]
fn filters_choose_the_endpoints() {
    let t = "+3s";
    let all = at(LONG_CLOSE_WAIT, t, &[]);
    assert_eq!(all.len(), 2);
    assert_eq!(at(LONG_CLOSE_WAIT, t, &["--side", "client"]).len(), 1);
    assert_eq!(at(LONG_CLOSE_WAIT, t, &["--port", "8080"]).len(), 2);
    assert!(at(LONG_CLOSE_WAIT, t, &["--port", "9"]).is_empty());
    assert_eq!(at(LONG_CLOSE_WAIT, t, &["--host", "10.77.0.1"]).len(), 2);
    assert!(at(LONG_CLOSE_WAIT, t, &["--host", "192.0.2.1"]).is_empty());
    let clients = every(MANY, "1s", &["--side", "client"]);
    let servers = every(MANY, "1s", &["--side", "server"]);
    let end = |rows: &[Value]| count(rows.last().unwrap(), "TIME-WAIT");
    assert_eq!(end(&clients) + end(&servers), 250);
    assert!(end(&clients) > 0 && end(&servers) > 0, "closed alternately");
}

#[test]
fn the_table_and_the_chart() {
    let table = run_ok(&["states", "-q", MANY, "--every", "1s"]);
    let header = table.lines().nth(1).unwrap();
    for name in [
        "CLOSED",
        "LISTEN",
        "SYN-SENT",
        "SYN-RECV",
        "ESTAB",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "CLOSE-WAIT",
        "CLOSING",
        "LAST-ACK",
        "TIME-WAIT",
    ] {
        assert!(header.contains(name), "{header}");
    }
    assert!(
        table.lines().last().unwrap().trim_end().ends_with(" 250"),
        "{table}"
    );

    let plot = run_ok(&["states", "-q", MANY, "--every", "50ms", "--plot"]);
    for name in ["SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "TIME-WAIT"] {
        assert!(plot.contains(name), "{plot}");
    }
    let tw = plot
        .lines()
        .find(|l| l.trim_start().starts_with("TIME-WAIT"))
        .unwrap();
    assert!(
        tw.contains('█') && tw.contains("peak 250 at +2.59 s"),
        "{plot}"
    );
}

#[test]
fn standard_input_works_in_one_pass() {
    let bytes = std::fs::read(root().join(MANY)).unwrap();
    let out = tcplife_with_stdin(
        &["states", "-q", "-", "--every", "1s", "--format", "jsonl"],
        &bytes,
    );
    assert!(out.status.success());
    let from_stdin = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_stdin, every(MANY, "1s", &[]));
}

#[test]
fn the_summary_peaks_follow_the_schema() {
    let doc = analyze_json(MANY);
    assert_schema_valid(&doc, "many-connections");
    let peaks = &doc["summary"]["state_peaks"];
    let (first, _) = capture_span(&doc);
    let tw = &peaks["states"]["TIME-WAIT"];
    assert_eq!(ns(&tw["endpoints"]), 250);
    assert_eq!(ns(&tw["offset_ns"]), ns(&tw["time_ns"]) - first);
    let closers_on_client = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["close"]["active_closer"] == "client")
        .count() as i64;
    assert_eq!(tw["host"]["side"], "client");
    assert_eq!(ns(&tw["host"]["endpoints"]), closers_on_client);
}

#[test]
fn wrong_command_lines_exit_2() {
    for args in [
        vec!["states", MANY],
        vec!["states", MANY, "--every", "0s"],
        vec!["states", MANY, "--at", "yesterday"],
        vec!["states", MANY, "--at", "+1s", "--every", "1s"],
        vec!["states", MANY, "--at", "+1s", "--plot"],
        vec!["states", MANY, "--every", "1s", "--state", "WAITING"],
        vec!["states", "-q", MANY, "--every", "1ns"],
    ] {
        let out = tcplife(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(
        tcplife(&["states", "-q", "no-such.pcap", "--every", "1s"])
            .status
            .code(),
        Some(3)
    );
}

//! Captures made by the Linux kernel's TCP stack (testdata/generate/generate.sh, network
//! namespaces and tcpdump): each is analysed and compared byte for byte with its committed
//! expectation, and checked against what its scenario is known to produce, so a blessed
//! expectation can never hide a wrong answer.
//!
//! After an intended change of output: `TCPLIFE_BLESS=1 cargo test --test kernel_fixtures`,
//! then review the diff of testdata/kernel/*.expected.json.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("testdata/kernel/{name}.pcap");
    let out = tcplife(&["analyze", "--format", "json", "--quiet", &path]);
    assert!(out.status.success(), "{name}: exit {:?}", out.status.code());
    let expected_path = root().join(format!("testdata/kernel/{name}.expected.json"));
    if std::env::var_os("TCPLIFE_BLESS").is_some() {
        std::fs::write(&expected_path, &out.stdout).unwrap();
    }
    let expected = std::fs::read(&expected_path).unwrap_or_else(|_| {
        panic!("{name}: no expectation; run with TCPLIFE_BLESS=1 and review it")
    });
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema_valid(&doc, name);
    if out.stdout != expected {
        let want: Value = serde_json::from_slice(&expected).unwrap();
        panic!(
            "{name}: output differs from {}\n{}",
            expected_path.display(),
            first_difference(&want, &doc, "$")
        );
    }
    doc
}

/// The first place two JSON values differ, for a readable failure.
fn first_difference(want: &Value, got: &Value, path: &str) -> String {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) if w != v => return first_difference(v, w, &format!("{path}.{k}")),
                    None => return format!("{path}.{k}: missing"),
                    _ => {}
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map_or_else(String::new, |k| format!("{path}.{k}: unexpected"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .map_or_else(String::new, |(i, (x, y))| {
                first_difference(x, y, &format!("{path}[{i}]"))
            }),
        _ => format!("{path}: expected {want}, got {got}"),
    }
}

fn connections(doc: &Value) -> &Vec<Value> {
    doc["connections"].as_array().unwrap()
}

fn only_connection(doc: &Value) -> &Value {
    let c = connections(doc);
    assert_eq!(c.len(), 1, "one connection expected");
    &c[0]
}

fn kinds(conn: &Value) -> Vec<&str> {
    conn["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect()
}

fn anomaly<'a>(conn: &'a Value, kind: &str) -> &'a Value {
    conn["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(conn)))
}

fn transitions(conn: &Value, side: &str) -> Vec<(String, String)> {
    conn["states"][side]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(conn: &Value, side: &str, from: &str, to: &str) -> bool {
    transitions(conn, side).contains(&(from.to_owned(), to.to_owned()))
}

fn no_warnings(doc: &Value) {
    let s = &doc["summary"]["anomalies_by_severity"];
    assert_eq!(
        (s["warning"].as_u64(), s["alert"].as_u64()),
        (Some(0), Some(0)),
        "{}",
        doc["summary"]["anomalies_by_kind"]
    );
}

/// The four-way close as RFC 9293 figure 13 draws it, for the given active closer.
fn assert_four_way_close(c: &Value, closer: &str) {
    let passive = if closer == "client" {
        "server"
    } else {
        "client"
    };
    assert_eq!(c["outcome"], "closed");
    assert_eq!(c["close"]["active_closer"], closer);
    for (from, to) in [
        ("ESTABLISHED", "FIN-WAIT-1"),
        ("FIN-WAIT-1", "FIN-WAIT-2"),
        ("FIN-WAIT-2", "TIME-WAIT"),
    ] {
        assert!(has(c, closer, from, to), "{closer}: {from} → {to}");
    }
    for (from, to) in [
        ("ESTABLISHED", "CLOSE-WAIT"),
        ("CLOSE-WAIT", "LAST-ACK"),
        ("LAST-ACK", "CLOSED"),
    ] {
        assert!(has(c, passive, from, to), "{passive}: {from} → {to}");
    }
    assert_eq!(c["states"][passive]["final"], "CLOSED");
}

fn assert_handshake(c: &Value) {
    assert_eq!(c["midstream"], false);
    assert!(has(c, "client", "CLOSED", "SYN-SENT") && has(c, "client", "SYN-SENT", "ESTABLISHED"));
    assert!(
        has(c, "server", "LISTEN", "SYN-RECEIVED")
            && has(c, "server", "SYN-RECEIVED", "ESTABLISHED")
    );
    assert!(c["handshake"]["rtt_ns"].as_i64().unwrap() > 0);
}

#[test]
fn normal_close_by_the_client() {
    let doc = fixture("normal-client-close");
    let c = only_connection(&doc);
    assert_handshake(c);
    assert_four_way_close(c, "client");
    assert_eq!(c["conn_state"], "SF");
    no_warnings(&doc);
}

#[test]
fn normal_close_by_the_server() {
    let doc = fixture("normal-server-close");
    let c = only_connection(&doc);
    assert_handshake(c);
    assert_four_way_close(c, "server");
    no_warnings(&doc);
}

#[test]
fn ipv6_close() {
    let doc = fixture("ipv6-normal");
    let c = only_connection(&doc);
    assert_eq!(c["ip_version"], 6);
    assert_four_way_close(c, "client");
}

#[test]
fn abort_by_the_client_is_a_rst_teardown() {
    let doc = fixture("rst-abort-client");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "reset");
    let a = anomaly(c, "rst_teardown");
    assert_eq!(
        (a["side"].as_str(), a["details"]["cause"].as_str()),
        (Some("client"), Some("abort"))
    );
    assert!(has(c, "server", "ESTABLISHED", "CLOSED"));
}

#[test]
fn abort_by_the_server_is_a_rst_teardown() {
    let doc = fixture("rst-abort-server");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "reset");
    assert_eq!(anomaly(c, "rst_teardown")["details"]["sender"], "server");
}

#[test]
fn closing_with_unread_data_sends_rst() {
    let doc = fixture("rst-unread-data");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "reset");
    let a = anomaly(c, "rst_teardown");
    assert_eq!(a["details"]["cause"], "close_with_unread_data");
    assert!(a["details"]["receiver_unacked_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_closed_port_refuses() {
    let doc = fixture("refused");
    let c = only_connection(&doc);
    assert_eq!(
        (c["outcome"].as_str(), c["conn_state"].as_str()),
        (Some("refused"), Some("REJ"))
    );
    assert_eq!(anomaly(c, "refused")["side"], "server");
    assert!(has(c, "client", "SYN-SENT", "CLOSED"));
}

#[test]
fn dropped_syns_are_unanswered_with_linux_backoff() {
    let doc = fixture("unanswered-syn");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "unanswered");
    let a = anomaly(c, "unanswered_syn");
    assert!(a["details"]["attempts"].as_u64().unwrap() >= 3);
    let gaps: Vec<f64> = a["details"]["intervals_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() / 1e9)
        .collect();
    assert!(
        (0.9..1.5).contains(&gaps[0]) && (1.8..2.6).contains(&gaps[1]),
        "{gaps:?}"
    );
}

#[test]
fn a_server_that_does_not_close_stays_in_close_wait() {
    let doc = fixture("long-close-wait");
    let c = only_connection(&doc);
    let a = anomaly(c, "long_close_wait");
    assert_eq!(a["side"], "server");
    assert!(a["details"]["duration_ns"].as_i64().unwrap() > 5_000_000_000);
    assert_eq!(a["details"]["open_at_end"], false);
    assert_four_way_close(c, "client");
}

#[test]
fn a_lost_final_ack_leaves_the_server_in_last_ack() {
    let doc = fixture("lost-final-ack");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "closed_unacked");
    assert_eq!(c["states"]["server"]["final"], "LAST-ACK");
    let a = anomaly(c, "missing_final_ack");
    assert_eq!(a["side"], "server");
    assert!(a["details"]["fin_retransmissions"].as_u64().unwrap() >= 1);
}

fn assert_reuse(name: &str, opened_by: &str) {
    let doc = fixture(name);
    let conns = connections(&doc);
    assert!(conns.len() >= 3, "{name}: several incarnations");
    let tuple = |c: &Value| (c["client"].clone(), c["server"].clone());
    assert!(
        conns.iter().all(|c| tuple(c) == tuple(&conns[0])),
        "{name}: one 4-tuple"
    );
    assert!(kinds(&conns[0]).is_empty());
    for pair in conns.windows(2) {
        assert_eq!(pair[1]["previous_incarnation"], pair[0]["id"]);
        let a = anomaly(&pair[1], "time_wait_reuse");
        assert_eq!(a["details"]["opened_by"], opened_by);
        assert!(a["details"]["gap_ns"].as_i64().unwrap() < 60_000_000_000);
        assert_eq!(
            a["details"]["safe"], true,
            "Linux accepts the reuse only when it is safe"
        );
    }
}

#[test]
fn reconnecting_to_a_server_in_time_wait() {
    assert_reuse("time-wait-reuse", "former_passive_closer");
}

#[test]
fn reconnecting_from_a_client_port_in_time_wait() {
    assert_reuse("time-wait-reuse-client", "former_active_closer");
}

#[test]
fn crossing_fins_pass_closing_on_both_sides() {
    let doc = fixture("simultaneous-close");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "closed");
    assert_eq!(c["close"]["active_closer"], "simultaneous");
    for side in ["client", "server"] {
        assert!(
            has(c, side, "FIN-WAIT-1", "CLOSING") && has(c, side, "CLOSING", "TIME-WAIT"),
            "{side}"
        );
    }
    anomaly(c, "simultaneous_close");
}

#[test]
fn a_half_close_with_data_is_normal() {
    let doc = fixture("half-close-data");
    let c = only_connection(&doc);
    assert_four_way_close(c, "client");
    no_warnings(&doc);
    assert!(c["server_sent"]["payload_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_syn_burst_is_a_flood_of_half_open_handshakes() {
    let doc = fixture("syn-burst");
    let half_open = doc["summary"]["by_outcome"]["half_open"].as_u64().unwrap();
    assert!(half_open >= 200, "{half_open}");
    let floods: Vec<&Value> = doc["summary"]["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "syn_flood")
        .collect();
    assert_eq!(floods.len(), 1);
    assert!(
        floods[0]["details"]["incomplete_handshakes"]
            .as_u64()
            .unwrap()
            >= 100
    );
    assert_eq!(floods[0]["severity"], "alert");
}

#[test]
fn answered_keepalives_are_not_retransmissions() {
    let doc = fixture("keepalive");
    let c = only_connection(&doc);
    let a = anomaly(c, "keepalive");
    assert!(a["details"]["probes"].as_u64().unwrap() >= 3);
    assert_eq!(a["details"]["answered"], a["details"]["probes"]);
    for side in ["client_sent", "server_sent"] {
        assert_eq!(c[side]["retransmitted_segments"], 0, "{side}");
    }
    no_warnings(&doc);
}

#[test]
fn unanswered_keepalives_time_out() {
    let doc = fixture("keepalive-timeout");
    let c = only_connection(&doc);
    let a = anomaly(c, "keepalive_timeout");
    assert!(a["details"]["unanswered_probes"].as_u64().unwrap() >= 3);
}

#[test]
fn a_stalled_reader_advertises_a_zero_window() {
    let doc = fixture("zero-window");
    let c = only_connection(&doc);
    let a = anomaly(c, "zero_window");
    assert_eq!(a["side"], "server");
    assert!(a["details"]["total_ns"].as_i64().unwrap() > 0);
    assert_eq!(c["outcome"], "closed");
}

#[test]
fn a_capture_started_mid_connection() {
    let doc = fixture("midstream");
    let c = only_connection(&doc);
    assert_eq!(c["midstream"], true);
    assert_eq!(c["server"]["port"], 8080);
    anomaly(c, "midstream");
    assert_eq!(c["outcome"], "closed");
}

#[test]
fn many_connections_closed_by_either_side_raise_no_warning() {
    let doc = fixture("many-connections");
    let conns = connections(&doc);
    assert!(conns.len() >= 200, "{}", conns.len());
    assert!(conns.iter().all(|c| c["outcome"] == "closed"));
    let by_client = conns
        .iter()
        .filter(|c| c["close"]["active_closer"] == "client")
        .count();
    let by_server = conns
        .iter()
        .filter(|c| c["close"]["active_closer"] == "server")
        .count();
    assert!(
        by_client >= 100 && by_server >= 100,
        "{by_client} / {by_server}"
    );
    no_warnings(&doc);
}

#[test]
fn snaplen_truncated_packets_keep_their_true_length() {
    let doc = fixture("truncated-snaplen");
    let c = only_connection(&doc);
    assert_eq!(c["outcome"], "closed");
    let input = &doc["inputs"][0];
    assert!(input["truncated_packets"].as_u64().unwrap() > 0);
    assert!(input["wire_bytes"].as_u64() > input["captured_bytes"].as_u64());
    let episodes = doc["summary"]["episodes"].as_array().unwrap();
    assert!(episodes.iter().any(|e| e["kind"] == "truncated_packets"));
    let full = fixture("normal-client-close");
    assert_eq!(
        c["client_sent"]["payload_bytes"],
        only_connection(&full)["client_sent"]["payload_bytes"]
    );
}

#[test]
fn every_fixture_has_a_test() {
    let tested = [
        "normal-client-close",
        "normal-server-close",
        "ipv6-normal",
        "rst-abort-client",
        "rst-abort-server",
        "rst-unread-data",
        "refused",
        "unanswered-syn",
        "long-close-wait",
        "lost-final-ack",
        "time-wait-reuse",
        "time-wait-reuse-client",
        "simultaneous-close",
        "half-close-data",
        "syn-burst",
        "keepalive",
        "keepalive-timeout",
        "zero-window",
        "midstream",
        "many-connections",
        "truncated-snaplen",
    ];
    for path in captures_in(&root().join("testdata/kernel")) {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(tested.contains(&name.as_str()), "{name} has no test");
    }
}

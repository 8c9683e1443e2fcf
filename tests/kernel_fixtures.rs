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
    let mut path = format!("testdata/kernel/{name}.pcap");
    if !root().join(&path).exists() {
        path.push_str("ng");
    }
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
        "excessive-retransmission",
        "syn-in-open-connection",
        "syn-with-data",
        "simultaneous-open",
        "segment-not-captured",
        "ack-of-unseen-data",
        "two-interfaces",
    ];
    for path in captures_in(&root().join("testdata/kernel")) {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(tested.contains(&name.as_str()), "{name} has no test");
    }
}

#[test]
fn dropped_segments_make_excessive_retransmission() {
    let doc = fixture("excessive-retransmission");
    let c = only_connection(&doc);
    assert_handshake(c);
    assert_four_way_close(c, "server");
    // 18 of the 60 response segments were dropped after the capture tap, each resent once.
    let a = anomaly(c, "excessive_retransmission");
    assert_eq!(a["side"], "server");
    let d = &a["details"];
    assert_eq!(
        (
            d["retransmitted_segments"].as_u64(),
            d["retransmitted_bytes"].as_u64(),
            d["data_segments"].as_u64()
        ),
        (Some(18), Some(1800), Some(78))
    );
    assert!(d["ratio"].as_f64().unwrap() > 0.1);
    assert_eq!(c["server_sent"]["retransmitted_segments"], 18);
    assert_eq!(c["client_sent"]["retransmitted_segments"], 0);
    assert_eq!(kinds(c), ["excessive_retransmission"]);
}

/// The capture of `syn-in-open-connection`: the abandoned incarnation and the new one.
fn abandoned_and_new(doc: &Value) -> (&Value, &Value) {
    let conns = connections(doc);
    assert_eq!(conns.len(), 2, "two incarnations");
    let tuple = |c: &Value| (c["client"].clone(), c["server"].clone());
    assert_eq!(tuple(&conns[0]), tuple(&conns[1]), "one 4-tuple");
    assert_eq!(conns[0]["client"]["port"], 41000);
    (&conns[0], &conns[1])
}

#[test]
fn a_syn_while_the_server_is_established_starts_a_new_incarnation() {
    let doc = fixture("syn-in-open-connection");
    let (old, new) = abandoned_and_new(&doc);
    assert!(kinds(old).iter().all(|k| *k != "syn_in_open_connection"));
    assert_eq!(new["previous_incarnation"], old["id"]);
    let a = anomaly(new, "syn_in_open_connection");
    assert_eq!(a["packets"][0], 8, "the first SYN from the new socket");
    let d = &a["details"];
    assert_eq!(d["previous_incarnation"], old["id"]);
    // The client's socket vanished without a trace on the wire (its RST was dropped before
    // the capture tap), so as far as the capture knows both sides were still established.
    assert_eq!(
        (
            d["previous_client_state"].as_str(),
            d["previous_server_state"].as_str()
        ),
        (Some("ESTABLISHED"), Some("ESTABLISHED"))
    );
    assert!(has(new, "server", "LISTEN", "SYN-RECEIVED"));
    assert_four_way_close(new, "client");
}

#[test]
fn the_rst_answering_the_challenge_ack_ends_the_abandoned_incarnation() {
    let doc = fixture("syn-in-open-connection");
    let (old, new) = abandoned_and_new(&doc);
    // Packet 9: the server's challenge ACK (old sequence space); packet 10: the client's RST
    // with seq = that ACK's ack = the server's rcv_nxt. Linux reset the server's old socket
    // (the scenario checks ECONNRESET on it).
    assert_eq!(old["outcome"], "reset");
    assert!(has(old, "server", "ESTABLISHED", "CLOSED"));
    assert_eq!(anomaly(old, "rst_teardown")["details"]["sender"], "client");
    // Sending that RST from SYN-SENT in reply to an unacceptable ACK does not change the
    // sender's state (RFC 9293 3.10.7.3); the SYN is then simply retransmitted.
    assert!(
        !has(new, "client", "SYN-SENT", "CLOSED"),
        "{:?}",
        transitions(new, "client")
    );
    assert!(kinds(new).iter().all(|k| *k != "rst_teardown"));
}

#[test]
fn fast_open_carries_the_request_in_the_syn() {
    let doc = fixture("syn-with-data");
    let c = only_connection(&doc);
    let a = anomaly(c, "syn_with_data");
    assert_eq!(a["side"], "client");
    assert_eq!(a["packets"][0], 1);
    assert_handshake(c);
    assert_four_way_close(c, "client");
    assert_eq!(c["client_sent"]["payload_bytes"], 38);
    assert_eq!(c["server_sent"]["payload_bytes"], 44);
    assert_eq!(kinds(c), ["syn_with_data"]);
    no_warnings(&doc);
}

#[test]
fn crossing_syns_open_simultaneously() {
    let doc = fixture("simultaneous-open");
    let c = only_connection(&doc);
    anomaly(c, "simultaneous_open");
    // The first SYN in the capture is 10.77.0.1:41001's.
    assert_eq!(
        (c["client"]["port"].as_u64(), c["server"]["port"].as_u64()),
        (Some(41001), Some(41002))
    );
    for side in ["client", "server"] {
        assert!(
            has(c, side, "SYN-SENT", "SYN-RECEIVED") && has(c, side, "SYN-RECEIVED", "ESTABLISHED"),
            "{side}: {:?}",
            transitions(c, side)
        );
    }
    assert_eq!(c["outcome"], "closed");
    assert_eq!(c["close"]["active_closer"], "client");
    assert_eq!(kinds(c), ["simultaneous_open"]);
    no_warnings(&doc);
}

#[test]
fn an_acknowledged_segment_missing_from_the_capture() {
    let doc = fixture("segment-not-captured");
    let c = only_connection(&doc);
    // The 5th of ten 100-byte response segments was removed from the file; the client's
    // ACKs of it all come after the 6th segment, so no ACK goes beyond what was captured.
    let a = anomaly(c, "segment_not_captured");
    assert_eq!(a["side"], "server");
    assert_eq!(a["details"]["bytes"], 100);
    assert_eq!(kinds(c), ["segment_not_captured"]);
    assert_eq!(c["server_sent"]["gap_bytes"], 100);
    assert_eq!(c["server_sent"]["retransmitted_segments"], 0);
    assert_four_way_close(c, "server");
}

#[test]
fn an_ack_of_data_the_capture_never_showed() {
    let doc = fixture("ack-of-unseen-data");
    let c = only_connection(&doc);
    // The last of ten 100-byte response segments was removed from the file; packet 24, the
    // client's ACK of the whole response, is the first to acknowledge it.
    let a = anomaly(c, "ack_of_unseen_data");
    assert_eq!(a["side"], "server");
    assert_eq!(a["details"]["bytes"], 100);
    assert_eq!(a["packets"][0], 24);
    assert_eq!(c["server_sent"]["retransmitted_segments"], 0);
    assert_four_way_close(c, "server");
}

#[test]
fn one_connection_seen_on_two_interfaces_goes_back_in_time() {
    let doc = fixture("two-interfaces");
    let input = &doc["inputs"][0];
    assert_eq!(input["format"], "pcapng");
    assert_eq!(input["pcapng"]["interfaces"], 2);
    assert_eq!(
        input["packets"], 20,
        "the 10 packets of the connection, twice"
    );
    // Packet 11, the server end's copy of the SYN, is older than the client end's last packet.
    assert_eq!(input["first_backwards_packet"], 11);
    let episodes = doc["summary"]["episodes"].as_array().unwrap();
    let e = episodes
        .iter()
        .find(|e| e["kind"] == "timestamps_out_of_order")
        .expect("a timestamps_out_of_order episode");
    assert_eq!(e["severity"], "warning");
    assert_eq!(e["packets"][0], 11);
    assert!(e["details"]["count"].as_u64().unwrap() >= 1);
    // Interface 1 counts nanoseconds (if_tsresol 9): its packets keep their sub-microsecond
    // digits (this file's last packet has them) and land in the same second as the others.
    let first = input["first"]["time_ns"].as_i64().unwrap();
    let last = input["last"]["time_ns"].as_i64().unwrap();
    assert!(
        (0..1_000_000_000).contains(&(last - first)),
        "{first} {last}"
    );
    assert_ne!(last % 1000, 0);
    let c = only_connection(&doc);
    assert_eq!(c["server"]["port"], 8080);
    assert_eq!(c["client_sent"]["payload_bytes"], 38);
}

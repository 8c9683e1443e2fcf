//! Adversarial TCP: sequence numbers across the 2^32 wrap, RSTs with random sequence numbers
//! (in-window ones reset, out-of-window ones are counted and change nothing), SYN-ACKs with a
//! new ISN on an open connection, FIN storms, timestamps at both ends of what a capture can
//! carry. None of it may corrupt the record of a bystander connection interleaved with it.
//!
//! Every capture here is hand-built by the test (raw IPv4, no link layer): a kernel cannot be
//! made to send these segments on demand. Each runs through the binary (`--format json`) and
//! the report must be schema-valid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod craft;

use common::*;
use craft::*;
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

/// A segment at a time.
type Packet = (i64, Seg);

fn analyse(name: &str, packets: &[Packet]) -> Value {
    let mut packets = packets.to_vec();
    packets.sort_by_key(|(t, _)| *t);
    analyse_as_written(name, &packets, &[])
}

/// The packets written in the order given, analysed with `options` added.
fn analyse_as_written(name: &str, packets: &[Packet], options: &[&str]) -> Value {
    let dir = TempDir::new(name);
    let path = dir.write(&format!("{name}.pcap"), &raw_pcap(packets));
    let mut args = vec!["analyze", "--format", "json", "--quiet"];
    args.extend_from_slice(options);
    args.push(&path);
    let out = tcplife(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema_valid(&doc, name);
    doc
}

/// The connection whose client used `port`.
fn by_client_port(doc: &Value, port: u16) -> &Value {
    let found: Vec<&Value> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client"]["port"] == port)
        .collect();
    assert_eq!(found.len(), 1, "connections from port {port}");
    found[0]
}

fn kinds(conn: &Value) -> Vec<String> {
    conn["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// What a connection's record says, less what depends on where it sits in the capture
/// (ids, packet numbers).
fn projection(conn: &Value) -> Value {
    json!({
        "outcome": conn["outcome"],
        "finished_by": conn["finished_by"],
        "conn_state": conn["conn_state"],
        "history": conn["history"],
        "client_isn": conn["handshake"]["client_isn"],
        "server_isn": conn["handshake"]["server_isn"],
        "rtt_ns": conn["handshake"]["rtt_ns"],
        "duration_ns": conn["duration_ns"],
        "client_sent": conn["client_sent"],
        "server_sent": conn["server_sent"],
        "client_states": transitions(conn, "client"),
        "server_states": transitions(conn, "server"),
        "reset": conn["close"]["reset"].is_null(),
        "anomalies": kinds(conn),
    })
}

/// A connection's endpoints and ISNs, to write its segments with relative numbers.
#[derive(Clone, Copy)]
struct Conn {
    client: Seg,
    server: Seg,
    c_isn: u32,
    s_isn: u32,
}

impl Conn {
    fn new(client_ip: [u8; 4], port: u16, c_isn: u32, s_isn: u32) -> Conn {
        let client = Seg::new(client_ip, port, [10, 0, 0, 2], 80);
        Conn {
            client,
            server: client.reply(),
            c_isn,
            s_isn,
        }
    }

    /// A client segment at client offset `seq` acknowledging server offset `ack` (offsets
    /// from the ISNs, so 1 is the first data octet).
    fn c(&self, flags: u8, seq: u32, ack: u32) -> Seg {
        self.client.flags(
            flags,
            self.c_isn.wrapping_add(seq),
            self.s_isn.wrapping_add(ack),
        )
    }

    fn s(&self, flags: u8, seq: u32, ack: u32) -> Seg {
        self.server.flags(
            flags,
            self.s_isn.wrapping_add(seq),
            self.c_isn.wrapping_add(ack),
        )
    }

    fn handshake(&self, t: i64) -> Vec<Packet> {
        vec![
            (t, self.c(SYN, 0, 0)),
            (t + MS, self.s(SYN | ACK, 0, 1)),
            (t + 2 * MS, self.c(ACK, 1, 1)),
        ]
    }

    /// 100 octets from the client and 300 from the server, each acknowledged, from `t`; the
    /// next client and server offsets are 101 and 301.
    fn exchange(&self, t: i64) -> Vec<Packet> {
        vec![
            (t, self.c(ACK | PSH, 1, 1).payload(100)),
            (t + MS, self.s(ACK, 1, 101)),
            (t + 2 * MS, self.s(ACK | PSH, 1, 101).payload(300)),
            (t + 3 * MS, self.c(ACK, 101, 301)),
        ]
    }

    /// The client closes first at its offset `c` (server offset `s`), from `t`.
    fn close(&self, t: i64, c: u32, s: u32) -> Vec<Packet> {
        vec![
            (t, self.c(FIN | ACK, c, s)),
            (t + MS, self.s(ACK, s, c + 1)),
            (t + 2 * MS, self.s(FIN | ACK, s, c + 1)),
            (t + 3 * MS, self.c(ACK, c + 1, s + 1)),
        ]
    }

    /// Handshake at `t` and an exchange 100 ms later: an established connection with 100
    /// octets each way acknowledged.
    fn opened(&self, t: i64) -> Vec<Packet> {
        let mut p = self.handshake(t);
        p.extend(self.exchange(t + 100 * MS));
        p
    }

    /// Handshake at `t`, exchange at `t` + 1 s, close at `t` + `close_at`.
    fn normal(&self, t: i64, close_at: i64) -> Vec<Packet> {
        let mut p = self.handshake(t);
        p.extend(self.exchange(t + 1000 * MS));
        p.extend(self.close(t + close_at, 101, 301));
        p
    }
}

/// A bystander: a normal connection on another 4-tuple, spread over the first 10 s.
fn bystander() -> Conn {
    Conn::new([10, 9, 9, 9], 5555, 123_456, 654_321)
}

const BYSTANDER_PORT: u16 = 5555;

/// The bystander's record when it is analysed alone, or with only `clock`: packets of an
/// unrelated 4-tuple that move the capture's clock on.
fn bystander_alone(clock: &[Packet]) -> Value {
    let mut p = bystander().normal(T0, 10_000 * MS);
    p.extend(clock.iter().map(|(t, s)| {
        let mut s = *s;
        s.sport = 7;
        (*t, s)
    }));
    let doc = analyse("bystander", &p);
    projection(by_client_port(&doc, BYSTANDER_PORT))
}

/// The bystander's record in `doc` is what it is when analysed alone.
fn assert_bystander_untouched(doc: &Value, what: &str) {
    assert_bystander_untouched_with_clock(doc, what, &[]);
}

fn assert_bystander_untouched_with_clock(doc: &Value, what: &str, clock: &[Packet]) {
    let got = projection(by_client_port(doc, BYSTANDER_PORT));
    assert_eq!(
        got,
        bystander_alone(clock),
        "{what} changed the bystander's record"
    );
}

#[test]
fn sequence_numbers_across_the_wrap_change_nothing() {
    let run = |c_isn: u32, s_isn: u32| {
        let conn = Conn::new([10, 0, 0, 1], 40000, c_isn, s_isn);
        let mut p = conn.handshake(T0);
        // 100 octets, then 1000 more, then the first 100 again (a retransmission), then the
        // server's 300 octets, and a four-way close.
        p.push((T0 + 10 * MS, conn.c(ACK | PSH, 1, 1).payload(100)));
        p.push((T0 + 11 * MS, conn.c(ACK | PSH, 101, 1).payload(1000)));
        p.push((T0 + 12 * MS, conn.c(ACK | PSH, 1, 1).payload(100)));
        p.push((T0 + 13 * MS, conn.s(ACK, 1, 1101)));
        p.push((T0 + 14 * MS, conn.s(ACK | PSH, 1, 1101).payload(300)));
        p.push((T0 + 15 * MS, conn.c(ACK, 1101, 301)));
        p.extend(conn.close(T0 + 20 * MS, 1101, 301));
        p.extend(bystander().normal(T0, 10_000 * MS));
        let doc = analyse("wrap", &p);
        assert_bystander_untouched(&doc, "a connection across the wrap");
        by_client_port(&doc, 40000).clone()
    };
    // The client's first data octet is 2^32 - 8: its data crosses the wrap; the server's ISN
    // is 2^32 - 1, so its first data octet is 0.
    let wrapped = run(u32::MAX - 9, u32::MAX);
    let plain = run(1_000, 5_000);
    assert_eq!(wrapped["handshake"]["client_isn"], u32::MAX - 9);
    let strip = |conn: &Value| {
        let mut p = projection(conn);
        p["client_isn"] = Value::Null;
        p["server_isn"] = Value::Null;
        p
    };
    assert_eq!(strip(&wrapped), strip(&plain));
    assert_eq!(wrapped["outcome"], "closed");
    assert_eq!(wrapped["client_sent"]["payload_bytes"], 1100);
    assert_eq!(wrapped["client_sent"]["retransmitted_bytes"], 100);
    assert_eq!(wrapped["client_sent"]["gap_bytes"], 0);
    assert_eq!(wrapped["server_sent"]["payload_bytes"], 300);
    assert_eq!(
        transitions(&wrapped, "server"),
        [
            ("LISTEN", "SYN-RECEIVED"),
            ("SYN-RECEIVED", "ESTABLISHED"),
            ("ESTABLISHED", "CLOSE-WAIT"),
            ("CLOSE-WAIT", "LAST-ACK"),
            ("LAST-ACK", "CLOSED"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    for kind in kinds(&wrapped) {
        assert!(
            !matches!(
                kind.as_str(),
                "segment_not_captured" | "ack_of_unseen_data" | "data_after_fin"
            ),
            "{kind}"
        );
    }
}

/// Whether `seq` lands in the receive window `[rcv_nxt, rcv_nxt + window)`, wrapping.
fn in_window(seq: u32, rcv_nxt: u32, window: u32) -> bool {
    seq.wrapping_sub(rcv_nxt) < window
}

/// `count` RST sequence numbers drawn at random, all outside the window.
fn out_of_window_rsts(rng: &mut XorShift, count: usize, rcv_nxt: u32, window: u32) -> Vec<u32> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let seq = rng.next() as u32;
        if !in_window(seq, rcv_nxt, window) {
            seqs.push(seq);
        }
    }
    seqs
}

#[test]
fn out_of_window_rsts_are_counted_and_change_nothing() {
    let mut rng = XorShift::new(0x5eed_0001);
    let conn = Conn::new([10, 0, 0, 1], 40001, 3_000_000_000, 17);
    // Windows of 65535 (no scaling): the server expects client octet 101 next, the client
    // expects server octet 301.
    let mut p = conn.opened(T0);
    let mut t = T0 + 200 * MS;
    let from_client = out_of_window_rsts(&mut rng, 300, conn.c_isn.wrapping_add(101), 65535);
    for seq in &from_client {
        t += MS / 10;
        p.push((t, conn.client.flags(RST, *seq, 0)));
    }
    let from_server = out_of_window_rsts(&mut rng, 200, conn.s_isn.wrapping_add(301), 65535);
    for seq in &from_server {
        t += MS / 10;
        p.push((t, conn.server.flags(RST, *seq, 0)));
    }
    p.extend(conn.close(T0 + 500 * MS, 101, 301));
    p.extend(bystander().normal(T0, 10_000 * MS));
    let doc = analyse("rst-out-of-window", &p);
    assert_bystander_untouched(&doc, "out-of-window RSTs");

    let c = by_client_port(&doc, 40001);
    assert_eq!(c["outcome"], "closed", "{c}");
    assert!(c["close"]["reset"].is_null());
    assert_eq!(c["client_sent"]["rst_out_of_window"], 300);
    assert_eq!(c["server_sent"]["rst_out_of_window"], 200);
    // Nothing a RST claims is counted as data or acknowledgment.
    assert_eq!(c["client_sent"]["payload_bytes"], 100);
    assert_eq!(c["server_sent"]["payload_bytes"], 300);
    assert_eq!(c["client_sent"]["gap_bytes"], 0);
    assert_eq!(c["server_sent"]["gap_bytes"], 0);
    let normal = [
        ("CLOSED", "SYN-SENT"),
        ("SYN-SENT", "ESTABLISHED"),
        ("ESTABLISHED", "FIN-WAIT-1"),
        ("FIN-WAIT-1", "FIN-WAIT-2"),
        ("FIN-WAIT-2", "TIME-WAIT"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(transitions(c, "client")[..5], normal);
}

#[test]
fn the_first_in_window_rst_among_random_ones_resets() {
    let mut rng = XorShift::new(0x5eed_0002);
    let conn = Conn::new([10, 0, 0, 1], 40002, 99, u32::MAX - 50);
    let mut p = conn.opened(T0);
    let mut t = T0 + 200 * MS;
    let rcv_nxt = conn.c_isn.wrapping_add(101);
    for seq in out_of_window_rsts(&mut rng, 100, rcv_nxt, 65535) {
        t += MS / 10;
        p.push((t, conn.client.flags(RST, seq, 0)));
    }
    // In the window, but not at its left edge.
    p.push((
        t + MS,
        conn.client.flags(RST, rcv_nxt.wrapping_add(40_000), 0),
    ));
    // After the reset, more RSTs are extras, whatever their numbers.
    for seq in out_of_window_rsts(&mut rng, 10, rcv_nxt, 65535) {
        t += MS;
        p.push((t + 2 * MS, conn.client.flags(RST, seq, 0)));
    }
    p.extend(bystander().normal(T0, 10_000 * MS));
    let doc = analyse("rst-in-window", &p);
    assert_bystander_untouched(&doc, "RSTs");
    let c = by_client_port(&doc, 40002);
    assert_eq!(c["outcome"], "reset", "{c}");
    assert_eq!(c["close"]["reset"]["sender"], "client");
    assert_eq!(c["close"]["extra_rsts"], 10);
    assert_eq!(c["client_sent"]["rst_out_of_window"], 100);
    assert_eq!(
        transitions(c, "server").last().unwrap(),
        &("ESTABLISHED".to_owned(), "CLOSED".to_owned())
    );
}

#[test]
fn the_rst_window_is_the_scaled_window() {
    // Both SYNs carry window scale 7: the server's window field of 100 is 12,800 octets.
    let conn = Conn::new([10, 0, 0, 1], 40003, 5_000, 9_000);
    let rcv_nxt = conn.c_isn.wrapping_add(1);
    let p = vec![
        (T0, conn.c(SYN, 0, 0).wscale(7)),
        (T0 + MS, conn.s(SYN | ACK, 0, 1).wscale(7).window(100)),
        (T0 + 2 * MS, conn.c(ACK, 1, 1).window(100)),
        (T0 + 3 * MS, conn.s(ACK, 1, 1).window(100)),
        // 20,000 octets on: outside even the scaled window.
        (
            T0 + 4 * MS,
            conn.client.flags(RST, rcv_nxt.wrapping_add(20_000), 0),
        ),
        // 10,000 on: outside the raw field, inside the scaled window.
        (
            T0 + 5 * MS,
            conn.client.flags(RST, rcv_nxt.wrapping_add(10_000), 0),
        ),
    ];
    let doc = analyse("rst-scaled-window", &p);
    let c = by_client_port(&doc, 40003);
    assert_eq!(c["client_sent"]["rst_out_of_window"], 1, "{c}");
    assert_eq!(c["outcome"], "reset");
}

#[test]
fn a_syn_ack_with_a_new_isn_on_an_open_connection_does_not_rewrite_it() {
    let conn = Conn::new([10, 0, 0, 1], 40004, 1_000_000, 2_000_000);
    let mut p = conn.opened(T0);
    // A SYN-ACK with another ISN and the right acknowledgment, then one with another ISN and
    // a wrong one, from the server's address; then a bare SYN-ACK storm of random ISNs.
    p.push((
        T0 + 200 * MS,
        conn.server.flags(SYN | ACK, 77_777, conn.c_isn + 1),
    ));
    p.push((T0 + 201 * MS, conn.server.flags(SYN | ACK, 88_888, 12_345)));
    let mut rng = XorShift::new(0x5eed_0003);
    for i in 0..50 {
        p.push((
            T0 + 210 * MS + i * MS,
            conn.server
                .flags(SYN | ACK, rng.next() as u32, rng.next() as u32),
        ));
    }
    p.extend(conn.close(T0 + 500 * MS, 101, 301));
    p.extend(bystander().normal(T0, 10_000 * MS));
    let doc = analyse("syn-ack-new-isn", &p);
    assert_bystander_untouched(&doc, "SYN-ACKs with new ISNs");

    let c = by_client_port(&doc, 40004);
    assert_eq!(
        c["handshake"]["server_isn"], 2_000_000,
        "{}",
        c["handshake"]
    );
    assert_eq!(c["handshake"]["client_isn"], 1_000_000);
    assert_eq!(c["outcome"], "closed", "{c}");
    assert_eq!(c["server_sent"]["payload_bytes"], 300);
    assert_eq!(
        transitions(c, "server"),
        [
            ("LISTEN", "SYN-RECEIVED"),
            ("SYN-RECEIVED", "ESTABLISHED"),
            ("ESTABLISHED", "CLOSE-WAIT"),
            ("CLOSE-WAIT", "LAST-ACK"),
            ("LAST-ACK", "CLOSED"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[test]
fn fin_storms_stay_in_their_own_connections() {
    let mut rng = XorShift::new(0x5eed_0004);
    // One connection showered with FINs of random sequence numbers from both sides.
    let conn = Conn::new([10, 0, 0, 1], 40005, 4_000_000_000, 300);
    let mut p = conn.opened(T0);
    for i in 0..1000 {
        let t = T0 + 200 * MS + i * MS;
        let seq = rng.next() as u32;
        let ack = rng.next() as u32;
        let seg = if i % 2 == 0 {
            conn.client.flags(FIN | ACK, seq, ack)
        } else {
            conn.server.flags(FIN | ACK, seq, ack)
        };
        p.push((t, seg));
    }
    // And 2000 FINs to the server from ports that never opened a connection.
    for i in 0..2000u16 {
        let t = T0 + 3000 * MS + i64::from(i) * MS;
        let stray = Seg::new([10, 0, 1, (i % 200) as u8], 20000 + i, [10, 0, 0, 2], 80);
        p.push((
            t,
            stray.flags(FIN | ACK, rng.next() as u32, rng.next() as u32),
        ));
    }
    p.extend(bystander().normal(T0, 10_000 * MS));
    let doc = analyse("fin-storm", &p);
    assert_bystander_untouched(&doc, "FIN storms");

    assert_eq!(doc["summary"]["connections"], 2 + 2000);
    let c = by_client_port(&doc, 40005);
    assert_eq!(c["client_sent"]["packets"], 2 + 2 + 500);
    assert_eq!(c["server_sent"]["packets"], 1 + 2 + 500);
    // A state can be entered only so many times: the storm does not grow the timeline.
    for side in ["client", "server"] {
        let n = transitions(c, side).len();
        assert!(n <= 8, "{side}: {n} transitions");
    }
    // The first FIN of each side is the one on record.
    let first_client_fin = &c["close"]["client_fin"];
    assert!(!first_client_fin.is_null(), "{}", c["close"]);
}

#[test]
fn timestamps_at_both_ends_of_what_a_capture_can_carry() {
    // Fuzzing found that capture times far apart (a zero-window period open at one extreme and
    // closed at the other) overflowed duration arithmetic. A pcap carries 1970 to 2106: a
    // connection that advertises a zero window in 1970 and is seen again in 2106 must come out
    // whole (as two records: the idle timeout ends the first long before 2106).
    let conn = Conn::new([10, 0, 0, 1], 40006, 10, 20);
    let last = i64::from(u32::MAX) * 1_000_000_000;
    let mut p = vec![
        (0, conn.c(SYN, 0, 0)),
        (1, conn.s(SYN | ACK, 0, 1)),
        (2, conn.c(ACK, 1, 1).window(0)),
        (last - 1, conn.c(ACK, 1, 1)),
        (last, conn.s(RST, 1, 0)),
    ];
    p.extend(bystander().normal(T0, 10_000 * MS));
    let doc = analyse("time-extremes", &p);
    // The clock running on to 2106 lets the bystander's TIME-WAIT expire; nothing else.
    assert_bystander_untouched_with_clock(&doc, "a connection spanning 136 years", &p[3..5]);
    let records: Vec<&Value> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client"]["port"] == 40006 || c["server"]["port"] == 40006)
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["finished_by"], "idle_timeout");
    assert_eq!(records[0]["first"]["time_ns"], 0);
    assert_eq!(records[1]["last"]["time_ns"], last);
}

#[test]
fn zero_window_periods_of_a_clock_jumping_back_and_forth_do_not_overflow() {
    // Fuzzing found this: zero-window periods are summed, and with a clock that jumps back
    // and forth by decades (allowed here by the longest idle timeout the command line takes)
    // their sum passed i64::MAX. Five periods of 70 years each, in one connection.
    let conn = Conn::new([10, 0, 0, 1], 40007, 10, 20);
    let (early, late) = (1_000_000_000i64, 2_200_000_000 * 1_000_000_000i64);
    let mut p = vec![
        (early, conn.c(SYN, 0, 0)),
        (early, conn.s(SYN | ACK, 0, 1)),
        (early, conn.c(ACK, 1, 1)),
    ];
    for _ in 0..5 {
        p.push((early, conn.c(ACK, 1, 1).window(0)));
        p.push((late, conn.c(ACK, 1, 1)));
    }
    // Written in this order on purpose (`analyse` would sort them by time).
    let doc = analyse_as_written("zero-window-jumps", &p, &["--idle-timeout", "640000h"]);
    assert_eq!(doc["summary"]["connections"], 1);
    let conn = &doc["connections"][0];
    let zero_window = conn["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "zero_window")
        .unwrap_or_else(|| panic!("{}", conn["anomalies"]));
    assert_eq!(zero_window["details"]["periods"], 5);
    assert_eq!(zero_window["details"]["total_ns"], i64::MAX);
}

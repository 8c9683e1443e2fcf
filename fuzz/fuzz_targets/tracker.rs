//! The tracker on arbitrary sequences of decoded segments, and everything downstream of it:
//! a small flow table (so eviction runs), the anomaly detectors, the SYN-flood detector,
//! records, the summary and all three report writers.
//!
//! Input layout: a 16-byte header (table size, timers, start time, sequence base), then
//! segments of about 12 bytes each, built so that they collide: 8 endpoints (IPv4 and IPv6,
//! a few ports), sequence and acknowledgment numbers near each endpoint's base (which may sit
//! on the 2^32 wrap) or anywhere, capture times that step forwards, backwards or jump anywhere
//! in the range the capture reader guarantees (`0..=MAX_TS_NS`). A byte that is missing reads
//! as 0.
//!
//! Checks, beyond "no panic, no hang": every connection the table started comes out exactly
//! once, and the records serialise to JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tcplife::analyze::{RunReport, Sink};
use tcplife::capture::MAX_TS_NS;
use tcplife::decode::{Segment, TcpFlags, TcpOptions};
use tcplife::detect::{DetectConfig, FloodDetector, Severity, detect};
use tcplife::report::json::{JsonDocument, JsonLines};
use tcplife::report::record::ConnectionRecord;
use tcplife::report::summary::SummaryBuilder;
use tcplife::report::text::TextSummary;
use tcplife::track::zeek::{ServerPorts, ZeekConfig};
use tcplife::track::table::SweepSchedule;
use tcplife::track::{Addr, At, Config, Connection, FlowTable, Outcome, Side};

/// Payload bytes lent to segments (a segment's captured payload is at most this long).
static ZEROS: [u8; 64] = [0; 64];
/// A plausible IPv4 header and TCP header, for the checksum helpers.
static IP_HEADER: [u8; 20] = [
    0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
];
static TCP_HEADER: [u8; 20] = [
    0, 80, 0, 81, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
];

const SECOND: i64 = 1_000_000_000;

/// Reads the fuzz input front to back; past its end every read is 0.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn i64(&mut self) -> i64 {
        i64::from(self.u32()) | (i64::from(self.u32()) << 32)
    }
}

fn pool() -> [Addr; 8] {
    let v4 = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
    let v6 = |d| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, d));
    [
        Addr {
            ip: v4(1),
            port: 40000,
        },
        Addr {
            ip: v4(2),
            port: 80,
        },
        Addr {
            ip: v4(1),
            port: 40001,
        },
        Addr {
            ip: v4(3),
            port: 80,
        },
        Addr {
            ip: v4(2),
            port: 40000,
        },
        Addr {
            ip: v6(1),
            port: 443,
        },
        Addr {
            ip: v6(2),
            port: 50000,
        },
        Addr {
            ip: v4(1),
            port: 80,
        },
    ]
}

/// A sequence number relative to `base` (mode from two bits of `mode`), or any.
fn seq_near(base: u32, mode: u8, bytes: &mut Bytes<'_>) -> u32 {
    let delta = i32::from(bytes.u16() as i16);
    match mode & 3 {
        0 => base.wrapping_add_signed(delta),
        1 => base.wrapping_add_signed(delta.wrapping_mul(1460)),
        2 => base.wrapping_add_signed(delta.wrapping_mul(1 << 16)),
        _ => bytes.u32(),
    }
}

struct Pipeline {
    detect: DetectConfig,
    floods: FloodDetector,
    summary: SummaryBuilder,
    text: TextSummary<std::io::Sink>,
    json: JsonDocument<std::io::Sink>,
    lines: JsonLines<std::io::Sink>,
    emitted: u64,
    evicted: u64,
}

impl Pipeline {
    fn take(&mut self, table: &mut FlowTable) {
        let finished: Vec<Box<Connection>> = table.take_finished().collect();
        for conn in finished {
            self.emitted += 1;
            if let Some(syn) = conn.end(Side::Client).syn.as_ref() {
                let failed = !conn.handshake_done()
                    && matches!(
                        conn.outcome(),
                        Outcome::Unanswered | Outcome::HalfOpen | Outcome::Reset
                    );
                self.floods
                    .add(conn.server, conn.client.ip, syn.first, failed);
            }
            let anomalies = detect(&conn, &self.detect);
            let record = ConnectionRecord::new(&conn, anomalies);
            if record.finished_by == "evicted" {
                self.evicted += 1;
            }
            self.summary.add(&record);
            assert!(
                serde_json::to_vec(&record).is_ok(),
                "a record does not serialise"
            );
            assert!(self.text.connection(record.clone()).is_ok());
            assert!(self.lines.connection(record.clone()).is_ok());
            assert!(self.json.connection(record).is_ok());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let size = bytes.u8();
    let knobs = bytes.u8();
    let msl_ns = [SECOND / 1000, SECOND, 30 * SECOND, i64::MAX / 4][usize::from(knobs >> 2 & 3)];
    let idle_timeout_ns =
        [SECOND / 100, 2 * SECOND, 300 * SECOND, i64::MAX / 4][usize::from(knobs >> 4 & 3)];
    let config = Config {
        msl_ns,
        idle_timeout_ns,
        max_connections: 1 + usize::from(size % 8),
        zeek: ZeekConfig {
            server_ports: if knobs & 2 == 0 {
                ServerPorts::ZEEK
            } else {
                ServerPorts::NONE
            },
            timers: knobs & 1 != 0,
        },
        ..Config::default()
    };
    // Capture times stay within what the capture reader hands out (`0..=MAX_TS_NS`).
    let mut now = bytes.i64().rem_euclid(MAX_TS_NS + 1);
    let base = bytes.u32();
    let _reserved = bytes.u16();

    let endpoints = pool();
    let bases: Vec<u32> = (0u32..8)
        .map(|i| base.wrapping_add(i.wrapping_mul(0x2000_0001)))
        .collect();
    let mut table = FlowTable::new(config);
    let mut sweeps = SweepSchedule::default();
    let mut clock = i64::MIN;
    let mut peak = 0;
    let mut pipeline = Pipeline {
        detect: DetectConfig {
            time_wait_ns: msl_ns.saturating_mul(2),
            flood_count: 1 + u64::from(size >> 3 & 3),
            ..DetectConfig::default()
        },
        floods: FloodDetector::default(),
        summary: SummaryBuilder::default(),
        text: TextSummary::new(std::io::sink(), Severity::Info),
        json: JsonDocument::new(std::io::sink()),
        lines: JsonLines::new(std::io::sink()),
        emitted: 0,
        evicted: 0,
    };

    let mut packet = 0u64;
    while !bytes.0.is_empty() {
        packet += 1;
        let who = bytes.u8();
        let flags = bytes.u8();
        let modes = bytes.u8();
        let extras = bytes.u8();
        let src_i = usize::from(who & 7);
        let dst_i = usize::from(who >> 3 & 7);
        let (Some(&src), Some(&dst), Some(&src_base), Some(&dst_base)) = (
            endpoints.get(src_i),
            endpoints.get(dst_i),
            bases.get(src_i),
            bases.get(dst_i),
        ) else {
            return;
        };
        if src.ip.is_ipv4() != dst.ip.is_ipv4() {
            // The decoder never makes a segment from one family to the other.
            continue;
        }
        let seq = seq_near(src_base, modes, &mut bytes);
        let ack = seq_near(dst_base, modes >> 2, &mut bytes);
        let window = if extras & 1 == 0 { bytes.u16() } else { 0 };
        let payload_len = match modes >> 4 & 3 {
            0 => 0,
            1 => 1,
            2 => u32::from(bytes.u8()),
            _ => u32::from(bytes.u16()),
        };
        let step = i64::from(bytes.u16() as i16);
        now = match modes >> 6 {
            0 => now.saturating_add(step.abs()),
            1 => now.saturating_add(step * 1_000_000),
            2 => now.saturating_add(step.abs() * SECOND),
            _ => bytes.i64(),
        }
        .clamp(0, MAX_TS_NS);
        let mut options = TcpOptions::default();
        if extras & 2 != 0 {
            options.mss = Some(bytes.u16());
        }
        if extras & 4 != 0 {
            options.window_scale = Some(bytes.u8());
        }
        options.sack_permitted = extras & 8 != 0;
        if extras & 16 != 0 {
            options.timestamp = Some((bytes.u32(), bytes.u32()));
        }
        let captured = usize::try_from(payload_len).unwrap_or(0).min(ZEROS.len());
        let seg = Segment {
            src: src.ip,
            dst: dst.ip,
            src_port: src.port,
            dst_port: dst.port,
            seq,
            ack,
            flags: TcpFlags(flags),
            window,
            options,
            payload_len,
            ip_len: payload_len + if src.ip.is_ipv4() { 40 } else { 60 },
            payload: ZEROS.get(..captured).unwrap_or(&[]),
            ip_header: &IP_HEADER,
            tcp_header: &TCP_HEADER,
        };
        let at = At::packet(now, packet);
        clock = clock.max(now);
        if sweeps.due(now, clock) {
            table.sweep(clock);
        }
        if extras & 32 != 0 {
            table.on_corrupt_segment(&seg, at);
        } else {
            table.on_segment(&seg, at);
        }
        peak = peak.max(table.len());
        pipeline.take(&mut table);
    }
    table.finish_all();
    pipeline.take(&mut table);

    let stats = table.stats();
    assert_eq!(
        pipeline.emitted, stats.connections,
        "a connection was lost or doubled"
    );
    assert_eq!(pipeline.evicted, stats.evicted, "evictions miscounted");
    assert!(peak <= config.max_connections, "the table outgrew its cap");

    let episodes = pipeline.floods.episodes(&pipeline.detect);
    let summary = pipeline
        .summary
        .build(peak, stats.evicted, episodes);
    let report = RunReport {
        inputs: Vec::new(),
        summary,
    };
    assert!(
        serde_json::to_vec(&report).is_ok(),
        "the report does not serialise"
    );
    assert!(pipeline.text.finish(&report).is_ok());
    assert!(pipeline.lines.finish(&report).is_ok());
    assert!(pipeline.json.finish(&report).is_ok());
});

//! Damaged captures: cut short at every kind of offset, bytes flipped at random (fixed seed),
//! absurd lengths, wrong magic, an empty file. For each: no panic, an error naming the file and
//! the byte offset, the documented exit code, and for damage after the file header the JSON
//! report of everything before the damage, valid against the schema. What tcplife promises is
//! written down in docs/bad-input.md.
//!
//! Most cases run the analysis in-process (the same `analyze` the binary calls, into the same
//! JSON writer), so that hundreds of them stay fast; a sample of each kind goes through the
//! real binary to check exit codes and standard error. The absurd-length cases are hand-built
//! captures written by the test.

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
use serde_json::Value;
use std::io::Write;
use tcplife::analyze::{NoProgress, Settings, analyze};
use tcplife::report::json::JsonDocument;

/// Largest fixture cut at many offsets; beyond it only its first records and its end are cut
/// (each cut is analysed from the start, so a large file would make the suite slow).
const WHOLE_FILE_LIMIT: usize = 64 << 10;

/// `analyze --format json` of one file, in-process.
fn analyse(path: &str) -> Value {
    let mut out = Vec::new();
    {
        let mut sink = JsonDocument::new(&mut out);
        analyze(
            &[path.to_owned()],
            Settings::default(),
            &mut sink,
            &mut NoProgress,
        )
        .unwrap();
    }
    serde_json::from_slice(&out).unwrap()
}

/// The exit code `tcplife analyze` gives a report (src/cli/mod.rs, `exit`).
fn exit_code(doc: &Value) -> i32 {
    let first = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| !i["error"].is_null());
    match first.map(|i| i["error"]["kind"].as_str().unwrap()) {
        None => 0,
        Some("open") => 3,
        Some("unknown_format") => 4,
        Some(_) => 5,
    }
}

/// What a damaged input must say: its error names the file and (when known) the offset, on
/// one line.
fn check_error(input: &Value, path: &str) {
    let error = &input["error"];
    if error.is_null() {
        return;
    }
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with(path), "no file name: {message}");
    assert!(!message.contains('\n'), "{message}");
    if let Some(offset) = error["offset"].as_u64() {
        assert!(
            message.contains(&format!(": byte {offset}:")),
            "no offset: {message}"
        );
    }
}

/// The outcome expected of a capture cut after `cut` bytes.
#[derive(Debug, PartialEq)]
struct Expected {
    kind: Option<&'static str>,
    offset: Option<u64>,
    packets: u64,
}

fn expected_cut(header_len: usize, records: &[Record], cut: usize) -> Expected {
    if cut == 0 || cut < 4 {
        // Not even a magic number: nothing says it is a capture.
        return Expected {
            kind: Some("unknown_format"),
            offset: Some(0),
            packets: 0,
        };
    }
    if cut < header_len {
        return Expected {
            kind: Some("truncated"),
            offset: Some(0),
            packets: 0,
        };
    }
    let whole = records.iter().filter(|r| r.end <= cut);
    let packets = whole.filter(|r| r.packet).count() as u64;
    match records.iter().find(|r| r.start < cut && cut < r.end) {
        Some(record) => Expected {
            kind: Some("truncated"),
            offset: Some(record.start as u64),
            packets,
        },
        None => Expected {
            kind: None,
            offset: None,
            packets,
        },
    }
}

/// Offsets worth cutting at: through the file header and the first record (every offset for
/// the first fixture of each format, a few for the others), then in and around the header, in
/// the body and at the end of four records: the first two, one in the middle of the first
/// 16 KiB, and the last. Every cut is analysed from the start of the file, so cutting at every
/// record of every fixture would make the suite slow without finding more.
fn cut_offsets(
    len: usize,
    header_len: usize,
    records: &[Record],
    every_header_offset: bool,
) -> Vec<usize> {
    let mut cuts: Vec<usize> = if every_header_offset {
        (0..=header_len + 40).collect()
    } else {
        vec![
            1,
            3,
            4,
            11,
            12,
            header_len - 1,
            header_len,
            header_len + 1,
            header_len + 15,
        ]
    };
    let early = records.iter().take_while(|r| r.end <= 16 << 10).count();
    let sample = [0, 1, early / 2, records.len().saturating_sub(1)];
    for r in sample.iter().filter_map(|&i| records.get(i)) {
        let body = r.start + 16;
        cuts.extend([r.start + 1, r.start + 7, r.start + 12, body, body + 1]);
        cuts.extend([(body + r.end) / 2, r.end - 1, r.end]);
    }
    cuts.retain(|&c| c <= len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn fixtures_cut_short_anywhere_report_what_came_before() {
    let dir = TempDir::new("cuts");
    let mut checked = 0;
    let mut formats_seen = Vec::new();
    for fixture in fixtures() {
        let bytes = std::fs::read(root().join(&fixture)).unwrap();
        let (header_len, records) = records(&bytes);
        let first_of_its_format = !formats_seen.contains(&bytes[..4].to_vec());
        formats_seen.push(bytes[..4].to_vec());
        let every_header_offset = first_of_its_format || fixture.ends_with(".pcapng");
        let cuts = cut_offsets(bytes.len(), header_len, &records, every_header_offset);
        let t0 = std::time::Instant::now();
        let mut t_schema = std::time::Duration::ZERO;
        for (i, &cut) in cuts.iter().enumerate() {
            let path = dir.write("cut", &bytes[..cut]);
            let doc = analyse(&path);
            let input = &doc["inputs"][0];
            let what = format!("{fixture} cut at {cut}");
            let got = Expected {
                kind: input["error"]["kind"].as_str().map(|k| match k {
                    "truncated" => "truncated",
                    "unknown_format" => "unknown_format",
                    other => panic!("{what}: error kind {other}: {}", input["error"]),
                }),
                offset: input["error"]["offset"].as_u64(),
                packets: input["packets"].as_u64().unwrap(),
            };
            assert_eq!(
                got,
                expected_cut(header_len, &records, cut),
                "{what}: {}",
                input["error"]
            );
            check_error(input, &path);
            if i % 8 == 0 {
                let t = std::time::Instant::now();
                assert_schema_valid(&doc, &what);
                t_schema += t.elapsed();
            }
            checked += 1;
        }
        eprintln!(
            "TIMING {fixture}: {} cuts, {:?} total, {:?} schema",
            cuts.len(),
            t0.elapsed(),
            t_schema
        );
    }
    assert!(checked > 1000, "only {checked} cuts");
    eprintln!("TIMING {checked} cuts");
}

#[test]
fn cut_captures_through_the_binary_exit_5_with_the_partial_report() {
    let dir = TempDir::new("cut-bin");
    let cases = [
        // (fixture, cut: inside the file header, a record header, a record body, a block)
        ("testdata/kernel/normal-client-close.pcap", 20),
        (
            "testdata/kernel/normal-client-close.pcap",
            24 + 16 + 74 + 16 + 74 + 9,
        ),
        ("testdata/kernel/lost-final-ack.pcap", 600),
        (
            "testdata/zeek/retransmit-timeout/retransmit-timeout.pcapng",
            300,
        ),
        (
            "testdata/zeek/flip-without-syn/http-on-irc-port-missing-syn.pcapng",
            5000,
        ),
    ];
    for (fixture, cut) in cases {
        let bytes = std::fs::read(root().join(fixture)).unwrap();
        let (header_len, records) = records(&bytes);
        let expected = expected_cut(header_len, &records, cut);
        let path = dir.write(&format!("cut-{cut}.cap"), &bytes[..cut]);
        let out = tcplife(&["analyze", "--format", "json", &path]);
        assert_eq!(out.status.code(), Some(5), "{fixture} cut at {cut}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_schema_valid(&doc, fixture);
        let input = &doc["inputs"][0];
        assert_eq!(input["error"]["kind"], "truncated");
        assert_eq!(input["error"]["offset"].as_u64(), expected.offset);
        assert_eq!(input["packets"].as_u64(), Some(expected.packets));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let offset = expected.offset.unwrap();
        assert!(
            stderr.contains(&format!("tcplife: error: {path}: byte {offset}: ")),
            "{stderr}"
        );
        if expected.packets > 0 {
            assert!(
                stderr.contains("everything before this offset was analysed"),
                "{stderr}"
            );
            assert!(doc["summary"]["connections"].as_u64().unwrap() > 0);
        }
    }
}

/// Flips 1 to 16 bytes (anywhere, or only after the file header) of each fixture, many times.
#[test]
fn random_byte_flips_never_panic_and_always_explain_themselves() {
    let dir = TempDir::new("flips");
    let mut rng = XorShift::new(0x7c9_1fe5);
    let mut errors = 0;
    let mut runs = 0;
    for fixture in fixtures() {
        let bytes = std::fs::read(root().join(&fixture)).unwrap();
        if bytes.len() > WHOLE_FILE_LIMIT {
            continue;
        }
        let (header_len, _) = records(&bytes);
        for round in 0..12 {
            let mut damaged = bytes.clone();
            let from = if round % 4 == 0 { 0 } else { header_len };
            let span = (damaged.len() - from) as u64;
            for _ in 0..=rng.below(16) {
                let at = from + rng.below(span) as usize;
                damaged[at] ^= 1 << rng.below(8);
                if rng.below(4) == 0 {
                    damaged[at] = [0x00, 0xff, 0x7f, 0x80][rng.below(4) as usize];
                }
            }
            let path = dir.write("flipped", &damaged);
            let doc = analyse(&path);
            let input = &doc["inputs"][0];
            check_error(input, &path);
            if !input["error"].is_null() {
                errors += 1;
            }
            if round % 4 == 0 {
                assert_schema_valid(&doc, &format!("{fixture} flipped, round {round}"));
            }
            runs += 1;
        }
    }
    // Flips land in payloads as often as in headers: some files must still read to the end,
    // and some must be found damaged.
    assert!(
        errors > 0 && errors < runs,
        "{errors} errors in {runs} runs"
    );
}

#[test]
fn flipped_captures_through_the_binary_exit_with_a_documented_code() {
    let dir = TempDir::new("flips-bin");
    let mut rng = XorShift::new(42);
    let mut paths = Vec::new();
    for fixture in [
        "testdata/kernel/many-connections.pcap",
        "testdata/kernel/two-interfaces.pcapng",
        "testdata/zeek/retransmit-timeout/retransmit-timeout.pcapng",
    ] {
        let Ok(bytes) = std::fs::read(root().join(fixture)) else {
            continue;
        };
        for round in 0..6 {
            let mut damaged = bytes.clone();
            for _ in 0..8 {
                let at = 24 + rng.below(damaged.len() as u64 - 24) as usize;
                damaged[at] = rng.next() as u8;
            }
            paths.push(dir.write(&format!("{round}-{}", fixture.replace('/', "_")), &damaged));
        }
    }
    for path in &paths {
        let out = tcplife(&["analyze", "--format", "json", path]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 5)),
            "{path}: exit {code:?} (a signal or a panic?)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(Some(exit_code(&doc)), code);
        check_error(&doc["inputs"][0], path);
        if code == Some(5) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("tcplife: error: {path}: byte ")),
                "{stderr}"
            );
        }
    }
}

// ---- absurd lengths and other hand-built damage ----

/// A complete handshake, raw IPv4: three records of 56 bytes at offsets 24, 80 and 136.
fn handshake() -> [(i64, Seg); 3] {
    let syn = Seg::new([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80).flags(SYN, 1000, 0);
    let syn_ack = syn.reply().flags(SYN | ACK, 5000, 1001);
    let ack = syn.flags(ACK, 1001, 5001);
    let t = 1_700_000_000_000_000_000;
    [(t, syn), (t + 1_000_000, syn_ack), (t + 2_000_000, ack)]
}

/// The same handshake as a little-endian pcapng: SHB (28 bytes), IDB (20), then EPBs of 72.
fn handshake_ng(idb: Vec<u8>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut head = ng_shb();
    head.extend(idb);
    let epbs = handshake()
        .iter()
        .map(|(t, s)| ng_epb(0, (*t / 1000) as u64, &s.bytes()))
        .collect();
    (head, epbs)
}

/// One hand-built case: what the file is, and what tcplife must say about it.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    exit: i32,
    kind: Option<&'static str>,
    offset: Option<u64>,
    packets: u64,
    /// Words the message must contain.
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let hs = handshake();
    let first = raw_pcap(&hs[..1]);
    let mut out = Vec::new();

    // pcap: a record claiming 4 GB.
    let mut b = first.clone();
    b.extend(pcap_record_header(hs[1].0, u32::MAX, 60));
    b.extend(hs[1].1.bytes());
    out.push(Case {
        name: "caplen-4gb.pcap",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(80),
        packets: 1,
        says: "4294967295 captured bytes",
    });

    // pcap: 300 MB, over the 256 MiB limit but a plausible u32.
    let mut b = first.clone();
    b.extend(pcap_record_header(hs[1].0, 300 << 20, 300 << 20));
    b.extend([0u8; 64]);
    out.push(Case {
        name: "caplen-300mb.pcap",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(80),
        packets: 1,
        says: "256 MiB",
    });

    // pcap: caplen over the snapshot length.
    let mut b = pcap_header(LINKTYPE_RAW, 100);
    pcap_record(&mut b, hs[0].0, &hs[0].1.bytes(), 40);
    b.extend(pcap_record_header(hs[1].0, 200, 200));
    b.extend([0x45u8; 200]);
    out.push(Case {
        name: "caplen-over-snaplen.pcap",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(80),
        packets: 1,
        says: "snapshot length of 100",
    });

    // pcap: zero-length records (one claiming 60 wire bytes) are packets, not damage.
    let mut b = first.clone();
    b.extend(pcap_record_header(hs[0].0, 0, 0));
    b.extend(pcap_record_header(hs[0].0, 0, 60));
    for (t, s) in &hs[1..] {
        pcap_record(&mut b, *t, &s.bytes(), s.wire_len());
    }
    out.push(Case {
        name: "zero-length-records.pcap",
        bytes: b,
        exit: 0,
        kind: None,
        offset: None,
        packets: 5,
        says: "",
    });

    // pcap: the file header alone is a capture of nothing.
    out.push(Case {
        name: "header-only.pcap",
        bytes: pcap_header(LINKTYPE_RAW, 65535),
        exit: 0,
        kind: None,
        offset: None,
        packets: 0,
        says: "",
    });
    out.push(Case {
        name: "header-cut.pcap",
        bytes: pcap_header(LINKTYPE_RAW, 65535)[..20].to_vec(),
        exit: 5,
        kind: Some("truncated"),
        offset: Some(0),
        packets: 0,
        says: "ends inside its file header",
    });
    out.push(Case {
        name: "empty.pcap",
        bytes: Vec::new(),
        exit: 4,
        kind: Some("unknown_format"),
        offset: Some(0),
        packets: 0,
        says: "empty",
    });
    out.push(Case {
        name: "three-bytes.pcap",
        bytes: vec![0xd4, 0xc3, 0xb2],
        exit: 4,
        kind: Some("unknown_format"),
        offset: Some(0),
        packets: 0,
        says: "not a packet capture",
    });
    out.push(Case {
        name: "wrong-magic.pcap",
        bytes: b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
        exit: 4,
        kind: Some("unknown_format"),
        offset: Some(0),
        packets: 0,
        says: "not a packet capture",
    });
    let mut b = raw_pcap(&hs);
    b[..4].copy_from_slice(&[0xd4, 0xc3, 0xb2, 0xa2]);
    out.push(Case {
        name: "magic-off-by-one.pcap",
        bytes: b,
        exit: 4,
        kind: Some("unknown_format"),
        offset: Some(0),
        packets: 0,
        says: "d4 c3 b2 a2",
    });

    // pcapng: a block whose two length fields disagree.
    let (head, epbs) = handshake_ng(ng_idb(LINKTYPE_RAW as u16, None));
    let at = |n: usize| (head.len() + 72 * n) as u64;
    let mut b = head.clone();
    b.extend(&epbs[0]);
    let mut bad = epbs[1].clone();
    let end = bad.len();
    bad[end - 4..].copy_from_slice(&76u32.to_le_bytes());
    b.extend(bad);
    b.extend(&epbs[2]);
    out.push(Case {
        name: "lengths-disagree.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(at(1)),
        packets: 1,
        says: "72 bytes long at its start but 76 at its end",
    });

    // pcapng: block lengths that cannot be.
    for (name, len, says) in [
        (
            "length-not-multiple-of-4.pcapng",
            73u32,
            "not a valid pcapng block length",
        ),
        (
            "length-under-12.pcapng",
            8,
            "not a valid pcapng block length",
        ),
        ("length-4gb.pcapng", 0xffff_fff0, "256 MiB"),
    ] {
        let mut b = head.clone();
        b.extend(&epbs[0]);
        let mut bad = epbs[1].clone();
        bad[4..8].copy_from_slice(&len.to_le_bytes());
        b.extend(bad);
        out.push(Case {
            name,
            bytes: b,
            exit: 5,
            kind: Some("corrupt"),
            offset: Some(at(1)),
            packets: 1,
            says,
        });
    }

    // pcapng: a block longer than what is left of the file is a cut-short file.
    let mut b = head.clone();
    b.extend(&epbs[0]);
    let mut long = epbs[1].clone();
    long[4..8].copy_from_slice(&4096u32.to_le_bytes());
    b.extend(long);
    out.push(Case {
        name: "block-past-the-end.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("truncated"),
        offset: Some(at(1)),
        packets: 1,
        says: "ends inside a record",
    });

    // pcapng: unknown and custom blocks with sound framing are passed over and counted.
    let mut b = head.clone();
    b.extend(&epbs[0]);
    b.extend(ng_block(0x1234_5678, b"whatever this is"));
    b.extend(&epbs[1]);
    b.extend(ng_block(0x0000_0bad, &[0, 0, 0, 0, 1, 2, 3, 4]));
    b.extend(&epbs[2]);
    out.push(Case {
        name: "unknown-blocks.pcapng",
        bytes: b,
        exit: 0,
        kind: None,
        offset: None,
        packets: 3,
        says: "",
    });

    // pcapng: a packet of an interface that was never described.
    let mut b = head.clone();
    b.extend(&epbs[0]);
    let mut stray = epbs[1].clone();
    stray[8..12].copy_from_slice(&3u32.to_le_bytes());
    b.extend(stray);
    out.push(Case {
        name: "epb-unknown-interface.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(at(1)),
        packets: 1,
        says: "names interface 3, but its section describes only 1 interface(s)",
    });

    // pcapng: an EPB claiming more captured bytes than the block holds.
    let mut b = head.clone();
    b.extend(&epbs[0]);
    let mut greedy = epbs[1].clone();
    greedy[20..24].copy_from_slice(&1000u32.to_le_bytes());
    b.extend(greedy);
    out.push(Case {
        name: "epb-caplen-over-block.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(at(1)),
        packets: 1,
        says: "claims 1000 captured bytes, more than it can hold",
    });

    // pcapng: a simple packet block before any interface.
    let mut b = ng_shb();
    let mut spb = Vec::new();
    spb.extend(40u32.to_le_bytes());
    spb.extend(hs[0].1.bytes());
    b.extend(ng_block(3, &spb));
    out.push(Case {
        name: "spb-without-interface.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(28),
        packets: 0,
        says: "before any interface description",
    });

    // pcapng: a second section whose byte-order magic is garbage.
    let mut b = head.clone();
    b.extend(&epbs[0]);
    let mut shb = ng_shb();
    shb[8..12].copy_from_slice(&[1, 2, 3, 4]);
    b.extend(shb);
    out.push(Case {
        name: "bad-second-section.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(at(1)),
        packets: 1,
        says: "byte-order magic",
    });

    // pcapng: more interfaces than any capture needs (each description is held in memory).
    let mut b = ng_shb();
    let idb = ng_idb(LINKTYPE_RAW as u16, None);
    for _ in 0..=65536 {
        b.extend(&idb);
    }
    out.push(Case {
        name: "too-many-interfaces.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(28 + 65536 * 20),
        packets: 0,
        says: "more than 65536 interfaces",
    });

    // pcapng: an interface whose if_tsoffset puts its packets before 1970. Fuzzing found that
    // timestamps this far apart overflowed duration arithmetic in the tracker; the reader now
    // keeps every timestamp within 1970..2116 (capture::MAX_TS_NS).
    let (head_off, epbs_off) = handshake_ng(ng_idb(LINKTYPE_RAW as u16, Some(-3_000_000_000)));
    let mut b = head_off.clone();
    b.extend(&epbs_off[0]);
    out.push(Case {
        name: "timestamp-before-1970.pcapng",
        bytes: b,
        exit: 5,
        kind: Some("corrupt"),
        offset: Some(head_off.len() as u64),
        packets: 0,
        says: "outside the years 1970 to 2116",
    });

    out
}

#[test]
fn absurd_lengths_and_broken_blocks_are_named_with_their_offset() {
    let dir = TempDir::new("cases");
    for case in cases() {
        let path = dir.write(case.name, &case.bytes);
        let out = tcplife(&["analyze", "--format", "json", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(case.exit),
            "{}: {stderr}",
            case.name
        );
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: no JSON report ({e})", case.name));
        assert_schema_valid(&doc, case.name);
        let input = &doc["inputs"][0];
        assert_eq!(input["error"]["kind"].as_str(), case.kind, "{}", case.name);
        assert_eq!(
            input["error"]["offset"].as_u64(),
            case.offset,
            "{}",
            case.name
        );
        assert_eq!(
            input["packets"].as_u64(),
            Some(case.packets),
            "{}",
            case.name
        );
        check_error(input, &path);
        if let Some(offset) = case.offset {
            let line = format!("tcplife: error: {path}: byte {offset}: ");
            assert!(stderr.contains(&line), "{}: {stderr}", case.name);
            assert!(stderr.contains(case.says), "{}: {stderr}", case.name);
        } else {
            assert!(!stderr.contains("error"), "{}: {stderr}", case.name);
        }
    }
}

#[test]
fn what_was_read_before_the_damage_is_analysed() {
    // The handshake's first two segments, then a record claiming 4 GB: the connection is
    // still reported, as far as it got.
    let hs = handshake();
    let mut b = raw_pcap(&hs[..2]);
    b.extend(pcap_record_header(hs[2].0, u32::MAX, 60));
    let dir = TempDir::new("partial");
    let path = dir.write("partial.pcap", &b);
    let doc = analyse(&path);
    assert_eq!(doc["summary"]["connections"], 1);
    let conn = &doc["connections"][0];
    assert_eq!(conn["finished_by"], "capture_end");
    assert_eq!(conn["client_sent"]["packets"], 1);
    assert_eq!(conn["server_sent"]["packets"], 1);
}

#[test]
fn skipped_block_types_are_counted_in_bounded_memory() {
    // 300 blocks of distinct unknown types: the first 256 types are counted one by one, the
    // rest together under 0xffffffff.
    let (head, epbs) = handshake_ng(ng_idb(LINKTYPE_RAW as u16, None));
    let mut b = head;
    for (i, epb) in epbs.iter().enumerate() {
        for t in 0..100u32 {
            b.extend(ng_block(0x0001_0000 + i as u32 * 1000 + t, &[]));
        }
        b.extend(epb);
    }
    let dir = TempDir::new("types");
    let doc = analyse(&dir.write("types.pcapng", &b));
    let skipped = doc["inputs"][0]["pcapng"]["skipped_blocks"]
        .as_object()
        .unwrap();
    assert_eq!(skipped.len(), tcplife::capture::MAX_SKIPPED_TYPES + 1);
    let other = tcplife::capture::OTHER_BLOCK_TYPES.to_string();
    assert_eq!(skipped[&other], 300 - 256);
    assert_eq!(doc["inputs"][0]["packets"], 3);
    assert!(doc["inputs"][0]["error"].is_null());
}

#[test]
fn unknown_blocks_are_counted_by_type() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "unknown-blocks.pcapng")
        .unwrap();
    let dir = TempDir::new("unknown");
    let doc = analyse(&dir.write(case.name, &case.bytes));
    let skipped = &doc["inputs"][0]["pcapng"]["skipped_blocks"];
    assert_eq!(skipped["305419896"], 1, "{skipped}");
    assert_eq!(skipped["2989"], 1, "{skipped}");
    assert_eq!(doc["summary"]["connections"], 1);
}

// ---- compressed captures ----

#[test]
fn damaged_compressed_captures_exit_5() {
    let dir = TempDir::new("compressed");
    let plain = std::fs::read(root().join("testdata/kernel/many-connections.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = std::fs::read(root().join("src/capture/testdata/sample.pcap.zst")).unwrap();

    let mut flipped = gz.clone();
    let middle = flipped.len() / 2;
    for b in &mut flipped[middle..middle + 16] {
        *b ^= 0x5a;
    }
    for (name, bytes) in [
        ("cut.pcap.gz", gz[..gz.len() / 2].to_vec()),
        ("cut-in-trailer.pcap.gz", gz[..gz.len() - 3].to_vec()),
        ("flipped.pcap.gz", flipped),
        ("cut.pcap.zst", zst[..zst.len() - 5].to_vec()),
    ] {
        let path = dir.write(name, &bytes);
        let out = tcplife(&["analyze", "--format", "json", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{name}: {stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_schema_valid(&doc, name);
        check_error(&doc["inputs"][0], &path);
        assert!(
            stderr.contains(&format!("tcplife: error: {path}: byte ")),
            "{name}: {stderr}"
        );
    }
}

//! `tcplife diagram`: ladders of kernel fixture connections compared line for line with the
//! expected text in testdata/diagrams/, and the command's selectors, widths, colour and flags.
//!
//! After an intended change of the picture: `TCPLIFE_BLESS=1 cargo test --test diagram`, then
//! review the diff of testdata/diagrams/*.txt.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

/// (expected file, arguments after `diagram`).
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "normal-client-close",
        &["testdata/kernel/normal-client-close.pcap"],
    ),
    (
        "rst-abort-client",
        &["testdata/kernel/rst-abort-client.pcap"],
    ),
    ("lost-final-ack", &["testdata/kernel/lost-final-ack.pcap"]),
    (
        "simultaneous-close",
        &["testdata/kernel/simultaneous-close.pcap"],
    ),
    (
        "excessive-retransmission",
        &["testdata/kernel/excessive-retransmission.pcap"],
    ),
    (
        "segment-not-captured",
        &["testdata/kernel/segment-not-captured.pcap"],
    ),
    (
        "half-open-in-a-syn-burst",
        &[
            "testdata/kernel/many-connections.pcap",
            "testdata/kernel/syn-burst.pcap",
            "--anomaly",
            "half_open",
        ],
    ),
];

fn diagram(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["diagram"];
    all.extend_from_slice(args);
    let out = tcplife(&all);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The diagram, which must be drawn (exit 0).
fn drawn(args: &[&str]) -> String {
    let (code, text, err) = diagram(args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    text
}

#[test]
fn fixtures_match_their_expected_diagrams() {
    let bless = std::env::var_os("TCPLIFE_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, args) in EXPECTED {
        let text = drawn(args);
        let path = root().join(format!("testdata/diagrams/{name}.txt"));
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{name}: no expected diagram; run with TCPLIFE_BLESS=1 and review it")
        });
        if text != expected {
            let line = text
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| text.lines().count().min(expected.lines().count()));
            failures.push(format!(
                "{name}: differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}",
                path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("(end)"),
                text.lines().nth(line).unwrap_or("(end)")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_pictures_show_what_the_scenarios_are_about() {
    let lost = drawn(&["testdata/kernel/lost-final-ack.pcap"]);
    assert!(lost.contains("final ACK never seen: server stuck in LAST-ACK"));
    assert_eq!(lost.matches("retransmission").count(), 5);
    let rst = drawn(&["testdata/kernel/rst-abort-client.pcap"]);
    assert!(rst.contains("RST+ACK seq=39 ack=45"));
    assert!(rst.contains("reset by the client in ESTABLISHED"));
    let normal = drawn(&["testdata/kernel/normal-client-close.pcap"]);
    for state in [
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "CLOSE-WAIT",
        "FIN-WAIT-2",
        "LAST-ACK",
        "TIME-WAIT",
        "CLOSED",
    ] {
        assert!(normal.contains(state), "{state} missing");
    }
    assert!(normal.contains("SYN seq=0") && normal.contains("SYN+ACK seq=0 ack=1"));
    let simultaneous = drawn(&["testdata/kernel/simultaneous-close.pcap"]);
    let states: Vec<&str> = simultaneous
        .lines()
        .filter(|l| l.contains('│') && l.contains("CLOSING"))
        .collect();
    assert_eq!(states.len(), 2, "both sides pass CLOSING: {states:?}");
    let unseen = drawn(&["testdata/kernel/segment-not-captured.pcap"]);
    assert!(unseen.contains("100 B never captured"));
}

#[test]
fn every_kernel_fixture_fits_80_columns_and_wider_when_asked() {
    for capture in captures_in(&root().join("testdata/kernel")) {
        let capture = relative(&capture);
        for (width, args) in [(80, vec![]), (120, vec!["--width", "120"])] {
            let mut all = vec![capture.as_str()];
            all.extend(args);
            let text = drawn(&all);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{capture}: {} columns: {line}",
                    line.chars().count()
                );
            }
        }
    }
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let capture = "testdata/kernel/lost-final-ack.pcap";
    assert!(!drawn(&[capture]).contains('\x1b'), "piped output is plain");
    let coloured = drawn(&["--color", "always", capture]);
    assert!(coloured.contains("\x1b[33m"), "warnings in yellow");
    assert!(coloured.contains("\x1b[0m"));
    let strip = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(
        strip(&coloured),
        drawn(&[capture]),
        "colour changes nothing else"
    );
    assert!(!drawn(&["--color", "never", capture]).contains('\x1b'));
}

/// The `connection #N:` of a diagram's first line.
fn id_of(text: &str) -> u64 {
    let first = text.lines().next().unwrap();
    first["connection #".len()..first.find(':').unwrap()]
        .parse()
        .unwrap()
}

#[test]
fn selectors_pick_the_connection() {
    let both = [
        "testdata/kernel/many-connections.pcap",
        "testdata/kernel/syn-burst.pcap",
    ];
    let pick = |extra: &[&str]| {
        let mut args = both.to_vec();
        args.extend_from_slice(extra);
        id_of(&drawn(&args))
    };
    // Connections are numbered by their first packet: many-connections.pcap gives ten packets
    // to each of its 250, and syn-burst.pcap's SYNs follow from packet 2501 on.
    assert_eq!(pick(&["--conn", "61"]), 61);
    assert_eq!(pick(&["--conn", "#2599"]), 2599);
    assert_eq!(pick(&["--anomaly", "half_open"]), 2501);
    assert_eq!(pick(&["--conn", "10.77.0.1:39406"]), 2503);
    assert_eq!(pick(&["--conn", "10.77.0.2:8080"]), 1, "either side");
    // The default: the first connection with a warning (here a TIME-WAIT reuse)...
    let default = pick(&[]);
    let warned = pick(&["--anomaly", "time_wait_reuse"]);
    assert_eq!(default, warned.min(2501));
    // ...else the first.
    assert_eq!(
        id_of(&drawn(&["testdata/kernel/normal-client-close.pcap"])),
        1
    );
}

#[test]
fn no_match_and_bad_selectors_are_errors() {
    let capture = "testdata/kernel/normal-client-close.pcap";
    let (code, out, err) = diagram(&[capture, "--conn", "99"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("connection #99 was not found in 1 connection"),
        "{err}"
    );
    let (code, _, err) = diagram(&[capture, "--anomaly", "rst_teardown"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("rst_teardown"), "{err}");
    let (code, _, err) = diagram(&[capture, "--conn", "web"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("neither a connection id"), "{err}");
    let (code, _, _) = diagram(&[capture, "--anomaly", "no_such_kind"]);
    assert_eq!(code, Some(2));
    let (code, _, err) = diagram(&["-"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("standard input"), "{err}");
    let (code, _, _) = diagram(&["no/such/capture.pcap"]);
    assert_eq!(code, Some(3));
}

#[test]
fn expand_draws_every_segment() {
    let capture = "testdata/kernel/excessive-retransmission.pcap";
    let collapsed = drawn(&[capture]);
    assert!(collapsed.contains("segments in"));
    assert!(collapsed.contains("--expand draws every segment"));
    let full = drawn(&[capture, "--expand"]);
    assert!(!full.contains("segments in"));
    let packets = full
        .lines()
        .filter(|l| l.starts_with('+') && l.contains(" #"))
        .count();
    assert_eq!(packets, 146, "one row per packet");
    assert!(full.lines().count() > collapsed.lines().count() * 3);
}

#[test]
fn absolute_sequence_numbers_on_request() {
    let capture = "testdata/kernel/lost-final-ack.pcap";
    let relative = drawn(&[capture]);
    assert!(relative.contains("relative to each side's ISN"));
    let absolute = drawn(&[capture, "--absolute-seq", "--width", "100"]);
    assert!(absolute.contains("SYN seq=4116272222"), "{absolute}");
    assert!(absolute.contains("ack=4116272223"));
    assert!(absolute.contains("as on the wire"));
}

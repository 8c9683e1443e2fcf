//! tcplife against Zeek's own recorded answers: every case in testdata/zeek is analysed with
//! `--format zeek --zeek-timers` (and Zeek's likely server ports and checksum handling for that
//! case), the conn.log is read back with a zeek-cut-like reader, and every TCP row Zeek
//! recorded is compared, keyed on the 4-tuple: conn_state, history, and the byte and packet
//! columns the baseline has. The agreement table is printed; the test fails below the targets
//! of issue 5. docs/zeek.md explains every remaining difference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The numeric columns compared when the baseline has them.
const COUNTS: [&str; 8] = [
    "duration",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
];

type Key = (String, String, String, String);

/// One row: its 4-tuple (absent in baselines that print only history and state) and columns.
#[derive(Debug, Clone)]
struct Row {
    key: Option<Key>,
    cols: BTreeMap<String, String>,
}

impl Row {
    fn from_cols(cols: BTreeMap<String, String>) -> Row {
        let get = |k: &str| cols.get(k).cloned();
        let key = match (
            get("id.orig_h"),
            get("id.orig_p"),
            get("id.resp_h"),
            get("id.resp_p"),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => Some((a, b, c, d)),
            _ => None,
        };
        Row { key, cols }
    }

    fn get(&self, col: &str) -> Option<&str> {
        self.cols.get(col).map(String::as_str)
    }
}

/// A zeek-cut-like reader: `#fields` names the columns, `#` lines are metadata, fields are
/// tab-separated. Also reads the zeek-cut output files (a plain header line first).
fn read_tsv(text: &str) -> Vec<Row> {
    let mut fields: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("###") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#fields\t") {
            fields = Some(rest.split('\t').map(str::to_owned).collect());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let values: Vec<&str> = line.split('\t').collect();
        let Some(names) = &fields else {
            fields = Some(values.iter().map(|s| (*s).to_owned()).collect());
            continue;
        };
        assert_eq!(values.len(), names.len(), "ragged line: {line}");
        let cols = names
            .iter()
            .cloned()
            .zip(values.iter().map(|s| (*s).to_owned()))
            .collect();
        rows.push(Row::from_cols(cols));
    }
    rows
}

/// `history, conn_state` lines printed by a script (the RST cases).
fn read_history_state(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (h, s) = l.split_once(", ").expect("history, conn_state");
            let cols = [("history", h), ("conn_state", s.trim())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Row::from_cols(cols)
        })
        .collect()
}

/// `REMOVE:, [orig_h=…, orig_p=…/tcp, resp_h=…, resp_p=…/tcp, …], HISTORY` (ssh-dups).
fn read_script_print(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("REMOVE:")) {
        let open = line.find('[').unwrap();
        let close = line.rfind("], ").unwrap();
        let mut cols = BTreeMap::new();
        for part in line[open + 1..close].split(", ") {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim_end_matches("/tcp");
                let name = match k {
                    "orig_h" => "id.orig_h",
                    "orig_p" => "id.orig_p",
                    "resp_h" => "id.resp_h",
                    "resp_p" => "id.resp_p",
                    _ => continue,
                };
                cols.insert(name.to_owned(), v.to_owned());
            }
        }
        let history = line[close + 3..].trim();
        cols.insert("history".into(), history.into());
        rows.push(Row::from_cols(cols));
    }
    rows
}

/// Zeek's likely server ports for a case: the full list, or in bare mode the ports of the
/// protocol scripts the test loaded.
fn server_ports(case: &Value) -> String {
    if !case["bare_mode"].as_bool().unwrap() {
        return "zeek".into();
    }
    let mut ports = Vec::new();
    for script in case["scripts_loaded"].as_array().unwrap() {
        let list = match script.as_str().unwrap() {
            "base/protocols/ftp" => "21,2811",
            "base/protocols/http" => "80,81,631,1080,3128,8000,8080,8888",
            "base/protocols/smtp" => "25,587",
            "base/protocols/irc" => "6666-6669",
            "base/protocols/ssl" => "443,563,585,614,636,989,990,992,993,995,5223",
            "base/protocols/dns" => "53",
            _ => continue,
        };
        ports.push(list);
    }
    if ports.is_empty() {
        "none".into()
    } else {
        ports.join(",")
    }
}

/// Runs tcplife on a case and reads its conn.log back, checking the log's shape.
fn tcplife_conn_log(trace: &str, case: &Value, timers: bool) -> Vec<Row> {
    let ports = server_ports(case);
    let mut args = vec![
        "analyze",
        "--format",
        "zeek",
        "--quiet",
        "--server-ports",
        &ports,
    ];
    if timers {
        args.push("--zeek-timers");
    }
    if !case["ignore_checksums"].as_bool().unwrap() {
        args.push("--verify-checksums");
    }
    args.push(trace);
    let out = tcplife(&args);
    assert!(
        out.status.success(),
        "{trace}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    check_log_shape(&text, trace);
    read_tsv(&text)
}

/// The header lines Zeek writes, 22 columns on every row, `#close` last.
fn check_log_shape(text: &str, what: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#separator \\x09", "{what}");
    assert_eq!(lines[1], "#set_separator\t,");
    assert_eq!(lines[2], "#empty_field\t(empty)");
    assert_eq!(lines[3], "#unset_field\t-");
    assert_eq!(lines[4], "#path\tconn");
    assert!(lines[5].starts_with("#open\t"));
    assert!(lines[6].starts_with("#fields\tts\tuid\tid.orig_h"));
    assert!(lines[7].starts_with("#types\ttime\tstring\taddr"));
    assert_eq!(lines[6].split('\t').count(), 23);
    assert_eq!(lines[7].split('\t').count(), 23);
    assert!(lines.last().unwrap().starts_with("#close\t"), "{what}");
    for line in lines.iter().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 22, "{what}: {line}");
        assert!(
            cols.iter().all(|c| !c.is_empty()),
            "{what}: empty field in {line}"
        );
        assert!(cols[1].starts_with('C'), "uid");
        assert_eq!(cols[6], "tcp");
    }
}

#[derive(Default, Debug, Clone)]
struct Tally {
    rows: usize,
    unsupported: usize,
    missing: usize,
    state_rows: usize,
    state_equal: usize,
    history_rows: usize,
    history_equal: usize,
    count_rows: usize,
    counts_equal: usize,
}

fn score(zeek: &Row, ours: &Row) -> usize {
    zeek.cols
        .iter()
        .filter(|(k, v)| ours.get(k) == Some(v.as_str()))
        .count()
}

fn compare_case(dir: &Path, timers: bool, diffs: &mut Vec<String>) -> Tally {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let expected_text =
        std::fs::read_to_string(dir.join(case["expected_file"].as_str().unwrap())).unwrap();
    let baseline = match case["expected_format"].as_str().unwrap() {
        "conn.log" | "zeek-cut" => read_tsv(&expected_text),
        "history_conn_state" => read_history_state(&expected_text),
        "script-print" => read_script_print(&expected_text),
        other => panic!("{name}: unknown expected format {other}"),
    };
    let trace = dir.join(case["trace"].as_str().unwrap());
    let ours = tcplife_conn_log(&relative(&trace), &case, timers);

    let mut t = Tally::default();
    let mut used = vec![false; ours.len()];
    for z in baseline {
        if z.get("proto").is_some_and(|p| p != "tcp") {
            continue;
        }
        t.rows += 1;
        if z.get("tunnel_parents").is_some_and(|p| p != "-") {
            t.unsupported += 1;
            continue;
        }
        // The best unused row with the same 4-tuple (any row when the baseline has none).
        let best = ours
            .iter()
            .enumerate()
            .filter(|(i, o)| !used[*i] && (z.key.is_none() || o.key == z.key))
            .max_by_key(|(i, o)| (score(&z, o), std::cmp::Reverse(*i)));
        let Some((i, o)) = best else {
            t.missing += 1;
            diffs.push(format!("{name}: no row for {:?}", z.key));
            continue;
        };
        used[i] = true;
        if let Some(state) = z.get("conn_state") {
            t.state_rows += 1;
            if o.get("conn_state") == Some(state) {
                t.state_equal += 1;
            } else {
                diffs.push(format!(
                    "{name} {:?}: conn_state {state}, tcplife {:?}",
                    z.key,
                    o.get("conn_state")
                ));
            }
        }
        if let Some(history) = z.get("history") {
            t.history_rows += 1;
            if o.get("history") == Some(history) {
                t.history_equal += 1;
            } else {
                diffs.push(format!(
                    "{name} {:?}: history {history}, tcplife {:?}",
                    z.key,
                    o.get("history")
                ));
            }
        }
        let compared: Vec<_> = COUNTS.iter().filter(|c| z.get(c).is_some()).collect();
        if !compared.is_empty() {
            t.count_rows += 1;
            let wrong: Vec<String> = compared
                .iter()
                .filter(|c| z.get(c) != o.get(c))
                .map(|c| format!("{c} {} vs {}", z.get(c).unwrap(), o.get(c).unwrap_or("?")))
                .collect();
            if wrong.is_empty() {
                t.counts_equal += 1;
            } else {
                diffs.push(format!("{name} {:?}: {}", z.key, wrong.join(", ")));
            }
        }
    }
    t
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Overall agreement: conn_state %, history %, % of cases with every conn_state equal.
struct Agreement {
    state: f64,
    history: f64,
    cases_all_equal: f64,
    /// Cases where some row is missing or some compared column differs.
    imperfect: Vec<String>,
}

fn agreement(timers: bool) -> Agreement {
    let root_dir = root().join("testdata/zeek");
    let mut cases: Vec<_> = std::fs::read_dir(&root_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 30);

    let mut diffs = Vec::new();
    let mut total = Tally::default();
    let mut cases_all_equal = 0;
    let mut cases_counted = 0;
    let mut imperfect = Vec::new();
    println!(
        "\n{} --zeek-timers\n{:<22} {:>5} {:>5} {:>12} {:>12} {:>12}",
        if timers { "with" } else { "without" },
        "case",
        "rows",
        "unsup",
        "conn_state",
        "history",
        "bytes/pkts"
    );
    for dir in &cases {
        let t = compare_case(dir, timers, &mut diffs);
        let frac = |a: usize, b: usize| format!("{a}/{b}");
        println!(
            "{:<22} {:>5} {:>5} {:>12} {:>12} {:>12}",
            dir.file_name().unwrap().to_string_lossy(),
            t.rows,
            t.unsupported,
            frac(t.state_equal, t.state_rows),
            frac(t.history_equal, t.history_rows),
            frac(t.counts_equal, t.count_rows),
        );
        let perfect = t.missing == 0
            && t.state_equal == t.state_rows
            && t.history_equal == t.history_rows
            && t.counts_equal == t.count_rows;
        if !perfect {
            imperfect.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
        if t.rows > t.unsupported {
            cases_counted += 1;
            if t.missing == 0 && t.state_equal == t.state_rows {
                cases_all_equal += 1;
            }
        }
        total.rows += t.rows;
        total.unsupported += t.unsupported;
        total.missing += t.missing;
        total.state_rows += t.state_rows;
        total.state_equal += t.state_equal;
        total.history_rows += t.history_rows;
        total.history_equal += t.history_equal;
        total.count_rows += t.count_rows;
        total.counts_equal += t.counts_equal;
    }
    // Rows tcplife did not produce count against it.
    let state_rows = total.state_rows + total.missing;
    let history_rows = total.history_rows + total.missing;
    let result = Agreement {
        state: pct(total.state_equal, state_rows),
        history: pct(total.history_equal, history_rows),
        cases_all_equal: pct(cases_all_equal, cases_counted),
        imperfect,
    };
    println!(
        "TOTAL: {} TCP rows ({} tunnelled, unsupported; {} not produced); conn_state equal on \
         {:.1}% ({}/{}), history equal on {:.1}% ({}/{}), bytes/packets/duration equal on \
         {:.1}% ({}/{}); conn_state equal on every row of {:.1}% of cases ({}/{})",
        total.rows,
        total.unsupported,
        total.missing,
        result.state,
        total.state_equal,
        state_rows,
        result.history,
        total.history_equal,
        history_rows,
        pct(total.counts_equal, total.count_rows),
        total.counts_equal,
        total.count_rows,
        result.cases_all_equal,
        cases_all_equal,
        cases_counted
    );
    for d in &diffs {
        println!("  differs: {d}");
    }
    result
}

#[test]
fn conn_state_and_history_agree_with_zeek() {
    let a = agreement(true);
    assert!(
        a.state >= 95.0,
        "conn_state agreement {:.1}% < 95%",
        a.state
    );
    assert!(
        a.cases_all_equal >= 90.0,
        "cases all equal {:.1}% < 90%",
        a.cases_all_equal
    );
    assert!(
        a.history >= 85.0,
        "history agreement {:.1}% < 85%",
        a.history
    );
}

/// Without `--zeek-timers` tcplife's records stay whole: rows Zeek splits off on its timers
/// and reuse rule are not produced, and packets after a close go to the closed connection's
/// tombstone. docs/zeek.md explains each of these cases; every other case agrees on every row.
#[test]
fn whole_records_agree_with_zeek_except_for_timer_splits() {
    const EXPLAINED: [&str; 4] = [
        "bad-chksum-localhost",
        "pop3-basic",
        "ssh-halfduplex-client",
        "teredo",
    ];
    let a = agreement(false);
    let unexplained: Vec<_> = a
        .imperfect
        .iter()
        .filter(|c| !EXPLAINED.contains(&c.as_str()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences: {unexplained:?}"
    );
}

#[test]
fn json_records_carry_the_zeek_rows_and_validate() {
    // Each refused SYN is sent again with the same ISN: one tcplife record per 4-tuple, but
    // three Zeek rows (Zeek starts a new row for a SYN on a closed connection).
    let trace = "testdata/zeek/pop3-basic/pop3.pcap";
    let out = tcplife(&[
        "analyze",
        "--format",
        "json",
        "--quiet",
        "--zeek-timers",
        trace,
    ]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema_valid(&doc, trace);
    let conns = doc["connections"].as_array().unwrap();
    let mut rej = 0;
    for c in conns {
        assert_eq!(c["conn_state"], c["zeek"]["conn_state"]);
        assert_eq!(c["history"], c["zeek"]["history"]);
        let rows = std::iter::once(&c["zeek"]).chain(c["zeek"]["split"].as_array().unwrap());
        rej += rows.filter(|r| r["conn_state"] == "REJ").count();
    }
    assert_eq!(rej, 6);
    let whole = analyze_json(trace);
    let split = |d: &Value| {
        d["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["zeek"]["split"].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert_eq!(split(&whole), 0);
    assert_eq!(split(&doc), 4);
}

#[test]
fn without_zeek_timers_a_record_stays_one_row() {
    // The client-side half-duplex trace: Zeek's attempt timer splits five connections.
    let trace = "testdata/zeek/ssh-halfduplex-client/ssh.client-side-half-duplex.pcap";
    let count = |extra: &[&str]| {
        let mut args = vec!["analyze", "--format", "zeek", "--quiet"];
        args.extend_from_slice(extra);
        args.push(trace);
        let out = tcplife(&args);
        assert!(out.status.success());
        read_tsv(&String::from_utf8(out.stdout).unwrap()).len()
    };
    assert_eq!(count(&[]), 20);
    assert_eq!(count(&["--zeek-timers"]), 25);
}

#[test]
fn bad_checksums_are_counted_in_the_input_stats() {
    let trace = "testdata/zeek/syn-bad-checksum/syn-bad.pcap";
    let out = tcplife(&[
        "analyze",
        "--format",
        "json",
        "--quiet",
        "--verify-checksums",
        trace,
    ]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema_valid(&doc, trace);
    assert_eq!(doc["inputs"][0]["bad_checksums"]["tcp"], 1);
    assert_eq!(doc["connections"][0]["history"], "C");
    let plain = analyze_json(trace);
    assert!(plain["inputs"][0].get("bad_checksums").is_none());
    assert_eq!(plain["connections"][0]["history"], "S");
}

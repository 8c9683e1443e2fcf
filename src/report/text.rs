//! The default output: a summary a person reads in ten seconds.

use super::record::ConnectionRecord;
use super::summary::Distribution;
use super::time::{Human, Rfc3339};
use crate::analyze::{InputStats, RunReport, Sink, Takes};
use crate::detect::{Anomaly, Details, Kind, Severity};
use crate::inline::InlineVec;
use crate::track::Outcome;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

/// How many of the worst connections the summary lists.
const WORST: usize = 10;

/// Most anomaly groups kept; beyond it further groups are only counted.
const MAX_GROUPS: usize = 10_000;

pub struct TextSummary<W: Write> {
    out: W,
    /// The worst connections so far, worst first (bounded).
    worst: Vec<ConnectionRecord>,
    /// Digests the records handed over whole.
    digester: Digester,
    /// Anomalies by kind and server endpoint.
    groups: BTreeMap<(Kind, IpAddr, u16), Group>,
    ungrouped: u64,
}

/// Connections with the same kind of anomaly at the same server.
#[derive(Debug, Default)]
struct Group {
    count: u64,
    examples: Vec<u64>,
    /// The largest duration involved (CLOSE-WAIT time, zero-window time), or the smallest gap
    /// (TIME-WAIT reuse).
    extreme_ns: Option<i64>,
}

/// What the summary reads of one record: made on the tracking thread that finished it, so
/// that the record itself seldom crosses to the reading thread.
#[derive(Debug)]
pub struct Digest {
    id: u64,
    server: (IpAddr, u16),
    /// Its anomalies the summary lists (of at least the minimum severity), with their
    /// measures. Never `None`: the items of an `InlineVec` need a default.
    anomalies: InlineVec<Option<(Kind, Option<i64>)>, 2>,
    /// The record whole, when it may be one of the run's worst.
    worst: Option<Box<ConnectionRecord>>,
}

/// Makes the digests of one tracking thread's records. It keeps the ranks of the worst records
/// it has seen: a record that is not among them is not among the worst of the run either, and
/// is not kept whole.
#[derive(Debug, Clone)]
pub struct Digester {
    min_severity: Severity,
    /// Worst first, at most [`WORST`].
    worst: Vec<Rank>,
}

impl Digester {
    pub fn new(min_severity: Severity) -> Self {
        Digester {
            min_severity,
            worst: Vec::with_capacity(WORST + 1),
        }
    }

    pub fn digest(&mut self, record: ConnectionRecord) -> Digest {
        let mut anomalies = InlineVec::default();
        for a in record
            .anomalies
            .iter()
            .filter(|a| a.severity >= self.min_severity)
        {
            anomalies.push(Some((a.kind, measure(a))));
        }
        Digest {
            id: record.id,
            server: (record.server.ip, record.server.port),
            anomalies,
            worst: self.among_worst(&record).then(|| Box::new(record)),
        }
    }

    /// Whether a record ranks among the worst seen so far, which it then is.
    fn among_worst(&mut self, r: &ConnectionRecord) -> bool {
        r.outcome.badness() > 0 && keep_if_worst(&mut self.worst, rank(r), |&rank| rank)
    }
}

impl<W: Write> TextSummary<W> {
    pub fn new(out: W, min_severity: Severity) -> Self {
        TextSummary {
            out,
            worst: Vec::with_capacity(WORST + 1),
            digester: Digester::new(min_severity),
            groups: BTreeMap::new(),
            ungrouped: 0,
        }
    }

    fn group(&mut self, d: &Digest) {
        for &(kind, measure) in d.anomalies.as_slice().iter().flatten() {
            let key = (kind, d.server.0, d.server.1);
            if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&key) {
                self.ungrouped += 1;
                continue;
            }
            let g = self.groups.entry(key).or_default();
            g.count += 1;
            if g.examples.len() < 3 {
                g.examples.push(d.id);
            }
            if let Some(v) = measure {
                g.extreme_ns = Some(match (kind, g.extreme_ns) {
                    (_, None) => v,
                    (Kind::TimeWaitReuse, Some(x)) => x.min(v),
                    (_, Some(x)) => x.max(v),
                });
            }
        }
    }

    fn write_anomalies(&mut self, report: &RunReport) -> io::Result<()> {
        let mut groups: Vec<_> = self
            .groups
            .iter()
            .map(|(&(kind, ip, port), g)| ((kind, endpoint(ip, port)), g))
            .collect();
        groups.sort_by_key(|((kind, ep), g)| {
            (
                std::cmp::Reverse(kind.severity()),
                std::cmp::Reverse(g.count),
                *kind,
                ep.clone(),
            )
        });
        let episodes: Vec<_> = report
            .summary
            .episodes
            .iter()
            .filter(|a| a.severity >= self.digester.min_severity)
            .collect();
        if groups.is_empty() && episodes.is_empty() {
            return Ok(());
        }
        let out = &mut self.out;
        writeln!(out, "\nAnomalies (worst first)")?;
        for a in episodes.iter().filter(|a| a.severity == Severity::Alert) {
            writeln!(out, "  {:<8}{}", "ALERT", explain_episode(a))?;
        }
        for ((kind, ep), g) in &groups {
            let examples: Vec<String> = g.examples.iter().map(|id| format!("#{id}")).collect();
            writeln!(
                out,
                "  {:<8}{}  (e.g. {})",
                kind.severity().name().to_uppercase(),
                explain_group(*kind, ep, g),
                examples.join(", ")
            )?;
        }
        for a in episodes.iter().filter(|a| a.severity != Severity::Alert) {
            writeln!(
                out,
                "  {:<8}{}",
                a.severity.name().to_uppercase(),
                explain_episode(a)
            )?;
        }
        if self.ungrouped > 0 {
            writeln!(
                out,
                "  ... and {} more in other groups (see --format json)",
                self.ungrouped
            )?;
        }
        Ok(())
    }

    fn write_report(&mut self, report: &RunReport) -> io::Result<()> {
        let out = &mut self.out;
        write_header(out, report)?;
        write_outcomes(out, report)?;
        if !self.worst.is_empty() {
            writeln!(out, "\nWorst connections")?;
            for r in &self.worst {
                writeln!(
                    out,
                    "  #{:<6} {} → {}  {:<15} {}",
                    r.id,
                    endpoint(r.client.ip, r.client.port),
                    endpoint(r.server.ip, r.server.port),
                    r.outcome.name(),
                    explain(r)
                )?;
            }
        }
        write_timings(out, report)?;
        crate::states::write_peaks(out, &report.summary.state_peaks)?;
        self.write_anomalies(report)?;
        write_inputs(&mut self.out, &report.inputs)
    }
}

/// Worse first: by outcome, then the longer connection, then the earlier id.
type Rank = (std::cmp::Reverse<u8>, std::cmp::Reverse<i64>, u64);

fn rank(r: &ConnectionRecord) -> Rank {
    (
        std::cmp::Reverse(r.outcome.badness()),
        std::cmp::Reverse(r.duration_ns),
        r.id,
    )
}

/// Puts `item` in `list` (worst first, at most [`WORST`]) if it ranks among them; whether it
/// did.
fn keep_if_worst<T>(list: &mut Vec<T>, item: T, rank_of: impl Fn(&T) -> Rank) -> bool {
    let rank = rank_of(&item);
    let pos = list.partition_point(|w| rank_of(w) <= rank);
    if pos >= WORST {
        return false;
    }
    list.insert(pos, item);
    list.truncate(WORST);
    true
}

impl<W: Write> Sink for TextSummary<W> {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        let digest = self.digester.digest(record);
        self.digest(digest)
    }

    fn takes(&self) -> Takes {
        Takes::Digests(Digester::new(self.digester.min_severity))
    }

    fn digest(&mut self, digest: Digest) -> io::Result<()> {
        self.group(&digest);
        if let Some(record) = digest.worst {
            keep_if_worst(&mut self.worst, *record, rank);
        }
        Ok(())
    }

    fn finish(&mut self, report: &RunReport) -> io::Result<()> {
        self.write_report(report)?;
        self.out.flush()
    }
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn write_header(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    let packets: u64 = report.inputs.iter().map(|i| i.packets).sum();
    let tcp: u64 = report.inputs.iter().map(|i| i.tcp_packets).sum();
    let first = report
        .inputs
        .iter()
        .filter_map(|i| i.first)
        .map(|m| m.time_ns)
        .min();
    let last = report
        .inputs
        .iter()
        .filter_map(|i| i.last)
        .map(|m| m.time_ns)
        .max();
    write!(
        out,
        "tcplife: {} connection{} in {} packets ({} TCP) from {} capture{}",
        report.summary.connections,
        plural(report.summary.connections),
        packets,
        tcp,
        report.inputs.len(),
        plural(report.inputs.len() as u64)
    )?;
    if let (Some(a), Some(b)) = (first, last) {
        write!(out, ", {} to {} ({})", Rfc3339(a), Rfc3339(b), Human(b - a))?;
    }
    writeln!(out)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_outcomes(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    let s = &report.summary;
    if s.connections == 0 {
        return writeln!(out, "\nNo TCP connections found.");
    }
    writeln!(out, "\nOutcomes")?;
    for o in Outcome::ALL {
        let n = s.by_outcome.get(o.name()).copied().unwrap_or(0);
        if n > 0 {
            let pct = 100.0 * n as f64 / s.connections as f64;
            writeln!(
                out,
                "  {:<16}{:>9}  {:>5.1} %  {}",
                o.name(),
                n,
                pct,
                meaning(o)
            )?;
        }
    }
    if s.midstream > 0 {
        writeln!(
            out,
            "  ({} picked up mid-stream: handshake not captured)",
            s.midstream
        )?;
    }
    if s.evicted > 0 {
        writeln!(
            out,
            "  ({} finalised early because the flow table was full: raise --max-connections)",
            s.evicted
        )?;
    }
    Ok(())
}

pub(crate) fn meaning(o: Outcome) -> &'static str {
    match o {
        Outcome::Closed => "both FINs sent and acknowledged",
        Outcome::ClosedUnacked => "both FINs sent, the last never acknowledged",
        Outcome::Reset => "ended by RST after the handshake",
        Outcome::Refused => "SYN answered by RST",
        Outcome::Unanswered => "SYN never answered",
        Outcome::HalfOpen => "SYN-ACK sent, handshake never completed",
        Outcome::HalfClosed => "one side closed, the other had not by the end",
        Outcome::Open => "still open at the end",
    }
}

/// One line on what went wrong with a connection.
fn explain(r: &ConnectionRecord) -> String {
    let h = &r.handshake;
    match r.outcome {
        Outcome::Reset => match &r.close.reset {
            Some(rst) => format!(
                "RST from {} in {} after {}",
                rst.sender,
                rst.sender_state,
                Human(rst.at.time_ns - r.first.time_ns)
            ),
            None => "reset".into(),
        },
        Outcome::Refused => "SYN refused with RST".into(),
        Outcome::Unanswered => format!("{} SYN(s), no reply", h.syn_retransmissions + 1),
        Outcome::HalfOpen => format!(
            "{} SYN-ACK(s), the client's ACK never seen",
            h.syn_ack_retransmissions + 1
        ),
        Outcome::ClosedUnacked => {
            let last = if r.states.client.final_state == crate::track::State::LastAck {
                "client"
            } else {
                "server"
            };
            format!(
                "final ACK never seen: {last} left in {}",
                crate::track::State::LastAck
            )
        }
        Outcome::HalfClosed => format!(
            "{} closed; client ended in {}, server in {}",
            r.close.active_closer.unwrap_or("one side"),
            r.states.client.final_state,
            r.states.server.final_state
        ),
        Outcome::Open | Outcome::Closed => format!("lasted {}", Human(r.duration_ns)),
    }
}

fn write_timings(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    let d = &report.summary.distributions;
    let rows = [
        ("handshake RTT", &d.handshake_rtt),
        ("duration", &d.duration),
        ("in CLOSE-WAIT", &d.close_wait),
        ("in TIME-WAIT", &d.time_wait),
    ];
    if rows.iter().all(|(_, d)| d.count == 0) {
        return Ok(());
    }
    writeln!(out, "\nTimes (p50 / p90 / max)")?;
    for (name, dist) in rows {
        if let Some(line) = distribution_line(dist) {
            writeln!(out, "  {name:<16}{line}")?;
        }
    }
    Ok(())
}

fn distribution_line(d: &Distribution) -> Option<String> {
    Some(format!(
        "{} / {} / {}  ({} measured)",
        Human(d.p50_ns?),
        Human(d.p90_ns?),
        Human(d.max_ns?),
        d.count
    ))
}

fn write_inputs(out: &mut impl Write, inputs: &[InputStats]) -> io::Result<()> {
    writeln!(out, "\nCaptures")?;
    for i in inputs {
        let format = match (i.format, i.timestamp_resolution) {
            (Some(f), Some(res)) => format!("{f}, {res}"),
            (Some(f), None) => f.to_owned(),
            (None, _) => "unreadable".to_owned(),
        };
        let compression = match i.compression {
            Some(c) if c != "none" => format!(", {c}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {} ({format}{compression}): {} packets, {} TCP, {} not TCP, {} undecodable, {} truncated",
            i.file,
            i.packets,
            i.tcp_packets,
            i.not_tcp.values().sum::<u64>(),
            i.undecodable.values().sum::<u64>(),
            i.truncated_packets
        )?;
        if i.timestamps_backwards > 0 {
            writeln!(
                out,
                "    timestamps go backwards {} time(s), first at packet {}",
                i.timestamps_backwards,
                i.first_backwards_packet.unwrap_or(0)
            )?;
        }
        if let Some(e) = &i.error {
            writeln!(out, "    error: {}", e.message)?;
        }
    }
    Ok(())
}

/// The duration an anomaly is about, if any.
fn measure(a: &Anomaly) -> Option<i64> {
    match &a.details {
        Details::LongCloseWait { duration_ns, .. } => Some(*duration_ns),
        Details::TimeWaitReuse { gap_ns, .. } => Some(*gap_ns),
        Details::ZeroWindow { longest_ns, .. } => Some(*longest_ns),
        Details::MissingFinalAck { delay_ns, .. } => *delay_ns,
        _ => None,
    }
}

/// What a group of findings means, in plain words, with the likely cause.
fn explain_group(kind: Kind, server: &str, g: &Group) -> String {
    let conns = if g.count == 1 {
        "1 connection".to_owned()
    } else {
        format!("{} connections", g.count)
    };
    let extreme = g
        .extreme_ns
        .map(|v| Human(v).to_string())
        .unwrap_or_default();
    let what = meaning_of(kind).replace("{extreme}", &extreme);
    format!("{conns} to {server} {what}")
}

/// The sentence (after "N connections to SERVER") for each kind; `{extreme}` is the largest
/// duration involved, or the smallest gap for a TIME-WAIT reuse.
fn meaning_of(kind: Kind) -> &'static str {
    match kind {
        Kind::MissingFinalAck => {
            "never saw the last FIN acknowledged (or only after retransmission): the side \
             waiting in LAST-ACK never heard back; look for loss or a firewall dropping ACKs"
        }
        Kind::LongCloseWait => {
            "stayed in CLOSE-WAIT (up to {extreme}) after the peer closed: the application on \
             that side is not closing its sockets"
        }
        Kind::TimeWaitReuse => {
            "reused a 4-tuple {extreme} after it entered TIME-WAIT: the client binds fixed \
             ports (SO_REUSEADDR) or runs out of ephemeral ports"
        }
        Kind::RstTeardown => {
            "ended with a RST instead of FINs: an application abort (SO_LINGER 0), a close \
             with unread data, or a crash"
        }
        Kind::Refused => "were refused: nothing listening on that port, or a firewall rejecting",
        Kind::UnansweredSyn => {
            "got no answer to their SYNs: the host is down, or a firewall drops them"
        }
        Kind::HalfOpen => {
            "never completed the handshake after the SYN-ACK: spoofed SYNs, a client that gave \
             up, or ACKs lost on the way back"
        }
        Kind::SynInOpenConnection => {
            "were replaced by a new SYN while still open: a peer restarted and reconnected"
        }
        Kind::SimultaneousOpen => "opened simultaneously (both sides sent SYN)",
        Kind::SynWithData => "carried data on the SYN (TCP Fast Open?)",
        Kind::HandshakeAckMismatch => "had a SYN-ACK that acknowledged the wrong sequence number",
        Kind::SimultaneousClose => "closed simultaneously (both sides passed CLOSING)",
        Kind::DataAfterFin => {
            "had a side send data after its own FIN (a broken stack or middlebox)"
        }
        Kind::TimeWaitAssassination => {
            "had the active closer's TIME-WAIT killed by a RST (RFC 1337 hazard)"
        }
        Kind::RstAfterClose => "saw a RST after a clean close (harmless, often a late reply)",
        Kind::ZeroWindow => {
            "advertised a zero window (longest {extreme}): a reader stopped reading"
        }
        Kind::Keepalive => "exchanged keep-alive probes",
        Kind::KeepaliveTimeout => {
            "sent keep-alive probes that went unanswered: the peer or the path is gone"
        }
        Kind::InvalidFlags => "carried impossible flag combinations: a scanner or a broken stack",
        Kind::ExcessiveRetransmission => {
            "retransmitted more than 10 % of their data: loss on the path"
        }
        Kind::Midstream => "were picked up mid-stream (handshake not captured)",
        Kind::SegmentNotCaptured => {
            "had data acknowledged that the capture never saw (capture drops)"
        }
        Kind::AckOfUnseenData => {
            "had ACKs for data the capture never saw (capture drops or asymmetric routing)"
        }
        Kind::SynFlood | Kind::TimestampsOutOfOrder | Kind::TruncatedPackets => {
            "(see the episodes in the JSON output)"
        }
    }
}

/// A finding about no single connection, in plain words.
pub(crate) fn explain_episode(a: &Anomaly) -> String {
    match &a.details {
        Details::SynFlood {
            server,
            start_ns,
            end_ns,
            incomplete_handshakes,
            syns,
            distinct_sources,
            ..
        } => format!(
            "syn_flood at {server}: {incomplete_handshakes} of {syns} handshakes never completed within {} \
             from {distinct_sources} source(s), from {}",
            Human(end_ns - start_ns),
            Rfc3339(*start_ns)
        ),
        Details::InputCount { file, count } if a.kind == Kind::TimestampsOutOfOrder => format!(
            "{file}: timestamps go backwards {count} time(s) (merged or multi-interface capture); durations across them may be off"
        ),
        Details::InputCount { file, count } => format!(
            "{file}: {count} packet(s) cut by the snapshot length; lengths still come from the IP headers"
        ),
        _ => a.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of every fixture, read as one run, and its report.
    fn every_fixture_record() -> (Vec<ConnectionRecord>, RunReport) {
        use super::super::line::tests::{fixture_captures, records_of};
        records_of(&fixture_captures())
    }

    /// The summary of `records`, handed over whole or as the digests of `threads` digesters
    /// that each take the records of some servers (as tracking threads take connections).
    fn summary(records: &[ConnectionRecord], report: &RunReport, threads: Option<u64>) -> String {
        let mut out = Vec::new();
        let mut sink = TextSummary::new(&mut out, Severity::Info);
        let Takes::Digests(digester) = sink.takes() else {
            panic!("the text summary takes digests");
        };
        let mut digesters = vec![digester; threads.unwrap_or(1) as usize];
        for r in records.iter().cloned() {
            match threads {
                None => sink.connection(r).unwrap(),
                Some(n) => {
                    let thread = (u64::from(r.client.port) + r.id) % n;
                    let digest = digesters[thread as usize].digest(r);
                    sink.digest(digest).unwrap();
                }
            }
        }
        sink.finish(report).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The worst connections of the fixtures, listed in full: those of the highest badness,
    /// the longest first, the earliest id first.
    #[test]
    fn the_worst_connections_are_the_same_however_the_records_are_digested() {
        let (records, report) = every_fixture_record();
        let mut bad: Vec<&ConnectionRecord> =
            records.iter().filter(|r| r.outcome.badness() > 0).collect();
        assert!(bad.len() > 3 * WORST, "bad connections: {}", bad.len());
        bad.sort_by_key(|r| rank(r));
        let whole = summary(&records, &report, None);
        let listed: Vec<&str> = whole
            .lines()
            .skip_while(|l| *l != "Worst connections")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        let expected: Vec<String> = bad
            .iter()
            .take(WORST)
            .map(|r| format!("#{:<6} ", r.id))
            .collect();
        assert_eq!(listed.len(), WORST, "{whole}");
        for (line, id) in listed.iter().zip(&expected) {
            assert!(
                line.trim_start().starts_with(id.as_str()),
                "{line} is not {id}"
            );
        }
        for threads in [1, 2, 3, 7] {
            assert_eq!(
                summary(&records, &report, Some(threads)),
                whole,
                "{threads}"
            );
        }
    }

    /// Past [`MAX_GROUPS`] groups of anomalies (kind and server), the anomalies of further
    /// groups are only counted, however the records are digested. Hand-built: one fixture record
    /// with an anomaly, copied to servers on as many distinct ports.
    #[test]
    fn anomalies_beyond_the_groups_kept_are_counted() {
        let (records, report) = every_fixture_record();
        let Some(model) = records.iter().find(|r| {
            r.anomalies.len() == 1 && r.anomalies.iter().all(|a| a.severity >= Severity::Warning)
        }) else {
            panic!("no record with one warning");
        };
        let more = 5;
        let copies: Vec<ConnectionRecord> = (0..MAX_GROUPS + more)
            .map(|i| {
                let mut r = model.clone();
                r.id = i as u64;
                r.server.port = 1 + (i % 60_000) as u16;
                r.server.ip = IpAddr::from([10, 0, 0, (i / 60_000) as u8]);
                r
            })
            .collect();
        let whole = summary(&copies, &report, None);
        assert!(
            whole.contains(&format!("... and {more} more in other groups")),
            "{}",
            whole.lines().last().unwrap_or_default()
        );
        for threads in [2, 3] {
            assert_eq!(summary(&copies, &report, Some(threads)), whole, "{threads}");
        }
    }
}

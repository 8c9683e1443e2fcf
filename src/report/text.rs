//! The default output: a summary a person reads in ten seconds.

use super::record::ConnectionRecord;
use super::summary::Distribution;
use super::time::{Human, Rfc3339};
use crate::analyze::{InputStats, RunReport, Sink};
use crate::track::Outcome;
use std::io::{self, Write};

/// How many of the worst connections the summary lists.
const WORST: usize = 10;

pub struct TextSummary<W: Write> {
    out: W,
    /// The worst connections so far, worst first (bounded).
    worst: Vec<ConnectionRecord>,
}

impl<W: Write> TextSummary<W> {
    pub fn new(out: W) -> Self {
        TextSummary {
            out,
            worst: Vec::with_capacity(WORST + 1),
        }
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
                    "  #{:<6} {} → {}  {:<14} {}",
                    r.id,
                    endpoint(r.client.ip, r.client.port),
                    endpoint(r.server.ip, r.server.port),
                    r.outcome.name(),
                    explain(r)
                )?;
            }
        }
        write_timings(out, report)?;
        write_inputs(out, &report.inputs)
    }
}

/// Worse first: by outcome, then the longer connection, then the earlier id.
fn rank(r: &ConnectionRecord) -> (std::cmp::Reverse<u8>, std::cmp::Reverse<i64>, u64) {
    (
        std::cmp::Reverse(r.outcome.badness()),
        std::cmp::Reverse(r.duration_ns),
        r.id,
    )
}

impl<W: Write> Sink for TextSummary<W> {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        if record.outcome.badness() == 0 {
            return Ok(());
        }
        let pos = self.worst.partition_point(|w| rank(w) <= rank(&record));
        if pos < WORST {
            self.worst.insert(pos, record);
            self.worst.truncate(WORST);
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

fn meaning(o: Outcome) -> &'static str {
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

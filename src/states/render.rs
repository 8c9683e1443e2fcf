//! Writing the results: the `--at` listing, and the `--every` series as a table, JSON lines or
//! a small chart.

use super::grid::Counts;
use super::instant::EndpointRow;
use super::series::{Row, ServerKey};
use crate::report::record::EndpointAddr;
use crate::time::{Human, Rfc3339};
use crate::track::State;
use serde::Serialize;
use serde::ser::SerializeMap;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The states the chart draws unless `--state` names others: the ones that pile up.
pub const PLOTTED: [State; 4] = [
    State::SynReceived,
    State::Established,
    State::CloseWait,
    State::TimeWait,
];

/// Columns of the chart.
const PLOT_WIDTH: i64 = 60;

/// `ss`'s short names, for table headers.
fn short(s: State) -> &'static str {
    match s {
        State::SynReceived => "SYN-RECV",
        State::Established => "ESTAB",
        other => other.name(),
    }
}

fn endpoint(a: EndpointAddr) -> String {
    match a.ip {
        std::net::IpAddr::V4(v4) => format!("{v4}:{}", a.port),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", a.port),
    }
}

fn server_text(s: ServerKey) -> String {
    endpoint(EndpointAddr { ip: s.0, port: s.1 })
}

/// `HH:MM:SS.mmm` of an instant (UTC).
fn clock(t: i64) -> String {
    Rfc3339(t)
        .to_string()
        .get(11..23)
        .unwrap_or_default()
        .to_owned()
}

/// `+1.50 s` after the first packet.
pub(super) fn offset(ns: i64) -> String {
    match ns {
        0 => "+0 s".to_owned(),
        n if n < 0 => format!("-{}", Human(n.saturating_neg())),
        n => format!("+{}", Human(n)),
    }
}

/// What the series covers, for headers.
#[derive(Debug, Clone)]
pub struct SeriesContext {
    pub start_ns: i64,
    pub end_ns: i64,
    pub step_ns: i64,
    pub steps: i64,
    pub by_server: bool,
    pub states: Vec<State>,
}

/// Where the rows of a series go.
pub trait RowWriter {
    fn begin(&mut self, ctx: &SeriesContext) -> io::Result<()>;
    fn row(&mut self, ctx: &SeriesContext, row: &Row) -> io::Result<()>;
    fn end(&mut self, ctx: &SeriesContext) -> io::Result<()>;
}

/// A table for people: one row per instant (and server), one column per state.
pub struct Table<W: Write>(pub W);

fn width(s: State) -> usize {
    short(s).len().max(6)
}

impl<W: Write> RowWriter for Table<W> {
    fn begin(&mut self, ctx: &SeriesContext) -> io::Result<()> {
        writeln!(
            self.0,
            "tcplife: endpoints in each state every {}, {} to {} ({}, {} instants)",
            Human(ctx.step_ns),
            Rfc3339(ctx.start_ns),
            Rfc3339(ctx.end_ns),
            Human(ctx.end_ns - ctx.start_ns),
            ctx.steps
        )?;
        write!(self.0, "{:<12}  {:>10}", "TIME (UTC)", "OFFSET")?;
        if ctx.by_server {
            write!(self.0, "  {:<22}", "SERVER")?;
        }
        for &s in &ctx.states {
            write!(self.0, " {:>w$}", short(s), w = width(s))?;
        }
        writeln!(self.0)
    }

    fn row(&mut self, ctx: &SeriesContext, row: &Row) -> io::Result<()> {
        write!(
            self.0,
            "{:<12}  {:>10}",
            clock(row.time_ns),
            offset(row.offset_ns)
        )?;
        if let Some(server) = row.server {
            write!(self.0, "  {:<22}", server_text(server))?;
        }
        for &s in &ctx.states {
            write!(self.0, " {:>w$}", row.counts.get(s), w = width(s))?;
        }
        writeln!(self.0)
    }

    fn end(&mut self, _: &SeriesContext) -> io::Result<()> {
        self.0.flush()
    }
}

/// One JSON object per row, for dashboards.
pub struct JsonLines<W: Write>(pub W);

#[derive(Serialize)]
struct JsonRow<'a> {
    time_ns: i64,
    time: Rfc3339,
    offset_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<EndpointAddr>,
    /// Endpoints in any state.
    endpoints: i64,
    states: StateCounts<'a>,
}

/// The counts of the shown states, as an object keyed by state name.
struct StateCounts<'a> {
    states: &'a [State],
    counts: Counts,
}

impl Serialize for StateCounts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.states.len()))?;
        for &state in self.states {
            map.serialize_entry(state.name(), &self.counts.get(state))?;
        }
        map.end()
    }
}

impl<W: Write> RowWriter for JsonLines<W> {
    fn begin(&mut self, _: &SeriesContext) -> io::Result<()> {
        Ok(())
    }

    fn row(&mut self, ctx: &SeriesContext, row: &Row) -> io::Result<()> {
        let line = JsonRow {
            time_ns: row.time_ns,
            time: Rfc3339(row.time_ns),
            offset_ns: row.offset_ns,
            server: row.server.map(|(ip, port)| EndpointAddr { ip, port }),
            endpoints: row.counts.total(),
            states: StateCounts {
                states: &ctx.states,
                counts: row.counts,
            },
        };
        serde_json::to_writer(&mut self.0, &line)?;
        writeln!(self.0)
    }

    fn end(&mut self, _: &SeriesContext) -> io::Result<()> {
        self.0.flush()
    }
}

/// A sparkline per state (per server with `--by server`): each column is the most endpoints
/// at once over its instants, each line scaled to its own peak.
pub struct Plot<W: Write> {
    out: W,
    groups: BTreeMap<Option<ServerKey>, PlotGroup>,
}

#[derive(Default)]
struct PlotGroup {
    columns: Vec<Counts>,
    /// Per state: the peak and its first instant's offset.
    peaks: BTreeMap<State, (i64, i64)>,
}

impl<W: Write> Plot<W> {
    pub fn new(out: W) -> Self {
        Plot {
            out,
            groups: BTreeMap::new(),
        }
    }

    fn columns(ctx: &SeriesContext) -> i64 {
        ctx.steps.clamp(1, PLOT_WIDTH)
    }

    fn write_group(&mut self, ctx: &SeriesContext, key: Option<ServerKey>) -> io::Result<()> {
        let Some(g) = self.groups.get(&key) else {
            return Ok(());
        };
        if let Some(server) = key {
            writeln!(self.out, "\nserver {}", server_text(server))?;
        }
        for &s in &ctx.states {
            let (peak, at) = g.peaks.get(&s).copied().unwrap_or((0, 0));
            let line: String = g.columns.iter().map(|c| bar(c.get(s), peak)).collect();
            let note = if peak > 0 {
                format!("peak {peak} at {}", offset(at))
            } else {
                "none".to_owned()
            };
            writeln!(self.out, "  {:<13}{line}  {note}", s.name())?;
        }
        Ok(())
    }
}

/// One of eight block heights for `n` out of `peak` (a space for none).
fn bar(n: i64, peak: i64) -> char {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if n <= 0 || peak <= 0 {
        return ' ';
    }
    let level = (n * 8 + peak - 1) / peak;
    let i = usize::try_from(level - 1).unwrap_or(0);
    BLOCKS.get(i).copied().unwrap_or('█')
}

impl<W: Write> RowWriter for Plot<W> {
    fn begin(&mut self, ctx: &SeriesContext) -> io::Result<()> {
        let columns = Self::columns(ctx);
        let per_column = ctx.step_ns.saturating_mul(ctx.steps) / columns;
        writeln!(
            self.out,
            "tcplife: endpoints by state from {} (+0 s) to +{}; each column is the most at once \
             over {} (samples every {})",
            Rfc3339(ctx.start_ns),
            Human(ctx.end_ns - ctx.start_ns),
            Human(per_column),
            Human(ctx.step_ns)
        )
    }

    fn row(&mut self, ctx: &SeriesContext, row: &Row) -> io::Result<()> {
        let columns = Self::columns(ctx);
        let col = usize::try_from(row.k.saturating_mul(columns) / ctx.steps.max(1)).unwrap_or(0);
        let g = self.groups.entry(row.server).or_default();
        if g.columns.is_empty() {
            g.columns = vec![Counts::default(); usize::try_from(columns).unwrap_or(1)];
        }
        if let Some(c) = g.columns.get_mut(col) {
            c.raise_to(&row.counts);
        }
        for &s in &ctx.states {
            let n = row.counts.get(s);
            if n > g.peaks.get(&s).map_or(0, |p| p.0) {
                g.peaks.insert(s, (n, row.offset_ns));
            }
        }
        Ok(())
    }

    fn end(&mut self, ctx: &SeriesContext) -> io::Result<()> {
        let keys: Vec<Option<ServerKey>> = self.groups.keys().copied().collect();
        if keys.is_empty() {
            writeln!(self.out, "  (no endpoints)")?;
        }
        for key in keys {
            self.write_group(ctx, key)?;
        }
        let pad = " ".repeat(15);
        let columns = usize::try_from(Self::columns(ctx)).unwrap_or(1);
        let end = offset(ctx.end_ns - ctx.start_ns);
        writeln!(
            self.out,
            "{pad}+0 s{end:>w$}",
            w = columns.saturating_sub(4).max(end.len())
        )?;
        self.out.flush()
    }
}

/// The `--at` listing for people.
pub fn write_instant_table(
    out: &mut impl Write,
    at_ns: i64,
    start_ns: i64,
    rows: &[&EndpointRow],
) -> io::Result<()> {
    let connections = {
        let mut ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
        ids.dedup();
        ids.len()
    };
    writeln!(
        out,
        "tcplife: {} endpoint{} of {} connection{} at {} ({})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        connections,
        if connections == 1 { "" } else { "s" },
        Rfc3339(at_ns),
        offset(at_ns - start_ns)
    )?;
    if rows.is_empty() {
        return out.flush();
    }
    writeln!(
        out,
        "{:<7} {:<7} {:<13} {:>10}  {:<24} {:<24} {:>10} {:>10}",
        "ID", "SIDE", "STATE", "FOR", "LOCAL", "PEER", "SENT", "RECEIVED"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<7} {:<7} {:<13} {:>10}  {:<24} {:<24} {:>10} {:>10}",
            format!("#{}", r.id),
            r.side,
            r.state.name(),
            Human(r.for_ns).to_string(),
            endpoint(r.local),
            endpoint(r.peer),
            r.sent_bytes,
            r.received_bytes
        )?;
    }
    out.flush()
}

/// The `--at` listing as JSON lines, one endpoint per line.
pub fn write_instant_jsonl(out: &mut impl Write, rows: &[&EndpointRow]) -> io::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        writeln!(out)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak() {
        assert_eq!(bar(0, 10), ' ');
        assert_eq!(bar(1, 10), '▁');
        assert_eq!(bar(10, 10), '█');
        assert_eq!(bar(5, 10), '▄');
        assert_eq!(bar(3, 0), ' ');
    }
}

//! The peak of each state in the `analyze` summary: the most endpoints in that state at once,
//! over all endpoints and on the busiest single host, and when.

use super::grid::{DeltaGrid, Grids};
use super::presence::{Reuse, Stay, reuse, stays_into};
use super::render::offset;
use crate::report::record::{ConnectionRecord, EndpointAddr};
use crate::time::{Human, Rfc3339};
use crate::track::{Side, State};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

/// The finest grid: endpoints are counted every millisecond...
const FINEST_NS: i64 = 1_000_000;
/// ...and the grid is made ten times coarser whenever it would hold more cells than this
/// (about 7 MB), whatever the length of the capture.
const CELL_BUDGET: usize = 1 << 16;
/// Hosts followed one by one (the first seen); the others count only towards all hosts.
const MAX_HOSTS: usize = 4096;

/// A group: one side of one host, or every endpoint (`None`).
type Group = Option<(Side, IpAddr)>;

/// Accumulates the peaks from the records as they stream past, in bounded memory.
#[derive(Debug, Clone)]
pub struct StatePeaks {
    grids: Grids<Group>,
    ports: BTreeMap<(Side, IpAddr), PortRange>,
    untracked_endpoints: u64,
}

impl Default for StatePeaks {
    fn default() -> Self {
        Self::new()
    }
}

impl StatePeaks {
    pub fn new() -> Self {
        StatePeaks {
            grids: Grids::new(0, FINEST_NS),
            ports: BTreeMap::new(),
            untracked_endpoints: 0,
        }
    }

    /// One record (what the peaks read of it, its stays in `list`), read when the capture
    /// had been read up to `now_ns`.
    pub fn add(&mut self, r: &PeakInput, list: &[Stay], now_ns: i64) {
        self.grids.advance(now_ns);
        let stays = r.stays_in(list);
        let (client, server) = stays.split_at(r.client_stays.min(stays.len()));
        for (side, s) in [(Side::Client, client), (Side::Server, server)] {
            let local = r.local(side);
            let host = Some((side, local.ip));
            if !self.track(&host) {
                self.grids.add_stays(r.id, &[None], s);
                continue;
            }
            self.grids.add_stays(r.id, &[None, host], s);
            if self.grids.named(&host) {
                self.ports
                    .entry((side, local.ip))
                    .or_insert(PortRange::new(local.port))
                    .add(local.port);
            }
        }
        if let Some(x) = r.reuse {
            let host = Some((x.side, r.local(x.side).ip));
            let named: &[Group] = if self.grids.contains(&host) {
                &[None, host]
            } else {
                &[None]
            };
            self.grids.reused(x, named);
        }
        self.keep_within_budget();
    }

    /// Whether a host is followed on its own: the first hosts to have an endpoint in some
    /// state are, and only their ports are kept, so memory stays bounded whatever the number
    /// of sources.
    fn track(&mut self, host: &Group) -> bool {
        if self.grids.named(host) || self.grids.named_count() <= MAX_HOSTS {
            return true;
        }
        self.untracked_endpoints += 1;
        false
    }

    fn keep_within_budget(&mut self) {
        while self.grids.cells() > CELL_BUDGET {
            let before = self.grids.cells();
            self.grids.coarsen(10);
            if self.grids.cells() >= before {
                break;
            }
        }
    }

    /// The peaks, with times relative to the capture's first packet `start_ns` and clamped to
    /// the capture (`start_ns`..=`end_ns`).
    pub fn summary(&self, start_ns: i64, end_ns: i64) -> StatePeakSummary {
        let span = Span {
            start_ns,
            end_ns: end_ns.max(start_ns),
        };
        let mut states = BTreeMap::new();
        let mut hosts: BTreeMap<State, HostPeak> = BTreeMap::new();
        for (group, grid) in self.grids.groups() {
            let peaks = self.peaks_of(grid, span);
            match group {
                None => states = peaks,
                Some((side, ip)) => {
                    for (state, at) in peaks {
                        let better = hosts.get(&state).is_none_or(|h| {
                            (at.endpoints, -at.time_ns) > (h.at.endpoints, -h.at.time_ns)
                        });
                        if better {
                            let ports = self.ports.get(&(*side, *ip)).copied();
                            hosts.insert(state, HostPeak::new(*side, *ip, at, ports));
                        }
                    }
                }
            }
        }
        StatePeakSummary {
            resolution_ns: self.grids.width(),
            states: states
                .into_iter()
                .map(|(state, at)| {
                    let host = hosts.remove(&state);
                    (state, StatePeak { at, host })
                })
                .collect(),
            untracked_endpoints: self.untracked_endpoints,
        }
    }

    /// The highest count of each state in one group, at its first instant.
    fn peaks_of(&self, grid: &DeltaGrid, span: Span) -> BTreeMap<State, PeakAt> {
        let mut best: BTreeMap<State, (i64, i64)> = BTreeMap::new();
        for (k, counts) in grid.running() {
            for state in State::ALL {
                let n = counts.get(state);
                if n > 0 && best.get(&state).is_none_or(|&(m, _)| n > m) {
                    best.insert(state, (n, k));
                }
            }
        }
        best.into_iter()
            .map(|(state, (n, k))| (state, span.at(n, self.grids.instant(k))))
            .collect()
    }
}

/// What the peaks read of a record, small enough to take out where the record is made, on
/// another thread (the idle timeout must be the tracker's, as given to [`StatePeaks::new`]).
/// Its stays lie in a list shared with other records' (the client's, then the server's), so
/// that passing records between threads allocates nothing for them.
#[derive(Debug, Clone)]
pub struct PeakInput {
    id: u64,
    client: EndpointAddr,
    server: EndpointAddr,
    reuse: Option<Reuse>,
    stays: Range<usize>,
    client_stays: usize,
}

impl PeakInput {
    /// A record's input, its stays appended to `list`.
    pub fn of(r: &ConnectionRecord, idle_timeout_ns: i64, list: &mut Vec<Stay>) -> Self {
        let start = list.len();
        stays_into(r, Side::Client, idle_timeout_ns, list);
        let client_end = list.len();
        stays_into(r, Side::Server, idle_timeout_ns, list);
        PeakInput {
            id: r.id,
            client: r.client,
            server: r.server,
            reuse: reuse(r),
            stays: start..list.len(),
            client_stays: client_end - start,
        }
    }

    /// Its stays, in the list they were appended to.
    pub fn stays_in<'a>(&self, list: &'a [Stay]) -> &'a [Stay] {
        list.get(self.stays.clone()).unwrap_or_default()
    }

    /// Its list was appended to another at `at`.
    pub fn moved_by(&mut self, at: usize) {
        self.stays = self.stays.start + at..self.stays.end + at;
    }

    /// Copies its stays from `from` to the end of `to`, and points there.
    pub fn copy_stays(&mut self, from: &[Stay], to: &mut Vec<Stay>) {
        let start = to.len();
        to.extend_from_slice(self.stays_in(from));
        self.stays = start..to.len();
    }

    fn local(&self, side: Side) -> EndpointAddr {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start_ns: i64,
    end_ns: i64,
}

impl Span {
    fn at(self, n: i64, t: i64) -> PeakAt {
        let time_ns = t.clamp(self.start_ns, self.end_ns);
        PeakAt {
            endpoints: u64::try_from(n).unwrap_or(0),
            time_ns,
            time: Rfc3339(time_ns),
            offset_ns: time_ns - self.start_ns,
        }
    }
}

/// The peaks of the run: only states that some endpoint was in at a sampled instant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatePeakSummary {
    /// Endpoints were counted at instants this far apart (multiples of it since the epoch);
    /// a stay shorter than this can fall between two instants.
    pub resolution_ns: i64,
    /// By state, in RFC order.
    pub states: BTreeMap<State, StatePeak>,
    /// Endpoints on hosts beyond the first 4,096, counted only over all hosts.
    pub untracked_endpoints: u64,
}

/// The most endpoints in one state at once, over all hosts, and on the busiest host.
#[derive(Debug, Clone, Serialize)]
pub struct StatePeak {
    #[serde(flatten)]
    pub at: PeakAt,
    pub host: Option<HostPeak>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PeakAt {
    pub endpoints: u64,
    /// The first sampled instant with that many.
    pub time_ns: i64,
    pub time: Rfc3339,
    /// After the capture's first packet.
    pub offset_ns: i64,
}

/// The single host (one side of one address) with the most endpoints in the state at once.
#[derive(Debug, Clone, Serialize)]
pub struct HostPeak {
    pub side: &'static str,
    pub ip: IpAddr,
    #[serde(flatten)]
    pub at: PeakAt,
    /// The local ports of the host's endpoints on that side over the run (for a client, how
    /// much of its ephemeral range it used).
    pub local_ports: Option<PortRange>,
}

impl HostPeak {
    fn new(side: Side, ip: IpAddr, at: PeakAt, local_ports: Option<PortRange>) -> Self {
        HostPeak {
            side: side.name(),
            ip,
            at,
            local_ports,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    fn new(port: u16) -> Self {
        PortRange {
            min: port,
            max: port,
        }
    }

    fn add(&mut self, port: u16) {
        self.min = self.min.min(port);
        self.max = self.max.max(port);
    }
}

/// The text summary's section: one line per state that had endpoints.
pub fn write_peaks(out: &mut impl std::io::Write, s: &StatePeakSummary) -> std::io::Result<()> {
    if s.states.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nStates at their peak (endpoints at once, counted every {})",
        Human(s.resolution_ns)
    )?;
    for (state, peak) in &s.states {
        writeln!(out, "  {}", peak_line(*state, peak))?;
    }
    Ok(())
}

/// "peak TIME-WAIT: 28,312 endpoints at +7.20 s on client 127.0.0.1 (local ports 1024-65535)"
fn peak_line(state: State, p: &StatePeak) -> String {
    let all = &p.at;
    let mut line = format!(
        "peak {state}: {} endpoint{} at {}",
        Thousands(all.endpoints),
        if all.endpoints == 1 { "" } else { "s" },
        offset(all.offset_ns)
    );
    if let Some(h) = &p.host {
        let same = h.at.endpoints == all.endpoints && h.at.time_ns == all.time_ns;
        if same {
            line.push_str(&format!(" on {} {}", h.side, h.ip));
        } else {
            line.push_str(&format!(
                "; most on one host: {} on {} {} at {}",
                Thousands(h.at.endpoints),
                h.side,
                h.ip,
                offset(h.at.offset_ns)
            ));
        }
        if let Some(ports) = h.local_ports {
            line.push_str(&ports_note(ports));
        }
    }
    line
}

fn ports_note(p: PortRange) -> String {
    if p.min == p.max {
        format!(" (port {})", p.min)
    } else {
        format!(" (local ports {}-{})", p.min, p.max)
    }
}

/// 28312 → "28,312".
pub struct Thousands(pub u64);

impl std::fmt::Display for Thousands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::states::Until;

    /// A connection from client `n` (its own address) to one server; the client counts in
    /// SYN-SENT for 1 ms when `counted`, and not at all otherwise.
    fn from_client(n: u32, counted: bool, list: &mut Vec<Stay>) -> PeakInput {
        let start = list.len();
        let t = i64::from(n) * 1_000_000;
        if counted {
            list.push(Stay {
                state: State::SynSent,
                from_ns: t,
                until: Until::At(t + 1_000_000),
            });
        }
        let addr = |ip: u32, port| EndpointAddr {
            ip: IpAddr::V4(ip.into()),
            port,
        };
        PeakInput {
            id: u64::from(n),
            client: addr(0x0a00_0000 + n, 40_000),
            server: addr(0xc000_0201, 80),
            reuse: None,
            stays: start..list.len(),
            client_stays: list.len() - start,
        }
    }

    #[test]
    fn hosts_are_followed_one_by_one_up_to_a_bound_whatever_the_number_of_sources() {
        let mut peaks = StatePeaks::new();
        let mut list = Vec::new();
        let sources = 3 * MAX_HOSTS as u32;
        for n in 0..sources {
            // Every other source never counts: it takes no room either.
            let input = from_client(n, n % 2 == 0, &mut list);
            peaks.add(&input, &list, i64::from(n) * 1_000_000);
        }
        assert!(peaks.grids.named_count() <= MAX_HOSTS + 1);
        assert!(peaks.ports.len() <= MAX_HOSTS + 1);
        assert!(peaks.untracked_endpoints >= u64::from(sources) - MAX_HOSTS as u64 * 2);
        let summary = peaks.summary(0, i64::from(sources) * 1_000_000);
        assert_eq!(summary.states[&State::SynSent].at.endpoints, 1);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(Thousands(0).to_string(), "0");
        assert_eq!(Thousands(999).to_string(), "999");
        assert_eq!(Thousands(28_312).to_string(), "28,312");
        assert_eq!(Thousands(1_234_567).to_string(), "1,234,567");
    }
}

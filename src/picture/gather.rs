//! What the HTML report keeps from the stream of finished connections, in memory that does not
//! grow with their number: fixed histograms and time bins, the first [`TABLE_ROWS`] connections
//! of each anomaly kind, the records of the few connections drawn as ladders, and a
//! deterministic sample of [`GANTT_SAMPLE`] connections for the Gantt view.

use super::charts::{Concurrency, Lane, LogHistogram, Track};
use super::notes::note;
use crate::analyze::{RunReport, Sink};
use crate::detect::{Kind, Severity};
use crate::report::record::{ConnectionRecord, EndpointAddr, StateTimeline};
use crate::splitmix64;
use crate::track::{Outcome, State};
use std::collections::{BTreeMap, BTreeSet};
use std::io;

/// Connections listed per anomaly kind (the first, by id).
pub const TABLE_ROWS: usize = 100;
/// Connections drawn as ladders per anomaly kind (the first, by id).
pub const LADDERS_PER_KIND: usize = 5;
/// Most ladders in a report.
pub const MAX_LADDERS: usize = 120;
/// Connections sampled for the Gantt view (besides those drawn as ladders).
pub const GANTT_SAMPLE: usize = 300;

/// The `k` items with the smallest keys seen so far.
#[derive(Debug, Clone)]
pub struct Smallest<T> {
    k: usize,
    items: Vec<(u64, T)>,
}

impl<T> Smallest<T> {
    pub fn new(k: usize) -> Self {
        Smallest {
            k,
            items: Vec::with_capacity(k.min(64)),
        }
    }

    /// Whether an item with this key would be kept.
    pub fn wants(&self, key: u64) -> bool {
        self.items.len() < self.k || self.items.last().is_some_and(|(last, _)| key < *last)
    }

    pub fn offer(&mut self, key: u64, make: impl FnOnce() -> T) {
        if !self.wants(key) {
            return;
        }
        let pos = self.items.partition_point(|(k, _)| *k < key);
        self.items.insert(pos, (key, make()));
        self.items.truncate(self.k);
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One row of an anomaly table.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub id: u64,
    pub time_ns: i64,
    pub client: EndpointAddr,
    pub server: EndpointAddr,
    pub outcome: Outcome,
    pub side: Option<&'static str>,
    pub text: String,
}

/// Everything kept about one anomaly kind.
#[derive(Debug, Clone)]
pub struct KindTable {
    pub count: u64,
    pub rows: Smallest<TableRow>,
    pub ladders: Smallest<ConnectionRecord>,
}

impl Default for KindTable {
    fn default() -> Self {
        KindTable {
            count: 0,
            rows: Smallest::new(TABLE_ROWS),
            ladders: Smallest::new(LADDERS_PER_KIND),
        }
    }
}

/// The report's sink.
#[derive(Debug)]
pub struct Gather {
    pub rtt: LogHistogram,
    pub duration: LogHistogram,
    pub close_wait: LogHistogram,
    pub time_wait: LogHistogram,
    pub concurrency: Concurrency,
    pub kinds: BTreeMap<Kind, KindTable>,
    /// The first connection of each outcome, drawn as an example.
    pub examples: BTreeMap<&'static str, Smallest<ConnectionRecord>>,
    /// A deterministic sample for the Gantt view, by a hash of the id.
    pub sample: Smallest<Lane>,
}

impl Default for Gather {
    fn default() -> Self {
        Gather {
            rtt: LogHistogram::default(),
            duration: LogHistogram::default(),
            close_wait: LogHistogram::default(),
            time_wait: LogHistogram::default(),
            concurrency: Concurrency::default(),
            kinds: BTreeMap::new(),
            examples: BTreeMap::new(),
            sample: Smallest::new(GANTT_SAMPLE),
        }
    }
}

/// The visits of a timeline to `state`, each up to `end_ns` when still there at the end (as in
/// the summary's distributions).
pub fn periods(t: &StateTimeline, state: State, end_ns: i64) -> Vec<(i64, i64)> {
    let mut found = Vec::new();
    let mut since: Option<i64> = None;
    for tr in &t.transitions {
        if tr.to == state {
            since = Some(tr.at.time_ns);
        } else if tr.from == state {
            if let Some(start) = since.take() {
                found.push((start, tr.at.time_ns));
            }
        }
    }
    if let Some(start) = since {
        found.push((start, end_ns.max(start)));
    }
    found
}

/// Both sides' visits to `state`, in time order.
fn both_periods(r: &ConnectionRecord, state: State) -> Vec<(i64, i64)> {
    let end = r.last.time_ns;
    let mut p = periods(&r.states.client, state, end);
    p.extend(periods(&r.states.server, state, end));
    p.sort_unstable();
    p
}

/// The Gantt lane of a record.
pub fn lane(r: &ConnectionRecord) -> Lane {
    Lane {
        id: r.id,
        start_ns: r.first.time_ns,
        end_ns: r.last.time_ns,
        outcome: r.outcome,
        close_wait: both_periods(r, State::CloseWait),
        time_wait: both_periods(r, State::TimeWait),
        title: format!(
            "{} → {}",
            super::endpoint(r.client),
            super::endpoint(r.server)
        ),
        drawn: false,
    }
}

impl Gather {
    fn measure(&mut self, r: &ConnectionRecord) {
        if let Some(rtt) = r.handshake.rtt_ns {
            self.rtt.record(rtt);
        }
        self.duration.record(r.duration_ns);
        let end = r.last.time_ns;
        for t in [&r.states.client, &r.states.server] {
            for (state, hist) in [
                (State::CloseWait, &mut self.close_wait),
                (State::TimeWait, &mut self.time_wait),
            ] {
                let p = periods(t, state, end);
                if !p.is_empty() {
                    hist.record(p.iter().map(|(a, b)| b - a).sum());
                }
            }
        }
    }

    fn place(&mut self, r: &ConnectionRecord) {
        let c = &mut self.concurrency;
        c.start(r.first.time_ns, r.outcome);
        c.add(r.first.time_ns, r.last.time_ns, Track::Open(r.outcome));
        for (a, b) in both_periods(r, State::CloseWait) {
            c.add(a, b, Track::CloseWait);
        }
        for (a, b) in both_periods(r, State::TimeWait) {
            c.add(a, b, Track::TimeWait);
        }
        // splitmix64 of the id: the sample is the same on every run.
        self.sample.offer(splitmix64(r.id), || lane(r));
    }

    fn tabulate(&mut self, r: &ConnectionRecord) {
        for a in &r.anomalies {
            let table = self.kinds.entry(a.kind).or_default();
            table.count += 1;
            table.rows.offer(r.id, || TableRow {
                id: r.id,
                time_ns: a.time_ns,
                client: r.client,
                server: r.server,
                outcome: r.outcome,
                side: a.side,
                text: note(a, r),
            });
            table.ladders.offer(r.id, || r.clone());
        }
        self.examples
            .entry(r.outcome.name())
            .or_insert_with(|| Smallest::new(1))
            .offer(r.id, || r.clone());
    }

    /// Anomaly kinds found, worst first, then by how many.
    pub fn kinds_in_order(&self) -> Vec<(Kind, &KindTable)> {
        let mut kinds: Vec<(Kind, &KindTable)> = self.kinds.iter().map(|(k, t)| (*k, t)).collect();
        kinds.sort_by_key(|(k, t)| {
            (
                std::cmp::Reverse(k.severity()),
                std::cmp::Reverse(t.count),
                *k,
            )
        });
        kinds
    }

    /// The records to draw as ladders: the first few of each anomaly kind (worst kinds
    /// first), then the first connection of each outcome; at most [`MAX_LADDERS`].
    pub fn ladder_records(&self) -> Vec<&ConnectionRecord> {
        let mut seen = BTreeSet::new();
        let kinds = self.kinds_in_order();
        let by_kind = kinds.iter().flat_map(|(_, t)| t.ladders.iter());
        let examples = self.examples.values().flat_map(Smallest::iter);
        by_kind
            .chain(examples)
            .filter(|r| seen.insert(r.id))
            .take(MAX_LADDERS)
            .collect()
    }

    /// Severities of the anomalies found, for a badge.
    pub fn worst(&self) -> Option<Severity> {
        self.kinds.keys().map(|k| k.severity()).max()
    }
}

impl Sink for Gather {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        self.measure(&record);
        self.place(&record);
        self.tabulate(&record);
        Ok(())
    }

    fn finish(&mut self, _: &RunReport) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_keeps_the_k_smallest_keys() {
        let mut s = Smallest::new(3);
        for k in [5u64, 1, 9, 3, 7, 2] {
            s.offer(k, || k);
        }
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(!s.wants(4));
        assert!(s.wants(0));
    }

    #[test]
    fn the_sampling_hash_spreads_ids() {
        let mut keys: Vec<u64> = (1..=1000).map(splitmix64).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 1000);
    }
}

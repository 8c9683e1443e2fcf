//! The run summary: totals by outcome, how connections were finalised, and distributions of
//! the durations people ask about, built incrementally from the records as they stream past.

use super::record::ConnectionRecord;
use crate::detect::{Anomaly, Severity};
use crate::states::StatePeakSummary;
use crate::track::{Outcome, State};
use serde::Serialize;
use std::collections::BTreeMap;

/// A log-scale histogram of non-negative nanosecond values: 16 buckets per doubling, so a
/// percentile is exact to within about 4.4 %, in constant memory, with the same answer on
/// every machine.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    min: i64,
    max: i64,
}

const SUB_BUCKETS: u32 = 16;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; 64 * SUB_BUCKETS as usize],
            count: 0,
            min: i64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    /// Adds another histogram's values to this one.
    fn merge(&mut self, other: &Histogram) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    pub fn record(&mut self, value: i64) {
        let v = value.max(0);
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if let Some(b) = self.buckets.get_mut(bucket_of(v)) {
            *b += 1;
        }
    }

    /// The value at quantile `q` (0..=1): the upper bound of its bucket, within [min, max].
    fn quantile(&self, q: f64) -> i64 {
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Distribution {
        if self.count == 0 {
            return Distribution::default();
        }
        Distribution {
            count: self.count,
            min_ns: Some(self.min),
            p50_ns: Some(self.quantile(0.50)),
            p90_ns: Some(self.quantile(0.90)),
            p99_ns: Some(self.quantile(0.99)),
            max_ns: Some(self.max),
        }
    }
}

fn bucket_of(v: i64) -> usize {
    if v < i64::from(SUB_BUCKETS) {
        return v as usize;
    }
    let log2 = 63 - v.leading_zeros();
    let shift = log2 - SUB_BUCKETS.trailing_zeros();
    let sub = (v >> shift) as u32 - SUB_BUCKETS;
    ((shift + 1) * SUB_BUCKETS + sub) as usize
}

fn bucket_upper(i: usize) -> i64 {
    let i = i as u32;
    if i < SUB_BUCKETS {
        return i64::from(i);
    }
    let shift = i / SUB_BUCKETS - 1;
    let sub = i % SUB_BUCKETS + SUB_BUCKETS;
    ((i64::from(sub) + 1) << shift) - 1
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Distribution {
    pub count: u64,
    pub min_ns: Option<i64>,
    pub p50_ns: Option<i64>,
    pub p90_ns: Option<i64>,
    pub p99_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

/// Accumulates the summary from records.
#[derive(Debug, Clone, Default)]
pub struct SummaryBuilder {
    connections: u64,
    by_outcome: BTreeMap<&'static str, u64>,
    finished_by: BTreeMap<&'static str, u64>,
    midstream: u64,
    handshake_rtt: Histogram,
    duration: Histogram,
    close_wait: Histogram,
    time_wait: Histogram,
    anomalies_by_kind: BTreeMap<&'static str, u64>,
    anomalies_by_severity: BTreeMap<&'static str, u64>,
}

impl SummaryBuilder {
    pub fn add(&mut self, r: &ConnectionRecord) {
        self.connections += 1;
        *self.by_outcome.entry(r.outcome.name()).or_default() += 1;
        *self.finished_by.entry(r.finished_by).or_default() += 1;
        self.midstream += u64::from(r.midstream);
        if let Some(rtt) = r.handshake.rtt_ns {
            self.handshake_rtt.record(rtt);
        }
        self.duration.record(r.duration_ns);
        self.count_anomalies(&r.anomalies);
        for t in [&r.states.client, &r.states.server] {
            for (state, hist) in [
                (State::CloseWait, &mut self.close_wait),
                (State::TimeWait, &mut self.time_wait),
            ] {
                if let Some(d) = time_in(t, state, r.last.time_ns) {
                    hist.record(d);
                }
            }
        }
    }

    /// Adds what another builder saw (records are counted in any order).
    pub fn merge(&mut self, other: &SummaryBuilder) {
        self.connections += other.connections;
        for (mine, theirs) in [
            (&mut self.by_outcome, &other.by_outcome),
            (&mut self.finished_by, &other.finished_by),
            (&mut self.anomalies_by_kind, &other.anomalies_by_kind),
            (
                &mut self.anomalies_by_severity,
                &other.anomalies_by_severity,
            ),
        ] {
            for (key, n) in theirs {
                *mine.entry(key).or_default() += n;
            }
        }
        self.midstream += other.midstream;
        self.handshake_rtt.merge(&other.handshake_rtt);
        self.duration.merge(&other.duration);
        self.close_wait.merge(&other.close_wait);
        self.time_wait.merge(&other.time_wait);
    }

    fn count_anomalies(&mut self, anomalies: &[Anomaly]) {
        for a in anomalies {
            *self.anomalies_by_kind.entry(a.kind.name()).or_default() += 1;
            *self
                .anomalies_by_severity
                .entry(a.severity.name())
                .or_default() += 1;
        }
    }

    pub fn build(
        &mut self,
        peak_connections: usize,
        evicted: u64,
        episodes: Vec<Anomaly>,
    ) -> Summary {
        self.count_anomalies(&episodes);
        let mut by_severity = BTreeMap::new();
        for s in [Severity::Info, Severity::Warning, Severity::Alert] {
            by_severity.insert(
                s.name(),
                self.anomalies_by_severity
                    .get(s.name())
                    .copied()
                    .unwrap_or(0),
            );
        }
        let mut by_outcome = BTreeMap::new();
        for o in Outcome::ALL {
            by_outcome.insert(
                o.name(),
                self.by_outcome.get(o.name()).copied().unwrap_or(0),
            );
        }
        Summary {
            connections: self.connections,
            by_outcome,
            finished_by: self.finished_by.clone(),
            midstream: self.midstream,
            evicted,
            peak_concurrent_connections: peak_connections as u64,
            late_packets: 0,
            anomalies_by_kind: self.anomalies_by_kind.clone(),
            anomalies_by_severity: by_severity,
            episodes,
            distributions: Distributions {
                handshake_rtt: self.handshake_rtt.summary(),
                duration: self.duration.summary(),
                close_wait: self.close_wait.summary(),
                time_wait: self.time_wait.summary(),
            },
            state_peaks: StatePeakSummary::default(),
        }
    }
}

/// Time spent in `state` per the recorded transitions; a visit still open at the end counts
/// up to the connection's last packet.
fn time_in(t: &super::record::StateTimeline, state: State, end_ns: i64) -> Option<i64> {
    let mut total = None;
    let mut since = None;
    for tr in &t.transitions {
        if tr.to == state {
            since = Some(tr.at.time_ns);
        } else if tr.from == state {
            if let Some(start) = since.take() {
                *total.get_or_insert(0) += tr.at.time_ns - start;
            }
        }
    }
    if let Some(start) = since {
        *total.get_or_insert(0) += (end_ns - start).max(0);
    }
    total
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub connections: u64,
    pub by_outcome: BTreeMap<&'static str, u64>,
    pub finished_by: BTreeMap<&'static str, u64>,
    pub midstream: u64,
    /// Connections finalised early because the flow table was full.
    pub evicted: u64,
    /// Most connections the tracker held at once, counted at each sweep of its table (every
    /// 100 ms of capture time) and at the end: the same for any number of threads.
    pub peak_concurrent_connections: u64,
    /// Packets of connections that came after their record was emitted (during TIME-WAIT).
    pub late_packets: u64,
    /// Every anomaly found, connections' and episodes', by kind.
    pub anomalies_by_kind: BTreeMap<&'static str, u64>,
    pub anomalies_by_severity: BTreeMap<&'static str, u64>,
    /// Anomalies that belong to no single connection: SYN floods, clocks going backwards,
    /// truncated packets.
    pub episodes: Vec<Anomaly>,
    pub distributions: Distributions,
    /// The most endpoints in each state at once, and when (see `crate::states`).
    pub state_peaks: StatePeakSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Distributions {
    pub handshake_rtt: Distribution,
    pub duration: Distribution,
    pub close_wait: Distribution,
    pub time_wait: Distribution,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000i64).step_by(7).chain([i64::MAX / 2]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket order at {v}");
            last = b;
            let upper = bucket_upper(b);
            assert!(upper >= v, "upper {upper} below {v}");
            assert!(
                (upper - v) as f64 <= v as f64 * 0.07 + 1.0,
                "loose at {v}: {upper}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_set() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v * 1000);
        }
        let d = h.summary();
        assert_eq!(d.count, 100);
        assert_eq!(d.min_ns, Some(1000));
        assert_eq!(d.max_ns, Some(100_000));
        let p50 = d.p50_ns.unwrap();
        assert!((50_000..=53_000).contains(&p50), "{p50}");
    }
}

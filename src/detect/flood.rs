//! SYN floods: toward one server address and port, within any window (1 s by default), at least
//! a count (100) of handshakes that never complete, making up at least a ratio (80 %) of the
//! SYNs to it in that window. Fed one finished connection at a time, in any order; episodes
//! come out at the end, one anomaly each.
//!
//! Memory: a counter per server and 100 ms of SYN arrivals, and 24 bytes per handshake that
//! never completed. The SYN count of a window is summed over the 100 ms buckets it touches, so
//! the ratio is exact to within one bucket at each edge.

use super::{Anomaly, Details, DetectConfig, Kind};
use crate::FastMap;
use crate::time::Rfc3339;
use crate::track::{Addr, At};
use std::collections::BTreeMap;
use std::net::IpAddr;

const BUCKET_NS: i64 = 100_000_000;

#[derive(Debug, Default)]
pub struct FloodDetector {
    syns: FastMap<(Addr, i64), u64>,
    failed: FastMap<Addr, Vec<(At, IpAddr)>>,
}

impl FloodDetector {
    /// A connection whose client sent a SYN at `syn`; `failed` when its handshake never completed.
    pub fn add(&mut self, server: Addr, client: IpAddr, syn: At, failed: bool) {
        *self
            .syns
            .entry((server, syn.ns.div_euclid(BUCKET_NS)))
            .or_default() += 1;
        if failed {
            self.failed.entry(server).or_default().push((syn, client));
        }
    }

    /// The flood episodes, ordered by start time then server.
    pub fn episodes(&mut self, config: &DetectConfig) -> Vec<Anomaly> {
        let servers: BTreeMap<Addr, Vec<(At, IpAddr)>> = self.failed.drain().collect();
        let mut found = Vec::new();
        for (server, mut failures) in servers {
            failures.sort_by_key(|(at, ip)| (at.ns, at.packet, *ip));
            found.extend(self.episodes_of(server, &failures, config));
        }
        found.sort_by_key(|a| a.time_ns);
        found
    }

    fn syns_between(&self, server: Addr, from_ns: i64, to_ns: i64) -> u64 {
        (from_ns.div_euclid(BUCKET_NS)..=to_ns.div_euclid(BUCKET_NS))
            .map(|b| self.syns.get(&(server, b)).copied().unwrap_or(0))
            .sum()
    }

    /// Slides a window over the failures (sorted by time) and merges the windows that qualify.
    fn episodes_of(
        &self,
        server: Addr,
        failures: &[(At, IpAddr)],
        config: &DetectConfig,
    ) -> Vec<Anomaly> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut end = 0;
        for (start, (at, _)) in failures.iter().enumerate() {
            end = end.max(start);
            while failures
                .get(end + 1)
                .is_some_and(|(next, _)| next.ns - at.ns < config.flood_window_ns)
            {
                end += 1;
            }
            let count = (end - start + 1) as u64;
            if count < config.flood_count {
                continue;
            }
            let last_ns = failures.get(end).map_or(at.ns, |(a, _)| a.ns);
            let syns = self.syns_between(server, at.ns, last_ns).max(count);
            if (count as f64) < config.flood_ratio * syns as f64 {
                continue;
            }
            match spans.last_mut() {
                Some(span) if start <= span.1 => span.1 = end,
                _ => spans.push((start, end)),
            }
        }
        spans
            .into_iter()
            .filter_map(|(s, e)| self.episode(server, failures.get(s..=e)?))
            .collect()
    }

    fn episode(&self, server: Addr, span: &[(At, IpAddr)]) -> Option<Anomaly> {
        let (first, _) = *span.first()?;
        let (last, _) = *span.last()?;
        let mut sources: Vec<IpAddr> = span.iter().map(|(_, ip)| *ip).collect();
        sources.sort_unstable();
        sources.dedup();
        Some(Anomaly::new(
            Kind::SynFlood,
            Some(crate::track::Side::Server),
            first,
            Details::SynFlood {
                server: match server.ip {
                    IpAddr::V4(ip) => format!("{ip}:{}", server.port),
                    IpAddr::V6(ip) => format!("[{ip}]:{}", server.port),
                },
                start_ns: first.ns,
                start: Rfc3339(first.ns),
                end_ns: last.ns,
                end: Rfc3339(last.ns),
                incomplete_handshakes: span.len() as u64,
                syns: self.syns_between(server, first.ns, last.ns),
                distinct_sources: sources.len() as u64,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn server() -> Addr {
        Addr {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            port: 80,
        }
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))
    }

    #[test]
    fn a_burst_of_failed_handshakes_is_one_episode() {
        let mut d = FloodDetector::default();
        for i in 0..150u32 {
            d.add(
                server(),
                client(i),
                At::packet(i64::from(i) * 5_000_000, u64::from(i) + 1),
                true,
            );
        }
        let e = d.episodes(&DetectConfig::default());
        assert_eq!(e.len(), 1);
        match &e[0].details {
            Details::SynFlood {
                incomplete_handshakes,
                distinct_sources,
                ..
            } => {
                assert_eq!((*incomplete_handshakes, *distinct_sources), (150, 150));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mostly_successful_traffic_is_no_flood() {
        let mut d = FloodDetector::default();
        for i in 0..1000u32 {
            let failed = i % 5 == 0; // 20 % fail: busy, not flooded
            d.add(
                server(),
                client(i),
                At::packet(i64::from(i) * 500_000, u64::from(i) + 1),
                failed,
            );
        }
        assert!(d.episodes(&DetectConfig::default()).is_empty());
    }

    #[test]
    fn slow_failures_are_no_flood() {
        let mut d = FloodDetector::default();
        for i in 0..300u32 {
            d.add(
                server(),
                client(i),
                At::packet(i64::from(i) * 50_000_000, u64::from(i) + 1),
                true,
            );
        }
        assert!(
            d.episodes(&DetectConfig::default()).is_empty(),
            "20 per second is below 100"
        );
    }
}

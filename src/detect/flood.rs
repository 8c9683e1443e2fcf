//! SYN floods: toward one server address and port, within any window (1 s by default), at least
//! a count (100) of handshakes that never complete, making up at least a ratio (80 %) of the
//! SYNs to it in that window. Fed one finished connection at a time, in any order; episodes
//! come out at the end, one anomaly each. The SYN count of a window is summed over the 100 ms
//! buckets it touches, so the ratio is exact to within one bucket at each edge.
//!
//! Memory: handshakes arrive in the order connections finish, and windows need them by server
//! and time, so they are sorted ([`SortedRecords`]: in memory up to 8 MiB, in temporary files
//! beyond): each failed handshake as 53 bytes, and the SYNs as a count per server and 100 ms
//! (up to 65,536 counts are summed in memory first). At the end they are read back one server
//! at a time, in time order, holding only the failures of one window and the SYN counts since
//! the start of the episode under way; each episode's sources are sorted the same way to be
//! counted. Nothing grows with the capture.

use super::{Anomaly, Details, DetectConfig, Kind};
use crate::FastMap;
use crate::sorted::{SortedRecords, from_signed, key, signed};
use crate::time::Rfc3339;
use crate::track::{Addr, At};
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;

const BUCKET_NS: i64 = 100_000_000;

/// Bytes of handshakes held in memory before they are sorted into a temporary file.
const HELD_BYTES: usize = 8 << 20;
/// Servers × 100 ms whose SYNs are counted in memory before the counts join the handshakes.
const HELD_BUCKETS: usize = 1 << 16;

/// An address as key bytes: family (4 or 6), then its octets (IPv4's in the first four).
const IP: usize = 17;
/// A server as key bytes: address, then port.
const SERVER: usize = IP + 2;
/// A handshake's key: server, time, what it is (0: a count of SYNs in the 100 ms from that
/// time; 1: a failed handshake), its packet (0 for none, else the number + 1), its client.
/// Sorted, a server's counts and failures come together in time order, as the old order of
/// failures was (time, packet, client).
const KEY: usize = SERVER + 8 + 1 + 8 + IP;
/// An episode's source: episode number, client.
const SOURCE: usize = 8 + IP;

pub struct FloodDetector {
    syns: FastMap<(Addr, i64), u64>,
    held_buckets: usize,
    handshakes: SortedRecords<KEY>,
    held_bytes: usize,
}

impl Default for FloodDetector {
    fn default() -> Self {
        Self::with_limits(HELD_BYTES, HELD_BUCKETS)
    }
}

impl FloodDetector {
    /// Holds up to `bytes` of handshakes and `buckets` counts in memory.
    fn with_limits(bytes: usize, buckets: usize) -> Self {
        FloodDetector {
            syns: FastMap::default(),
            held_buckets: buckets,
            handshakes: SortedRecords::new(bytes),
            held_bytes: bytes,
        }
    }

    /// A connection whose client sent a SYN at `syn`; `failed` when its handshake never completed.
    pub fn add(&mut self, server: Addr, client: IpAddr, syn: At, failed: bool) -> io::Result<()> {
        *self
            .syns
            .entry((server, syn.ns.div_euclid(BUCKET_NS)))
            .or_default() += 1;
        if self.syns.len() >= self.held_buckets {
            self.sort_counts()?;
        }
        if failed {
            let key = handshake_key(server, syn.ns, Some((syn.packet, client)));
            self.handshakes.push(key, |_| Ok(()))?;
        }
        Ok(())
    }

    /// Moves the SYN counts held to the sorted handshakes.
    fn sort_counts(&mut self) -> io::Result<()> {
        for ((server, bucket), n) in self.syns.drain() {
            let key = handshake_key(server, bucket.saturating_mul(BUCKET_NS), None);
            self.handshakes.push(key, |out| {
                out.extend_from_slice(&n.to_le_bytes());
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The flood episodes, ordered by start time then server.
    pub fn episodes(&mut self, config: &DetectConfig) -> io::Result<Vec<Anomaly>> {
        self.sort_counts()?;
        let limit = self.held_bytes;
        let handshakes = std::mem::replace(&mut self.handshakes, SortedRecords::new(limit));
        let mut found = Found {
            episodes: Vec::new(),
            sources: SortedRecords::new(limit),
        };
        let mut server: Option<([u8; SERVER], Windows)> = None;
        handshakes.drain(|key, payload| {
            let (server_key, time, event) = decode(key, payload);
            if server.as_ref().is_none_or(|(k, _)| *k != server_key) {
                if let Some((_, done)) = server.take() {
                    done.finish(config, &mut found)?;
                }
                server = Some((server_key, Windows::new(server_from(&server_key))));
            }
            let Some((_, windows)) = server.as_mut() else {
                return Ok(());
            };
            windows.advance(time, config, &mut found)?;
            match event {
                Event::Syns(n) => windows.count(time.div_euclid(BUCKET_NS), n),
                Event::Failed(at, client) => windows.failures.push_back((at, client)),
            }
            Ok(())
        })?;
        if let Some((_, done)) = server {
            done.finish(config, &mut found)?;
        }
        found.anomalies()
    }
}

/// What one sorted record says of its server.
enum Event {
    /// SYNs in the 100 ms from the record's time.
    Syns(u64),
    /// A handshake that never completed.
    Failed(At, IpAddr),
}

fn ip_bytes(ip: IpAddr) -> [u8; IP] {
    match ip {
        IpAddr::V4(v4) => key(&[&[4], &v4.octets()]),
        IpAddr::V6(v6) => key(&[&[6], &v6.octets()]),
    }
}

fn ip_from(bytes: &[u8; IP]) -> IpAddr {
    let (family, octets) = bytes.split_first().unwrap_or((&4, &[]));
    let mut v6 = [0u8; 16];
    v6.iter_mut().zip(octets).for_each(|(b, o)| *b = *o);
    if *family == 4 {
        let [a, b, c, d, ..] = v6;
        IpAddr::from([a, b, c, d])
    } else {
        IpAddr::from(v6)
    }
}

/// The key of SYNs counted from `ns` (`failed` none) or of a failed handshake at `ns`.
fn handshake_key(server: Addr, ns: i64, failed: Option<(Option<u64>, IpAddr)>) -> [u8; KEY] {
    let (ip, port, time) = (ip_bytes(server.ip), server.port.to_be_bytes(), signed(ns));
    match failed {
        None => key(&[&ip, &port, &time]),
        Some((packet, client)) => {
            let packet = packet.map_or(0, |p| p.saturating_add(1)).to_be_bytes();
            key(&[&ip, &port, &time, &[1], &packet, &ip_bytes(client)])
        }
    }
}

/// The server that key bytes name.
fn server_from(bytes: &[u8; SERVER]) -> Addr {
    let (ip, port) = bytes.split_first_chunk::<IP>().unwrap_or((&[0; IP], &[]));
    Addr {
        ip: ip_from(ip),
        port: port.first_chunk().map_or(0, |p| u16::from_be_bytes(*p)),
    }
}

/// A record back: its server's key bytes, its time, and what it says.
fn decode(key: &[u8; KEY], payload: &[u8]) -> ([u8; SERVER], i64, Event) {
    let (server, rest) = key
        .split_first_chunk::<SERVER>()
        .unwrap_or((&[0; SERVER], &[]));
    let (time, rest) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let ns = from_signed(*time);
    let (kind, rest) = rest.split_first().unwrap_or((&0, &[]));
    let event = if *kind == 0 {
        Event::Syns(payload.first_chunk().map_or(0, |n| u64::from_le_bytes(*n)))
    } else {
        let (packet, client) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let packet = u64::from_be_bytes(*packet).checked_sub(1);
        let client = client
            .first_chunk::<IP>()
            .map_or(IpAddr::from([0u8; 4]), ip_from);
        Event::Failed(At { ns, packet }, client)
    };
    (*server, ns, event)
}

/// The episodes found so far, and their sources to be counted.
struct Found {
    episodes: Vec<Episode>,
    /// By episode number, then client: one record per failed handshake in an episode.
    sources: SortedRecords<SOURCE>,
}

struct Episode {
    server: Addr,
    first: At,
    last: At,
    incomplete_handshakes: u64,
    syns: u64,
}

impl Found {
    /// A source of the episode under way, the next one in `episodes`.
    fn source(&mut self, client: IpAddr) -> io::Result<()> {
        let number = (self.episodes.len() as u64).to_be_bytes();
        self.sources
            .push(key(&[&number, &ip_bytes(client)]), |_| Ok(()))
    }

    /// The episodes as anomalies, their distinct sources counted, by start time then server.
    fn anomalies(self) -> io::Result<Vec<Anomaly>> {
        let mut distinct = vec![0u64; self.episodes.len()];
        let mut previous = None;
        self.sources.drain(|key, _| {
            if previous != Some(*key) {
                let episode = key.first_chunk().map_or(0, |n| u64::from_be_bytes(*n));
                if let Some(n) = usize::try_from(episode)
                    .ok()
                    .and_then(|e| distinct.get_mut(e))
                {
                    *n += 1;
                }
                previous = Some(*key);
            }
            Ok(())
        })?;
        let mut found: Vec<Anomaly> = self
            .episodes
            .into_iter()
            .zip(distinct)
            .map(|(e, distinct_sources)| e.anomaly(distinct_sources))
            .collect();
        // Stable: episodes of one start time stay in server order, as they were found.
        found.sort_by_key(|a| a.time_ns);
        Ok(found)
    }
}

impl Episode {
    fn anomaly(&self, distinct_sources: u64) -> Anomaly {
        Anomaly::new(
            Kind::SynFlood,
            Some(crate::track::Side::Server),
            self.first,
            Details::SynFlood {
                server: match self.server.ip {
                    IpAddr::V4(ip) => format!("{ip}:{}", self.server.port),
                    IpAddr::V6(ip) => format!("[{ip}]:{}", self.server.port),
                },
                start_ns: self.first.ns,
                start: Rfc3339(self.first.ns),
                end_ns: self.last.ns,
                end: Rfc3339(self.last.ns),
                incomplete_handshakes: self.incomplete_handshakes,
                syns: self.syns,
                distinct_sources,
            },
        )
    }
}

/// One server's windows, slid over its failures in time order: each failure starts a window
/// that holds the failures less than the window's length after it; windows that qualify and
/// overlap make one episode. Failures are numbered in order; `failures` holds them from the
/// next window's start on.
struct Windows {
    server: Addr,
    failures: VecDeque<(At, IpAddr)>,
    /// The number of the first in `failures`.
    front: u64,
    /// The number of the last failure in the previous window (never falls back).
    end: u64,
    /// SYNs by 100 ms bucket, from the episode under way's start (or the next window's).
    buckets: VecDeque<(i64, u64)>,
    episode: Option<Open>,
}

/// The episode under way: its failures from number `start` to `end`. It becomes the next in
/// `Found::episodes` when it closes (one is under way at a time, and servers come one by one).
struct Open {
    start: u64,
    end: u64,
    first: At,
    last: At,
}

impl Windows {
    fn new(server: Addr) -> Self {
        Windows {
            server,
            failures: VecDeque::new(),
            front: 0,
            end: 0,
            buckets: VecDeque::new(),
            episode: None,
        }
    }

    fn count(&mut self, bucket: i64, n: u64) {
        match self.buckets.back_mut() {
            Some((b, syns)) if *b == bucket => *syns += n,
            _ => self.buckets.push_back((bucket, n)),
        }
    }

    /// The server's records have reached `time`: every window that ends by then is complete,
    /// and so are the SYN counts of its buckets (a count is keyed by its bucket's start).
    fn advance(&mut self, time: i64, config: &DetectConfig, found: &mut Found) -> io::Result<()> {
        while let Some(&(start, _)) = self.failures.front() {
            if time.saturating_sub(start.ns) < config.flood_window_ns {
                break;
            }
            self.slide(config, found)?;
        }
        let keep_from = match (&self.episode, self.failures.front()) {
            (Some(open), _) => open.first.ns,
            (None, Some((next, _))) => next.ns,
            (None, None) => time,
        };
        let keep = keep_from.div_euclid(BUCKET_NS);
        while self.buckets.front().is_some_and(|&(b, _)| b < keep) {
            self.buckets.pop_front();
        }
        Ok(())
    }

    /// No more records: the windows left end with the last failure.
    fn finish(mut self, config: &DetectConfig, found: &mut Found) -> io::Result<()> {
        while !self.failures.is_empty() {
            self.slide(config, found)?;
        }
        Ok(())
    }

    /// Judges the window that starts at the first failure held, then lets that failure go.
    fn slide(&mut self, config: &DetectConfig, found: &mut Found) -> io::Result<()> {
        let Some(&(start, client)) = self.failures.front() else {
            return Ok(());
        };
        let number = self.front;
        self.end = self.end.max(number);
        while self
            .held(self.end + 1)
            .is_some_and(|(next, _)| next.ns.saturating_sub(start.ns) < config.flood_window_ns)
        {
            self.end += 1;
        }
        let last = self.held(self.end).map_or(start, |(at, _)| *at);
        let count = self.end - number + 1;
        if count >= config.flood_count {
            let syns = self.syns_between(start.ns, last.ns).max(count);
            if (count as f64) >= config.flood_ratio * syns as f64 {
                self.qualified(number, start, last);
            }
        }
        self.failures.pop_front();
        self.front += 1;
        if let Some(open) = &self.episode {
            found.source(client)?;
            if open.end < self.front {
                self.close(found);
            }
        }
        Ok(())
    }

    /// Failure number `n`, if held.
    fn held(&self, n: u64) -> Option<&(At, IpAddr)> {
        let i = usize::try_from(n.checked_sub(self.front)?).ok()?;
        self.failures.get(i)
    }

    /// The window from failure `number` (at `start`) to the current end qualified: it makes an
    /// episode or, overlapping the one under way, extends it.
    fn qualified(&mut self, number: u64, start: At, last: At) {
        match &mut self.episode {
            Some(open) => {
                open.end = self.end;
                open.last = last;
            }
            None => {
                self.episode = Some(Open {
                    start: number,
                    end: self.end,
                    first: start,
                    last,
                });
            }
        }
    }

    /// The episode under way is over: no later window can reach back into it.
    fn close(&mut self, found: &mut Found) {
        let Some(open) = self.episode.take() else {
            return;
        };
        found.episodes.push(Episode {
            server: self.server,
            first: open.first,
            last: open.last,
            incomplete_handshakes: open.end - open.start + 1,
            syns: self.syns_between(open.first.ns, open.last.ns),
        });
    }

    fn syns_between(&self, from_ns: i64, to_ns: i64) -> u64 {
        let (from, to) = (from_ns.div_euclid(BUCKET_NS), to_ns.div_euclid(BUCKET_NS));
        self.buckets
            .iter()
            .filter(|&&(b, _)| (from..=to).contains(&b))
            .map(|&(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
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

    fn add(d: &mut FloodDetector, server: Addr, client: IpAddr, at: At, failed: bool) {
        d.add(server, client, at, failed)
            .unwrap_or_else(|e| unreachable!("{e}"));
    }

    fn episodes(d: &mut FloodDetector) -> Vec<Anomaly> {
        d.episodes(&DetectConfig::default())
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_burst_of_failed_handshakes_is_one_episode() {
        let mut d = FloodDetector::default();
        for i in 0..150u32 {
            let at = At::packet(i64::from(i) * 5_000_000, u64::from(i) + 1);
            add(&mut d, server(), client(i), at, true);
        }
        let e = episodes(&mut d);
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
            let at = At::packet(i64::from(i) * 500_000, u64::from(i) + 1);
            add(&mut d, server(), client(i), at, failed);
        }
        assert!(episodes(&mut d).is_empty());
    }

    #[test]
    fn slow_failures_are_no_flood() {
        let mut d = FloodDetector::default();
        for i in 0..300u32 {
            let at = At::packet(i64::from(i) * 50_000_000, u64::from(i) + 1);
            add(&mut d, server(), client(i), at, true);
        }
        assert!(episodes(&mut d).is_empty(), "20 per second is below 100");
    }

    #[test]
    fn addresses_survive_their_key_bytes() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "255.255.255.255",
            "::",
            "::ffff:10.1.2.3",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(ip_from(&ip_bytes(ip)), ip);
        }
    }

    /// The windowing as it was done before handshakes were sorted through files: every failure
    /// held, sorted per server at the end. Kept as the reference the streamed one must match.
    fn reference(adds: &[(Addr, IpAddr, At, bool)], config: &DetectConfig) -> Vec<Anomaly> {
        let mut syns: BTreeMap<(Addr, i64), u64> = BTreeMap::new();
        let mut failed: BTreeMap<Addr, Vec<(At, IpAddr)>> = BTreeMap::new();
        for &(server, client, at, f) in adds {
            *syns
                .entry((server, at.ns.div_euclid(BUCKET_NS)))
                .or_default() += 1;
            if f {
                failed.entry(server).or_default().push((at, client));
            }
        }
        let between = |server: Addr, from: i64, to: i64| -> u64 {
            (from.div_euclid(BUCKET_NS)..=to.div_euclid(BUCKET_NS))
                .map(|b| syns.get(&(server, b)).copied().unwrap_or(0))
                .sum()
        };
        let mut found = Vec::new();
        for (server, mut failures) in failed {
            failures.sort_by_key(|(at, ip)| (at.ns, at.packet, *ip));
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
                let last_ns = failures[end].0.ns;
                let syns = between(server, at.ns, last_ns).max(count);
                if count < config.flood_count || (count as f64) < config.flood_ratio * syns as f64 {
                    continue;
                }
                match spans.last_mut() {
                    Some(span) if start <= span.1 => span.1 = end,
                    _ => spans.push((start, end)),
                }
            }
            for (s, e) in spans {
                let span = &failures[s..=e];
                let mut sources: Vec<IpAddr> = span.iter().map(|(_, ip)| *ip).collect();
                sources.sort_unstable();
                sources.dedup();
                let episode = Episode {
                    server,
                    first: span[0].0,
                    last: span[span.len() - 1].0,
                    incomplete_handshakes: span.len() as u64,
                    syns: between(server, span[0].0.ns, span[span.len() - 1].0.ns),
                };
                found.push(episode.anomaly(sources.len() as u64));
            }
        }
        found.sort_by_key(|a| a.time_ns);
        found
    }

    /// Handshakes to three servers (one IPv6) in bursts and lulls, from few sources (so that
    /// they repeat), a third of them failing in the lulls and most in the bursts; given in a
    /// scrambled order, as connections finish.
    fn traffic(seed: u64, n: u32) -> Vec<(Addr, IpAddr, At, bool)> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        let servers = [
            server(),
            Addr {
                port: 443,
                ..server()
            },
            Addr {
                ip: "2001:db8::80"
                    .parse()
                    .unwrap_or_else(|e| unreachable!("{e}")),
                port: 80,
            },
        ];
        let mut t = 1_700_000_000_000_000_000i64;
        let mut adds: Vec<_> = (0..n)
            .map(|i| {
                let burst = (i / 500) % 2 == 0;
                t += if burst { 2_000_000 } else { 20_000_000 } * (next() % 3) as i64;
                let server = servers[(next() % 3) as usize];
                let client = client((next() % 400) as u32);
                let failed = next() % 10 < if burst { 9 } else { 3 };
                (server, client, At::packet(t, u64::from(i) + 1), failed)
            })
            .collect();
        for i in (1..adds.len()).rev() {
            adds.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        adds
    }

    #[test]
    fn streamed_windows_match_the_reference_in_memory_and_through_files() {
        let config = DetectConfig {
            flood_count: 40,
            ..DetectConfig::default()
        };
        for seed in 1..=6 {
            let adds = traffic(seed, 6000);
            let want = reference(&adds, &config);
            assert!(want.len() >= 2, "seed {seed}: {} episodes", want.len());
            let limits = [(HELD_BYTES, HELD_BUCKETS), (2000, 8), (1, 1)];
            for (bytes, buckets) in limits {
                let mut d = FloodDetector::with_limits(bytes, buckets);
                for &(server, client, at, failed) in &adds {
                    add(&mut d, server, client, at, failed);
                }
                let got = d.episodes(&config).unwrap_or_else(|e| unreachable!("{e}"));
                let (got, want) = (format!("{got:?}"), format!("{want:?}"));
                assert!(
                    got == want,
                    "seed {seed}, limits {bytes} {buckets}:\n{got}\n{want}"
                );
            }
        }
    }
}

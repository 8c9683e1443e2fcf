//! Pictures of connections: ladder diagrams (`tcplife diagram`) and the HTML report
//! (`tcplife report`).
//!
//! Both read the captures twice. The first pass is the ordinary analysis
//! ([`crate::analyze::analyze`]): it finds the connections worth drawing and keeps their
//! finished records. The second pass ([`replay`]) reads the same captures again, numbers the
//! packets the same way, and hands each segment of a chosen connection (its 4-tuple, between
//! its first and last packet) to that connection's [`ladder::LadderBuilder`]. Standard input
//! cannot be read twice, so pictures need files. How the report stays small at 300,000
//! connections is in docs/pictures.md.

pub mod charts;
pub mod gather;
pub mod html;
pub mod ladder;
pub mod notes;
pub mod svg;
pub mod text;

use crate::analyze::{self, NoProgress, RunReport, Settings, Sink};
use crate::capture::{CaptureReader, ReadMode};
use crate::decode::{Decoded, decode};
use crate::detect::{Kind, Severity};
use crate::report::record::{ConnectionRecord, EndpointAddr};
use ladder::{Ladder, LadderBuilder, LadderOptions, Seen};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Which connection `tcplife diagram` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// The first with an anomaly of warning severity or worse, else the first.
    Default,
    /// By connection id (`#` optional).
    Id(u64),
    /// The first with this address and port on either side.
    Endpoint(IpAddr, u16),
    /// The first with an anomaly of this kind.
    Anomaly(Kind),
}

impl Selector {
    /// `17`, `#17`, `10.0.0.1:80` or `[2001:db8::1]:443`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let t = text.trim();
        if let Ok(id) = t.trim_start_matches('#').parse::<u64>() {
            return Ok(Selector::Id(id));
        }
        t.parse::<SocketAddr>()
            .map(|a| Selector::Endpoint(a.ip(), a.port()))
            .map_err(|_| {
                format!(
                    "`{text}` is neither a connection id (17) nor an address and port \
                     (10.0.0.1:80, [2001:db8::1]:443)"
                )
            })
    }

    fn matches(self, r: &ConnectionRecord) -> bool {
        let at = |e: EndpointAddr, ip: IpAddr, port: u16| e.ip == ip && e.port == port;
        match self {
            Selector::Default => r.anomalies.iter().any(|a| a.severity >= Severity::Warning),
            Selector::Id(id) => r.id == id,
            Selector::Endpoint(ip, port) => at(r.client, ip, port) || at(r.server, ip, port),
            Selector::Anomaly(kind) => r.anomalies.iter().any(|a| a.kind == kind),
        }
    }

    /// What was asked for, for a message when nothing matched.
    pub fn describe(self) -> String {
        match self {
            Selector::Default => "any connection".to_owned(),
            Selector::Id(id) => format!("connection #{id}"),
            Selector::Endpoint(ip, port) => {
                format!("a connection with {}", SocketAddr::new(ip, port))
            }
            Selector::Anomaly(kind) => format!("a connection with a {kind} anomaly"),
        }
    }
}

/// Keeps the first (lowest id) connection the selector matches, and the very first as the
/// default's fallback. Records arrive in the order connections finish, not by id.
struct Pick {
    selector: Selector,
    matched: Option<ConnectionRecord>,
    first: Option<ConnectionRecord>,
}

fn keep_lower(slot: &mut Option<ConnectionRecord>, record: &ConnectionRecord) {
    if slot.as_ref().is_none_or(|r| record.id < r.id) {
        *slot = Some(record.clone());
    }
}

impl Sink for Pick {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        if self.selector.matches(&record) {
            keep_lower(&mut self.matched, &record);
        }
        if self.selector == Selector::Default {
            keep_lower(&mut self.first, &record);
        }
        Ok(())
    }

    fn finish(&mut self, _: &RunReport) -> io::Result<()> {
        Ok(())
    }
}

/// The ladder of the connection `selector` picks (none when nothing matches), and the run.
pub fn diagram(
    paths: &[String],
    settings: Settings,
    selector: Selector,
    options: LadderOptions,
) -> io::Result<(Option<Ladder>, RunReport)> {
    let mut pick = Pick {
        selector,
        matched: None,
        first: None,
    };
    let read = settings.read;
    let report = analyze::analyze(paths, settings, &mut pick, &mut NoProgress)?;
    let Some(record) = pick.matched.or(pick.first) else {
        return Ok((None, report));
    };
    let mut ladders = replay(paths, &[&record], options, read);
    Ok((ladders.pop(), report))
}

/// A connection being drawn in the second pass.
struct Wanted {
    first: u64,
    last: u64,
    builder: LadderBuilder,
    client: EndpointAddr,
}

/// The 4-tuple, the same whichever way the segment goes.
type FlowKey = ((IpAddr, u16), (IpAddr, u16));

fn flow_key(a: (IpAddr, u16), b: (IpAddr, u16)) -> FlowKey {
    if a <= b { (a, b) } else { (b, a) }
}

/// Reads `paths` again and builds the ladder of each of `records`, in their order. A capture
/// error ends that file, as in the first pass, so packet numbers stay the same.
pub fn replay(
    paths: &[String],
    records: &[&ConnectionRecord],
    options: LadderOptions,
    read: ReadMode,
) -> Vec<Ladder> {
    let mut wanted: Vec<Wanted> = records
        .iter()
        .map(|r| Wanted {
            first: r.first.packet.unwrap_or(0),
            last: r.last.packet.unwrap_or(u64::MAX),
            builder: LadderBuilder::new(r, options),
            client: r.client,
        })
        .collect();
    let mut by_flow: HashMap<FlowKey, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let key = flow_key((r.client.ip, r.client.port), (r.server.ip, r.server.port));
        by_flow.entry(key).or_default().push(i);
    }
    let mut packet = 0u64;
    for path in paths {
        let Ok(mut reader) = CaptureReader::open(path, read) else {
            continue;
        };
        while let Ok(Some(frame)) = reader.next_frame() {
            packet += 1;
            let Decoded::Tcp(seg) = decode(frame.link_type, frame.data, frame.orig_len) else {
                continue;
            };
            let key = flow_key((seg.src, seg.src_port), (seg.dst, seg.dst_port));
            let Some(candidates) = by_flow.get(&key) else {
                continue;
            };
            for &i in candidates {
                if let Some(w) = wanted.get_mut(i) {
                    if (w.first..=w.last).contains(&packet) {
                        w.builder
                            .push(&Seen::new(&seg, packet, frame.ts_ns, w.client));
                    }
                }
            }
        }
    }
    wanted.into_iter().map(|w| w.builder.finish()).collect()
}

/// Octets for people: `38 B`, `1.2 kB`, `3.4 MB` (powers of 1000).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = "kB";
    for u in UNITS.iter().skip(1) {
        if value < 999.95 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// A count with thousands separated: `300,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `10.0.0.1:80` or `[2001:db8::1]:443`.
pub fn endpoint(e: EndpointAddr) -> String {
    SocketAddr::new(e.ip, e.port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(Selector::parse("17"), Ok(Selector::Id(17)));
        assert_eq!(Selector::parse("#3"), Ok(Selector::Id(3)));
        assert_eq!(
            Selector::parse("10.0.0.1:80"),
            Ok(Selector::Endpoint("10.0.0.1".parse().unwrap(), 80))
        );
        assert_eq!(
            Selector::parse("[2001:db8::1]:443"),
            Ok(Selector::Endpoint("2001:db8::1".parse().unwrap(), 443))
        );
        assert!(Selector::parse("10.0.0.1").is_err());
        assert!(Selector::parse("web").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(300_000), "300,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(38), "38 B");
        assert_eq!(bytes(1448), "1.4 kB");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(5_000_000_000), "5.0 GB");
    }
}

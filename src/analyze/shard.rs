//! One share of the tracking: a flow table for the connections whose 4-tuple falls to it,
//! turning segments into finished, checked and (when the sink allows) encoded records, and
//! counting them towards the summary. The reader tells it the capture clock and when to sweep,
//! so that every share sweeps at the same instants as a single table would.

use super::{Encoder, Takes};
use crate::decode::{Segment, TcpFlags, TcpOptions};
use crate::detect::{DetectConfig, detect};
use crate::mix;
use crate::report::record::ConnectionRecord;
use crate::report::summary::SummaryBuilder;
use crate::report::text::Digest;
use crate::states::{PeakInput, Stay};
use crate::track::table::{LateReset, TableStats};
use crate::track::{Addr, At, Config, Connection, FlowTable, Outcome, Side};
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::ops::Range;

/// What the reader hands a share.
#[derive(Debug, Clone, Copy)]
pub enum Item {
    /// Sweep the table at capture time `now`, before packet `point` is looked at.
    Sweep { now: i64, point: u64 },
    /// A segment's header, read at capture time `ns` as packet `packet`, with the capture
    /// clock `now` once it is read, and whether its TCP checksum held.
    Segment {
        seg: Header,
        ns: i64,
        packet: u64,
        now: i64,
        checksum_ok: bool,
    },
}

/// What the tracking reads of a segment: a [`Segment`] without its byte slices. Every segment
/// is copied into a round and read on another core, so an item is kept small: 112 bytes,
/// where a whole segment made it 168.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: TcpOptions,
    payload_len: u32,
    ip_len: u32,
}

impl Header {
    pub fn of(seg: &Segment<'_>) -> Self {
        Header {
            src: seg.src,
            dst: seg.dst,
            src_port: seg.src_port,
            dst_port: seg.dst_port,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            options: seg.options,
            payload_len: seg.payload_len,
            ip_len: seg.ip_len,
        }
    }

    /// Sender and receiver, as [`Addr::ends_of`] gives them for the segment.
    fn ends(&self) -> (Addr, Addr) {
        Addr::ends_of(&self.segment())
    }

    /// The segment again, its byte slices empty.
    fn segment(&self) -> Segment<'static> {
        Segment {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: self.options,
            payload_len: self.payload_len,
            ip_len: self.ip_len,
            payload: &[],
            ip_header: &[],
            tcp_header: &[],
        }
    }
}

/// Where in the run records finished: at a sweep just before a packet, at a packet, or at
/// the capture's end. Ordered by the packet, a sweep before its packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Sweep(u64),
    Packet(u64),
    End,
}

impl Point {
    fn key(self) -> (u64, u8) {
        match self {
            Point::Sweep(packet) => (packet, 0),
            Point::Packet(packet) => (packet, 1),
            Point::End => (u64::MAX, 2),
        }
    }
}

impl Ord for Point {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Point {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A finished connection on its way to the sink. Records leave the run in the order of
/// `(point, id)`, whatever the number of shares.
pub struct Finished {
    pub point: Point,
    pub id: u64,
    /// The capture clock when it finished.
    pub now: i64,
    pub flood: Option<HandshakeAttempt>,
    pub peaks: PeakInput,
    /// What the sink takes of the record.
    pub taken: Taken,
}

/// What a sink takes of a record (see [`Takes`]).
pub enum Taken {
    /// Its encoding: a range of one of its batch's buffers.
    Encoded(io::Result<(usize, Range<usize>)>),
    /// The record itself. Boxed: it is over a kilobyte and moves several times on its way.
    Record(Box<ConnectionRecord>),
    /// Its digest, for the text summary.
    Digest(Digest),
}

impl Finished {
    pub fn order(&self) -> (Point, u64) {
        (self.point, self.id)
    }
}

/// What a share gives back for the items it took. Batches and their buffers go round between
/// the reader and the shares and are used again, so that a steady run allocates nothing big.
#[derive(Default)]
pub struct Batch {
    pub finished: Vec<Finished>,
    /// Encoded records, back to back.
    pub buffers: Vec<Vec<u8>>,
    /// Empty buffers to encode into before allocating new ones.
    pub spare: Vec<Vec<u8>>,
    /// The stays of the records' peak inputs, back to back.
    pub stays: Vec<Stay>,
    /// Connections held just before each sweep.
    pub held_at_sweeps: Vec<usize>,
}

impl Batch {
    /// The bytes of encoded records.
    pub fn bytes(&self, buffer: usize, range: Range<usize>) -> &[u8] {
        self.buffers
            .get(buffer)
            .and_then(|b| b.get(range))
            .unwrap_or_default()
    }

    /// Empties the batch; its buffers become spare.
    pub fn clear(&mut self) {
        self.finished.clear();
        for mut b in self.buffers.drain(..) {
            b.clear();
            self.spare.push(b);
        }
        self.held_at_sweeps.clear();
        self.stays.clear();
    }
}

/// A connection's handshake attempt, for the SYN-flood episodes.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeAttempt {
    pub server: Addr,
    pub client: IpAddr,
    pub syn: At,
    pub failed: bool,
}

impl HandshakeAttempt {
    fn of(conn: &Connection) -> Option<Self> {
        let syn = conn.end(Side::Client).syn.as_ref()?;
        let failed = !conn.handshake_done()
            && matches!(
                conn.outcome(),
                Outcome::Unanswered | Outcome::HalfOpen | Outcome::Reset
            );
        Some(HandshakeAttempt {
            server: conn.server,
            client: conn.client.ip,
            syn: syn.first,
            failed,
        })
    }
}

/// What a share says about itself at the end.
#[derive(Debug, Default)]
pub struct ShareEnd {
    /// Connections held when the capture ended.
    pub held_at_end: usize,
    pub stats: TableStats,
    pub late_resets: Vec<LateReset>,
    pub summary: SummaryBuilder,
}

pub struct Shard {
    table: FlowTable,
    idle_timeout_ns: i64,
    detect: DetectConfig,
    takes: Takes,
    summary: SummaryBuilder,
    /// Once the capture is over: its last clock, and the connections held then.
    end: Option<(i64, usize)>,
    /// Finished connections not yet made records, in output order: those of one item are
    /// sorted by id, and items come in order.
    ready: VecDeque<Ready>,
    /// One item's finished connections, being sorted.
    scratch: Vec<Ready>,
}

/// A finished connection, with where and when in the run it finished.
struct Ready {
    conn: Box<Connection>,
    point: Point,
    now: i64,
}

/// A batch's buffers hold this much each (and a record more): small enough to come from the
/// allocator's heap rather than fresh pages from the system (glibc maps blocks over 128 KiB
/// on their own, and unmaps them when freed), and never doubled past their need.
const BUFFER_BYTES: usize = 64 * 1024;

impl Shard {
    /// `config.max_connections` is this share's part of the cap.
    pub fn new(config: Config, detect: DetectConfig, takes: Takes) -> Self {
        Shard {
            table: FlowTable::new(config),
            idle_timeout_ns: config.idle_timeout_ns,
            detect,
            takes,
            summary: SummaryBuilder::default(),
            end: None,
            ready: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Takes one item; what finished waits for [`Shard::produce`]. A sweep gives the number
    /// of connections held just before it.
    pub fn take(&mut self, item: &Item) -> Option<usize> {
        match *item {
            Item::Sweep { now, point } => {
                let held = self.table.len();
                self.table.sweep(now);
                self.collect(Point::Sweep(point), now);
                Some(held)
            }
            Item::Segment {
                ref seg,
                ns,
                packet,
                now,
                checksum_ok,
            } => {
                self.table.advance(now);
                let (seg, at) = (seg.segment(), At::packet(ns, packet));
                if checksum_ok {
                    self.table.on_segment(&seg, at);
                } else {
                    self.table.on_corrupt_segment(&seg, at);
                }
                self.collect(Point::Packet(packet), now);
                None
            }
        }
    }

    /// The capture is over at `now`: everything still held finishes, for
    /// [`Shard::produce`] to make into records a few at a time (all at once they would be the
    /// whole table as records).
    pub fn finish(&mut self, now: i64) {
        self.end = Some((now, self.table.len()));
        self.table.advance(now);
        self.table.finish_all();
        self.collect(Point::End, now);
    }

    /// Whether finished connections wait for [`Shard::produce`].
    pub fn waiting(&self) -> bool {
        !self.ready.is_empty()
    }

    /// How many finished connections wait for [`Shard::produce`].
    pub fn waiting_count(&self) -> usize {
        self.ready.len()
    }

    /// Makes records of the finished connections waiting, in order, until `out` holds `most`;
    /// true when some are still waiting.
    pub fn produce(&mut self, out: &mut Batch, most: usize) -> bool {
        while out.finished.len() < most {
            let Some(r) = self.ready.pop_front() else {
                return false;
            };
            self.finished(&r.conn, r.point, r.now, out);
            self.table.recycle(r.conn);
        }
        !self.ready.is_empty()
    }

    /// Once every record is out: what this share says about itself.
    pub fn end(&mut self) -> ShareEnd {
        ShareEnd {
            held_at_end: self.end.map_or(0, |(_, held)| held),
            stats: self.table.stats(),
            late_resets: self.table.late_resets().to_vec(),
            summary: std::mem::take(&mut self.summary),
        }
    }

    /// Queues what the table finished at `point`, by id.
    fn collect(&mut self, point: Point, now: i64) {
        let finished = self.table.take_finished();
        // Most segments finish nothing: then there is nothing to sort or move.
        if finished.len() == 0 {
            return;
        }
        self.scratch
            .extend(finished.map(|conn| Ready { conn, point, now }));
        self.scratch.sort_unstable_by_key(|r| r.conn.id);
        self.ready.extend(self.scratch.drain(..));
    }

    fn finished(&mut self, conn: &Connection, point: Point, now: i64, out: &mut Batch) {
        let anomalies = detect(conn, &self.detect);
        let mut record = ConnectionRecord::new(conn, anomalies);
        self.summary.add(&record);
        let id = record.id;
        let peaks = PeakInput::of(&record, self.idle_timeout_ns, &mut out.stays);
        let taken = match &mut self.takes {
            Takes::Records => Taken::Record(Box::new(record)),
            Takes::Bytes(encode) => Taken::Encoded(encode_into(*encode, &mut record, out)),
            Takes::Digests(digester) => Taken::Digest(digester.digest(record)),
        };
        out.finished.push(Finished {
            point,
            id,
            now,
            flood: HandshakeAttempt::of(conn),
            peaks,
            taken,
        });
    }
}

/// Encodes a record at the end of the batch's last buffer.
fn encode_into(
    encode: Encoder,
    record: &mut ConnectionRecord,
    out: &mut Batch,
) -> io::Result<(usize, Range<usize>)> {
    if out.buffers.last().is_none_or(|b| b.len() >= BUFFER_BYTES) {
        let fresh = out.spare.pop();
        out.buffers
            .push(fresh.unwrap_or_else(|| Vec::with_capacity(BUFFER_BYTES + 8192)));
    }
    let index = out.buffers.len().saturating_sub(1);
    let buffer = out
        .buffers
        .last_mut()
        .ok_or_else(|| io::Error::other("no buffer to encode into"))?;
    let start = buffer.len();
    encode(record, buffer)?;
    Ok((index, start..buffer.len()))
}

/// How segments are split among the shares: by a hash of their 4-tuple that is the same in
/// both directions (the sum of its two endpoints' mixes, which does not care about their
/// order), fixed so that the split (never the output) is the same on every run.
///
/// The first share runs on the reading thread, which also reads, decodes, deals and merges:
/// on as many cores as shares, it gets the part of the tracking that levels its thread's work
/// with each worker's, none when the reading alone is a worker's load. How much the reading's
/// own work is depends on the capture ([`Probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    shares: u64,
    /// Of [`Split::PARTS`] hash values, those of the first share.
    first: u64,
}

impl Split {
    /// The hash's values, in parts.
    const PARTS: u64 = 1 << 10;

    /// `shares` shares, the first on the reading thread, whose own work (read, decode, deal,
    /// merge) is `reading` parts of the tracking's (all of it [`Split::PARTS`]).
    pub fn new(shares: usize, reading: u64) -> Self {
        let shares = shares.max(1) as u64;
        // With `n` shares and the reading's work `r` (of the tracking's 1), the first share
        // gets `w` where `r + w = (1 - w) / (n - 1)`: `w = (1 - r (n - 1)) / n`.
        let reading = reading.saturating_mul(shares - 1);
        // (With one share, `w` is the whole.)
        let first = Self::PARTS.saturating_sub(reading) / shares;
        Split { shares, first }
    }

    /// How many shares there are.
    pub fn shares(&self) -> usize {
        usize::try_from(self.shares).unwrap_or(1)
    }

    /// Share `i`'s part of `total` (rounded up): of the flow table's cap, say.
    pub fn part_of(&self, i: usize, total: usize) -> usize {
        let total = total as u128 * u128::from(self.parts(i));
        usize::try_from(total.div_ceil(u128::from(Self::PARTS))).unwrap_or(usize::MAX)
    }

    /// Of [`Split::PARTS`] hash values, those of share `i`.
    pub fn parts(&self, i: usize) -> u64 {
        match i {
            0 => self.first,
            _ if (i as u64) < self.shares => {
                let rest = Self::PARTS - self.first;
                let others = self.shares - 1;
                let i = i as u64 - 1;
                ((i + 1) * rest).div_ceil(others) - (i * rest).div_ceil(others)
            }
            _ => 0,
        }
    }

    /// The share a segment belongs to.
    pub fn share(&self, seg: &Header) -> usize {
        let (src, dst) = seg.ends();
        let h = mix(src.folded()).wrapping_add(mix(dst.folded()));
        let part = h >> (64 - Self::PARTS.trailing_zeros());
        let share = if part < self.first {
            0
        } else {
            1 + (part - self.first) * (self.shares - 1) / (Self::PARTS - self.first)
        };
        usize::try_from(share).unwrap_or(0)
    }
}

/// What the first segments of a run say about the reading thread's own work against the
/// tracking's, to choose the [`Split`]: reading costs by the frame and by the byte, tracking by
/// the segment and by the connection (setting it up, ending it, checking and encoding its
/// record). A bulk transfer has large frames and few connections, so the reading outweighs its
/// tracking; short connections are the other way round.
///
/// The costs are in thousandths of tracking one segment, fitted to perf profiles of one
/// thread on the benchmark's two captures (`bench/`), where the reading (kernel copy, frame
/// walk, decoding, dealing) took 21 % of the samples on the many-connection capture (278 bytes
/// a frame, a connection every 12 segments) and 64 % on a bulk one (1,481 bytes a frame, three
/// connections). Their first segments give the reading 249 parts (the fixed split tuned on the
/// many-connection capture had 250) and over 1,500 (none of the tracking for the reader).
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe {
    frames: u64,
    bytes: u64,
    segments: u64,
    /// Segments that open a connection (SYN without ACK).
    openings: u64,
}

impl Probe {
    /// Segments looked at before the split is chosen; held back until then (about 0.7 MB).
    pub const SEGMENTS: u64 = 4096;
    /// Reading a frame, whatever its size: walking to it, decoding and dealing it.
    const READ_FRAME: u64 = 700;
    /// Bytes read (copied from the kernel) for as much work as tracking a segment.
    const BYTES_PER_SEGMENT: u64 = 1360;
    const TRACK_SEGMENT: u64 = 1000;
    /// A connection's own tracking, beyond its segments'.
    const TRACK_CONNECTION: u64 = 28_600;

    /// A frame of `captured` bytes was read.
    pub fn frame(&mut self, captured: usize) {
        self.frames += 1;
        self.bytes += captured as u64;
    }

    /// A segment was dealt.
    pub fn segment(&mut self, seg: &Header) {
        self.segments += 1;
        self.openings += u64::from(seg.flags.syn() && !seg.flags.ack());
    }

    /// Whether enough segments were seen.
    pub fn done(&self) -> bool {
        self.segments >= Self::SEGMENTS
    }

    /// The reading's work, in parts of the tracking's ([`Split::PARTS`] for as much).
    pub fn reading(&self) -> u64 {
        let reading = u128::from(self.frames) * u128::from(Self::READ_FRAME)
            + u128::from(self.bytes) * u128::from(Self::TRACK_SEGMENT)
                / u128::from(Self::BYTES_PER_SEGMENT);
        let tracking = u128::from(self.segments) * u128::from(Self::TRACK_SEGMENT)
            + u128::from(self.openings) * u128::from(Self::TRACK_CONNECTION);
        (reading * u128::from(Split::PARTS))
            .checked_div(tracking)
            .map_or(0, |parts| u64::try_from(parts).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::testing::{ACK, SYN, segment};

    fn addr(ip: &str, port: u16) -> Addr {
        Addr {
            ip: ip
                .parse()
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            port,
        }
    }

    #[test]
    fn a_header_gives_back_the_segment_without_its_bytes_in_an_item_of_at_most_112_bytes() {
        let mut seg = segment(
            addr("2001:db8::1", 40_000),
            addr("10.0.0.1", 80),
            SYN,
            7,
            9,
            3,
        );
        seg.window = 512;
        seg.options = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((11, 13)),
        };
        seg.ip_len = 63;
        seg.payload = b"abc";
        seg.tcp_header = &[0; 40];
        let bare = Segment {
            payload: &[],
            ip_header: &[],
            tcp_header: &[],
            ..seg
        };
        assert_eq!(
            format!("{:?}", Header::of(&seg).segment()),
            format!("{bare:?}")
        );
        assert!(size_of::<Item>() <= 112, "{}", size_of::<Item>());
    }

    /// Segments from `n` connections, half IPv4 and half IPv6, both ways.
    fn both_ways(n: u16) -> impl Iterator<Item = (Header, Header)> {
        (0..n).map(|n| {
            let client = if n % 2 == 0 {
                addr("10.0.0.1", 1024 + n)
            } else {
                addr(&format!("2001:db8::{n:x}"), 40_000)
            };
            let server = addr("192.0.2.1", 80);
            (
                Header::of(&segment(client, server, ACK, 1, 1, 0)),
                Header::of(&segment(server, client, ACK, 1, 1, 0)),
            )
        })
    }

    #[test]
    fn both_directions_of_a_connection_fall_to_the_same_share_in_the_split_s_proportions() {
        for shares in [1, 2, 3, 4, 8] {
            let split = Split::new(shares, MANY_CONNECTIONS);
            let mut counts = vec![0u64; shares];
            for (out, back) in both_ways(12_000) {
                let share = split.share(&out);
                assert_eq!(share, split.share(&back), "{out:?}");
                counts[share] += 1;
            }
            for (i, &count) in counts.iter().enumerate() {
                // Within a tenth of its part (and a few connections, for a part near zero).
                let expected = 12_000 * split.parts(i) / Split::PARTS;
                assert!(
                    count.abs_diff(expected) <= expected / 10 + 10,
                    "{shares} shares: {counts:?}, share {i} expected {expected}"
                );
            }
        }
    }

    #[test]
    fn the_reading_thread_takes_less_the_more_shares_there_are_and_the_parts_add_up() {
        let mut last = Split::PARTS + 1;
        for shares in 1..=8 {
            let split = Split::new(shares, MANY_CONNECTIONS);
            let parts: Vec<u64> = (0..shares).map(|i| split.parts(i)).collect();
            assert_eq!(parts.iter().sum::<u64>(), Split::PARTS, "{parts:?}");
            assert!(parts[0] < last, "{shares}: {parts:?}");
            last = parts[0].max(1);
            // The workers' parts are even, and the first share's is never more than theirs.
            if let Some((&most, &least)) = parts[1..].iter().max().zip(parts[1..].iter().min()) {
                assert!(most - least <= 1 && parts[0] <= least, "{parts:?}");
            }
            // Each share's cap holds its part (rounded up), and the caps cover the whole.
            let caps: Vec<usize> = (0..shares).map(|i| split.part_of(i, 1000)).collect();
            assert!(caps.iter().sum::<usize>() >= 1000, "{caps:?}");
            assert!(caps.iter().sum::<usize>() <= 1000 + shares, "{caps:?}");
        }
        assert_eq!(
            Split::new(2, MANY_CONNECTIONS).parts(0),
            (Split::PARTS - MANY_CONNECTIONS) / 2
        );
        assert_eq!(Split::new(8, MANY_CONNECTIONS).parts(0), 0);
    }

    /// The reading's part on the benchmark's many-connection capture, as the probe finds it.
    const MANY_CONNECTIONS: u64 = 249;

    /// A probe of `segments` frames of `bytes` each, one in `per_connection` opening one.
    fn probe(segments: u64, bytes: usize, per_connection: u64) -> Probe {
        let mut probe = Probe::default();
        let syn = Header::of(&segment(
            addr("10.0.0.1", 40_000),
            addr("192.0.2.1", 80),
            SYN,
            0,
            0,
            0,
        ));
        let ack = Header::of(&segment(
            addr("10.0.0.1", 40_000),
            addr("192.0.2.1", 80),
            ACK,
            1,
            1,
            0,
        ));
        for i in 0..segments {
            probe.frame(bytes);
            probe.segment(if i % per_connection == 0 { &syn } else { &ack });
        }
        probe
    }

    #[test]
    fn the_probe_is_done_after_its_segments_and_not_before() {
        assert!(!probe(Probe::SEGMENTS - 1, 100, 10).done());
        assert!(probe(Probe::SEGMENTS, 100, 10).done());
    }

    /// The first segments of the benchmark's two captures (counted from them): the many-
    /// connection one gives the reading thread a third of the tracking on two cores, as the
    /// fixed split tuned on it did; the bulk one gives it none.
    #[test]
    fn short_connections_give_the_reading_thread_a_share_and_a_bulk_transfer_none() {
        let many = probe(4096, 251, 11).reading();
        assert!((200..300).contains(&many), "{many}");
        assert!((350..400).contains(&Split::new(2, many).parts(0)), "{many}");
        let bulk = probe(4096, 1_141, 1_365).reading();
        assert!(bulk > Split::PARTS, "{bulk}");
        assert_eq!(Split::new(2, bulk).parts(0), 0);
        // A SYN flood is nearly all tracking.
        let flood = probe(4096, 54, 1).reading();
        assert!(flood < 50, "{flood}");
        assert_eq!(Probe::default().reading(), 0);
    }
}

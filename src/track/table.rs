//! The flow table: each 4-tuple's current incarnation, new incarnations on a new ISN, and
//! finalisation by capture time (a short linger after a close, idle timeout) or, when the table
//! is full, by eviction of the longest idle. Finished connections queue up for the caller to
//! take; nothing is ever dropped silently.
//!
//! A closed connection leaves behind a tombstone of a hundred-odd bytes for the rest of its
//! TIME-WAIT (2×MSL after the final ACK): it links and judges a new incarnation of the 4-tuple
//! (TIME-WAIT reuse) and absorbs late packets, while the full connection, its record emitted,
//! is freed. That is what keeps memory flat when hundreds of thousands of connections sit in
//! TIME-WAIT.

use super::connection::{Addr, Connection, Finish, Previous, RolesFrom};
use super::state::{At, State};
use super::{Config, Side, boxed_in};
use crate::FastMap;
use crate::decode::Segment;
use crate::due::DueQueue;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// A 4-tuple with its two ends in a fixed order, so both directions find the same entry.
/// An IPv4 end (address and port) is one `u64` ([`Addr::folded`]), so that the key the table
/// builds, hashes and compares at least once per segment is two integers rather than two
/// address enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FlowKey {
    V4(u64, u64),
    /// IPv6 (or, never from a decoder, the two families mixed).
    Other(Addr, Addr),
}

impl Hash for FlowKey {
    /// Each end as one or two integers, without the derived walk over the enums and bytes.
    fn hash<H: Hasher>(&self, h: &mut H) {
        match *self {
            FlowKey::V4(a, b) => {
                h.write_u64(a);
                h.write_u64(b);
            }
            FlowKey::Other(a, b) => {
                for end in [a, b] {
                    match end.ip {
                        IpAddr::V4(ip) => h.write_u32(ip.to_bits()),
                        IpAddr::V6(ip) => h.write_u128(ip.to_bits()),
                    }
                    h.write_u16(end.port);
                }
            }
        }
    }
}

impl FlowKey {
    /// The key of a segment's 4-tuple. An IPv4 key is folded straight from the segment's
    /// fields: folded from the two ends built first as `Addr`s, it was read back from stack
    /// copies of them in loads that straddled two stores, a store-forwarding stall a segment.
    fn of(seg: &Segment<'_>) -> Self {
        match (seg.src, seg.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let x = Addr::folded_v4(src, seg.src_port);
                let y = Addr::folded_v4(dst, seg.dst_port);
                FlowKey::V4(x.min(y), x.max(y))
            }
            _ => match Addr::ends_of(seg) {
                (a, b) if a <= b => FlowKey::Other(a, b),
                (a, b) => FlowKey::Other(b, a),
            },
        }
    }
}

/// How often, in capture time, the table looks for connections whose time is up. Often enough
/// that what one sweep finishes stays small (on a busy capture, each second closes tens of
/// thousands of connections, and their records are made together), seldom enough that walking
/// the table costs little.
const SWEEP_INTERVAL_NS: i64 = 100_000_000;

/// A sweep also comes after this many segments without one: when timestamps go backwards (two
/// captures of the same hours read one after the other), the clock, which only moves forward,
/// stands still, and what closed in the second capture must still be finished as it goes.
const SWEEP_EVERY_SEGMENTS: u32 = 100_000;

/// When to sweep the table: every tenth of a second of capture time, counted from the first
/// segment, or after [`SWEEP_EVERY_SEGMENTS`]. It lives outside the table so that one schedule,
/// read off every segment, can drive several tables (one per thread, each seeing only its
/// share of the segments) at the same instants.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepSchedule {
    next_ns: Option<i64>,
    segments: u32,
}

impl SweepSchedule {
    /// A segment at `ns` has moved the capture clock to `now`: true when a sweep is due.
    pub fn due(&mut self, ns: i64, now: i64) -> bool {
        let due = *self
            .next_ns
            .get_or_insert(ns.saturating_add(SWEEP_INTERVAL_NS));
        self.segments += 1;
        if now < due && self.segments < SWEEP_EVERY_SEGMENTS {
            return false;
        }
        self.next_ns = Some(now.saturating_add(SWEEP_INTERVAL_NS));
        self.segments = 0;
        true
    }
}

/// Counts the table keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub connections: u64,
    /// Finalised early because the table was full.
    pub evicted: u64,
    /// Packets of a connection that arrived after its record was emitted (absorbed by its
    /// tombstone: retransmitted FINs and ACKs, RSTs).
    pub late_packets: u64,
}

/// Most connection boxes kept for reuse.
const MAX_SPARE: usize = 256;

/// Most late RSTs into TIME-WAIT remembered for the report.
pub const MAX_LATE_RESETS: usize = 1000;

/// What remains of a closed connection while its 4-tuple is in TIME-WAIT.
#[derive(Debug, Clone)]
struct Tombstone {
    previous: Previous,
    expires_ns: i64,
}

/// A RST that reached a side in TIME-WAIT after the connection's record was emitted: the
/// RFC 1337 hazard, reported on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateReset {
    pub connection: u64,
    pub sender: Side,
    pub at: At,
}

/// When something in the table may be due: a sweep looks at what has come up rather than at
/// everything held (a table of 100,000 connections swept ten times a second of capture would
/// otherwise visit a million connections per second).
type Timers = DueQueue<FlowKey>;

#[derive(Clone)]
pub struct FlowTable {
    config: Config,
    /// Boxed: a connection is a few hundred bytes, and the table moves its values as it grows.
    flows: FastMap<FlowKey, Box<Connection>>,
    /// (time, key) for each connection in `flows`, at or before its deadline (see `arm`); one
    /// that comes up before the deadline is put back. An entry is the current one of the
    /// connection its key holds while the connection's `timer_ns` is its time: a new
    /// incarnation takes over its predecessor's (see `on_packet`). Entries of connections
    /// finished otherwise (evicted), or replaced by an earlier entry, are skipped when they
    /// come up.
    timers: Timers,
    /// Incarnations abandoned while still open, kept for their last packets.
    superseded: FastMap<FlowKey, Box<Connection>>,
    tombstones: FastMap<FlowKey, Tombstone>,
    /// (expiry, key) for each tombstone; those removed early are skipped when they come up.
    graves: Timers,
    late_resets: Vec<LateReset>,
    now_ns: i64,
    // Boxed like the map's values, so a connection moves from one to the other as a pointer.
    #[allow(clippy::vec_box)]
    finished: Vec<Box<Connection>>,
    /// Boxes given back by [`FlowTable::recycle`], at most [`MAX_SPARE`].
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Connection>>,
    stats: TableStats,
}

impl FlowTable {
    pub fn new(config: Config) -> Self {
        FlowTable {
            config,
            flows: FastMap::default(),
            timers: Timers::new(),
            superseded: FastMap::default(),
            tombstones: FastMap::default(),
            graves: Timers::new(),
            late_resets: Vec::new(),
            now_ns: i64::MIN,
            finished: Vec::new(),
            spare: Vec::new(),
            stats: TableStats::default(),
        }
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Connections currently held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Entries in the timer queue, current and stale.
    #[cfg(test)]
    pub(super) fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Feeds one segment seen at `at`.
    pub fn on_segment(&mut self, seg: &Segment<'_>, at: At) {
        self.on_packet(seg, at, true);
    }

    /// Feeds a segment whose TCP checksum is wrong (`--verify-checksums`): it reaches only the
    /// Zeek view of its connection, starting one if it is the first packet of the 4-tuple.
    pub fn on_corrupt_segment(&mut self, seg: &Segment<'_>, at: At) {
        self.on_packet(seg, at, false);
    }

    /// Moves the capture clock to `now` (the latest segment of the whole capture, which may be
    /// later than any this table has seen).
    pub fn advance(&mut self, now: i64) {
        self.now_ns = self.now_ns.max(now);
    }

    fn on_packet(&mut self, seg: &Segment<'_>, at: At, checksum_ok: bool) {
        self.advance(at.ns);
        let key = FlowKey::of(seg);
        let (src, dst) = Addr::ends_of(seg);
        if checksum_ok && self.feed_superseded(key, seg, src, at) {
            return;
        }
        // The timer entry of the incarnation a new one supersedes, which the new one takes
        // over: the entry comes up no later than the old deadline, which is before the new
        // one's, and is put back then. A busy client reuses its 4-tuples within the linger
        // time, so otherwise nearly every connection would leave a stale entry behind.
        let mut inherited_timer = None;
        // Most segments belong to the connection the table holds: one lookup feeds it.
        let previous = match self.flows.get_mut(&key) {
            Some(conn) if checksum_ok && starts_new_incarnation(conn, seg, src) => {
                inherited_timer = Some(conn.timer_ns);
                self.flows.remove(&key).map(|old| self.supersede(key, old))
            }
            Some(conn) => {
                feed(conn, seg, src, at, checksum_ok);
                rearm(&mut self.timers, key, conn, &self.config, self.now_ns);
                return;
            }
            None => match self.tombstones.remove(&key) {
                // With --zeek-timers a straggler starts a new record instead: Zeek removed the
                // connection 5 s after its close and makes a new row of it (docs/zeek.md).
                Some(grave) if !is_bare_syn(seg) && !self.config.zeek.timers => {
                    self.absorb_late(&grave, seg, src, at);
                    self.tombstones.insert(key, grave);
                    return;
                }
                grave => {
                    self.make_room();
                    grave.map(|g| g.previous)
                }
            },
        };
        let conn = self.flows.entry(key).or_insert_with(|| {
            // A connection is named by its first packet's number: unique (a packet starts at
            // most one connection), the same however the work is split, and a frame number to
            // look up in Wireshark.
            let id = at.packet.unwrap_or_default();
            self.stats.connections += 1;
            let mut fresh = Connection::new(id, seg, src, dst, at, &self.config);
            let mut room = self.spare.pop();
            if let Some(old) = &mut room {
                fresh.take_room(old);
            }
            let mut conn = boxed_in(fresh, room);
            conn.previous = previous;
            if let Some(at) = inherited_timer {
                conn.timer_ns = at;
            }
            conn
        });
        feed(conn, seg, src, at, checksum_ok);
        rearm(&mut self.timers, key, conn, &self.config, self.now_ns);
    }

    /// Ends an incarnation because a new one begins. One still open (its peer restarted and
    /// reconnected) is kept aside for the linger time, because the packets that settle its fate
    /// (a challenge ACK, the RST answering it) come after the new SYN.
    fn supersede(&mut self, key: FlowKey, old: Box<Connection>) -> Previous {
        let link = previous_of(&old);
        if old.is_over() {
            self.finalize(old, Finish::NewIncarnation);
        } else if let Some(older) = self.superseded.insert(key, old) {
            self.finalize(older, Finish::NewIncarnation);
        }
        link
    }

    /// Feeds a segment to the abandoned incarnation of its 4-tuple when its sequence numbers
    /// fit that one better than the new one; returns whether it did.
    fn feed_superseded(&mut self, key: FlowKey, seg: &Segment<'_>, src: Addr, at: At) -> bool {
        // The new incarnation is looked up only when there is an old one (seldom).
        let Some(old) = self.superseded.get_mut(&key) else {
            return false;
        };
        let Some(new) = self.flows.get(&key) else {
            return false;
        };
        if is_bare_syn(seg) || fit(old, seg, src) <= fit(new, seg, src) {
            return false;
        }
        let sender = old.side_of(src);
        old.on_segment(seg, sender, at);
        true
    }

    /// A packet of a connection whose record is out: counted, and a RST into TIME-WAIT kept.
    fn absorb_late(&mut self, grave: &Tombstone, seg: &Segment<'_>, src: Addr, at: At) {
        self.stats.late_packets += 1;
        let Some((tw_side, _)) = grave.previous.time_wait else {
            return;
        };
        let sender = if src == grave.previous.old_client {
            Side::Client
        } else {
            Side::Server
        };
        if seg.flags.rst() && sender != tw_side && self.late_resets.len() < MAX_LATE_RESETS {
            self.late_resets.push(LateReset {
                connection: grave.previous.id,
                sender,
                at,
            });
        }
    }

    /// RSTs into TIME-WAIT that came after their connection's record was emitted.
    pub fn late_resets(&self) -> &[LateReset] {
        &self.late_resets
    }

    /// Takes back the box of a connection whose record is made, for a new connection: a
    /// connection is too large for the allocator's fast path, and a capture of short
    /// connections makes one every few microseconds.
    pub fn recycle(&mut self, conn: Box<Connection>) {
        if self.spare.len() < MAX_SPARE {
            self.spare.push(conn);
        }
    }

    /// Takes the connections finished so far, in the order they finished.
    pub fn take_finished(&mut self) -> std::vec::Drain<'_, Box<Connection>> {
        self.finished.drain(..)
    }

    /// The capture is over: finalises everything still held, in id order.
    pub fn finish_all(&mut self) {
        let now = self.now_ns;
        let config = self.config;
        let mut rest: Vec<(Box<Connection>, Finish)> = self
            .flows
            .drain()
            .map(|(_, mut conn)| {
                let finish = if conn.time_wait_passed(&config, now) {
                    Finish::TimeWaitExpired
                } else {
                    Finish::CaptureEnd
                };
                conn.expire_time_wait(&config, now);
                (conn, finish)
            })
            .chain(
                self.superseded
                    .drain()
                    .map(|(_, c)| (c, Finish::NewIncarnation)),
            )
            .collect();
        rest.sort_by_key(|(c, _)| c.id);
        self.timers.clear();
        for (conn, finish) in rest {
            self.finalize(conn, finish);
        }
    }

    /// At capture time `now` (see [`SweepSchedule`]): finalises every connection whose deadline
    /// has passed, in id order, and forgets the tombstones whose TIME-WAIT is over.
    pub fn sweep(&mut self, now: i64) {
        self.advance(now);
        let now = self.now_ns;
        let config = self.config;
        for (expires, key) in self.graves.take_due(now) {
            if grave_is_current(&self.tombstones, expires, &key) {
                self.tombstones.remove(&key);
            }
        }
        let linger = config.closed_linger_ns;
        let mut settled: Vec<FlowKey> = self
            .superseded
            .iter()
            .filter(|(_, c)| c.last.ns.saturating_add(linger) <= now)
            .map(|(k, _)| *k)
            .collect();
        settled.sort_unstable_by_key(|k| self.superseded.get(k).map(|c| c.id));
        for key in settled {
            if let Some(old) = self.superseded.remove(&key) {
                self.finalize(old, Finish::NewIncarnation);
            }
        }
        let mut due: Vec<(u64, FlowKey)> = Vec::new();
        // Each entry is looked at on its own, and a connection put back is put after `now`.
        for (at, key) in self.timers.take_due(now) {
            let Some(conn) = timer_owner(&mut self.flows, at, &key) else {
                continue;
            };
            if conn.deadline(&config) <= now {
                due.push((conn.id, key));
            } else {
                arm(&mut self.timers, key, conn, &config, now);
            }
        }
        // A connection is due once: should an evicted connection's stale entry share the time
        // of its successor's, the second is skipped below, the key being gone.
        due.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in due {
            let Some(mut conn) = self.flows.remove(&key) else {
                continue;
            };
            let timed_wait = conn.time_wait_passed(&config, now);
            conn.expire_time_wait(&config, now);
            let finish = if timed_wait {
                Finish::TimeWaitExpired
            } else if conn.time_wait_ends(&config).is_some() {
                Finish::TimeWait
            } else if conn.is_over() {
                Finish::Closed
            } else {
                Finish::IdleTimeout
            };
            if conn.is_over() {
                self.bury(key, &conn, now);
            }
            self.finalize(conn, finish);
        }
        self.forget_stale_timers();
    }

    /// Drops the queue entries of what is no longer held once they outnumber what is (a flood
    /// evicts far more than a sweep finishes, and most tombstones are taken by a reuse before
    /// they expire), so each queue stays within about twice its map.
    fn forget_stale_timers(&mut self) {
        if self.timers.len() > 2 * self.flows.len() + 1024 {
            let flows = &mut self.flows;
            self.timers
                .retain(|at, key| timer_owner(flows, at, key).is_some());
        }
        if self.graves.len() > 2 * self.tombstones.len() + 1024 {
            let tombstones = &self.tombstones;
            self.graves
                .retain(|expires, key| grave_is_current(tombstones, expires, key));
        }
    }

    /// Leaves a tombstone for a closed connection whose active closer is still in TIME-WAIT,
    /// until that ends. (A connection closed by RST has had its linger time for stragglers
    /// already: what comes after is new.)
    fn bury(&mut self, key: FlowKey, conn: &Connection, now: i64) {
        let Some((_, expires_ns)) = conn.time_wait_ends(&self.config) else {
            return;
        };
        if expires_ns > now {
            self.tombstones.insert(
                key,
                Tombstone {
                    previous: previous_of(conn),
                    expires_ns,
                },
            );
            self.graves.push(expires_ns, key);
        }
    }

    /// At the cap, finalises the longest-idle 1/32 of the table (at least one connection), so
    /// the cost of eviction spreads over many new connections.
    fn make_room(&mut self) {
        if self.flows.len() < self.config.max_connections.max(1) {
            return;
        }
        let mut idle: Vec<(i64, u64, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, c)| (c.last.ns, c.id, *k))
            .collect();
        let count = (idle.len() / 32).max(1);
        if count < idle.len() {
            idle.select_nth_unstable_by_key(count, |(last, id, _)| (*last, *id));
            idle.truncate(count);
        }
        idle.sort_unstable_by_key(|(_, id, _)| *id);
        for (_, _, key) in idle {
            if let Some(conn) = self.flows.remove(&key) {
                self.stats.evicted += 1;
                self.finalize(conn, Finish::Evicted);
            }
        }
        self.forget_stale_timers();
    }

    fn finalize(&mut self, mut conn: Box<Connection>, finish: Finish) {
        conn.deliver_all_pending();
        conn.finish = Some(finish);
        conn.finished_at_ns = self.now_ns.max(conn.last.ns);
        conn.time_wait_ends_ns = conn
            .ends
            .iter()
            .filter_map(|e| e.time_wait_from)
            .map(|from| from.ns.saturating_add(self.config.time_wait_ns()))
            .max();
        for end in &mut conn.ends {
            if end.window_closed() {
                end.notes_mut()
                    .zero_window
                    .close_at_end(conn.finished_at_ns);
            }
        }
        self.finished.push(conn);
    }
}

/// How well a segment's sequence and acknowledgment numbers fit what a connection has seen of
/// its sender and receiver: +1 for each that falls near the expected point, −1 for each that
/// does not, 0 where nothing is known yet.
fn fit(conn: &Connection, seg: &Segment<'_>, src: Addr) -> i32 {
    const NEAR: u32 = 1 << 20;
    let near = |value: u32, expected: Option<super::SeqNumber>| match expected {
        Some(e) => {
            if super::SeqNumber::new(value).within(e.minus(NEAR), 2 * NEAR) {
                1
            } else {
                -1
            }
        }
        None => 0,
    };
    let sender = conn.side_of(src);
    let seq = near(seg.seq, conn.end(sender).next_seq);
    let ack = if seg.flags.ack() {
        near(seg.ack, conn.end(sender.peer()).next_seq)
    } else {
        0
    };
    seq + ack
}

fn is_bare_syn(seg: &Segment<'_>) -> bool {
    let f = seg.flags;
    f.syn() && !f.ack() && !f.rst()
}

/// Puts a connection in the timer queue at its deadline, or one linger time from `now` if
/// that is sooner: a close brings the deadline to a linger time after the closing segment,
/// which comes at `now` or later, so an entry this early never needs a second one for the
/// close (an open connection is looked at again each linger time instead).
fn arm(timers: &mut Timers, key: FlowKey, conn: &mut Connection, config: &Config, now: i64) {
    let soonest_close = now.saturating_add(config.closed_linger_ns.max(1));
    let at = conn.deadline(config).min(soonest_close);
    conn.timer_ns = at;
    timers.push(at, key);
}

/// After a segment: a new connection gets its entry; one whose deadline came before its entry
/// (a timestamp from the past) gets an earlier one.
fn rearm(timers: &mut Timers, key: FlowKey, conn: &mut Connection, config: &Config, now: i64) {
    if conn.deadline(config) < conn.timer_ns {
        arm(timers, key, conn, config, now);
    }
}

/// The connection a timer entry is for, if the entry is still its current one (the connection
/// may have finished otherwise, or an earlier entry have replaced this one).
fn timer_owner<'a>(
    flows: &'a mut FastMap<FlowKey, Box<Connection>>,
    at: i64,
    key: &FlowKey,
) -> Option<&'a mut Connection> {
    flows
        .get_mut(key)
        .filter(|c| c.timer_ns == at)
        .map(|c| &mut **c)
}

/// Whether a grave entry is for the tombstone the 4-tuple has now (not one a reuse took).
fn grave_is_current(tombstones: &FastMap<FlowKey, Tombstone>, expires: i64, key: &FlowKey) -> bool {
    tombstones.get(key).is_some_and(|t| t.expires_ns == expires)
}

/// Gives a segment to its connection: the whole of it, or (with a bad checksum) only to the
/// Zeek view.
fn feed(conn: &mut Connection, seg: &Segment<'_>, src: Addr, at: At, checksum_ok: bool) {
    if checksum_ok {
        let sender = conn.side_of(src);
        conn.on_segment(seg, sender, at);
    } else {
        conn.on_corrupt_segment(seg, at);
    }
}

/// A bare SYN with a new ISN begins a new incarnation, unless it is a retransmission (same ISN),
/// the other half of a simultaneous open, or a SYN captured after the SYN-ACK that answers it.
fn starts_new_incarnation(conn: &Connection, seg: &Segment<'_>, src: Addr) -> bool {
    if !is_bare_syn(seg) {
        return false;
    }
    let sender = conn.side_of(src);
    let seq = super::SeqNumber::new(seg.seq);
    if conn.end(sender).isn() == Some(seq) {
        return false;
    }
    let crossing_open = sender == Side::Server
        && conn.end(Side::Server).syn.is_none()
        && conn.state(Side::Client) == State::SynSent;
    let answered_already = sender == Side::Client
        && conn.roles_from == RolesFrom::SynAck
        && conn.end(Side::Client).syn.is_none()
        && conn.end(Side::Server).highest_ack == Some(seq.plus(1));
    !(crossing_open || answered_already)
}

/// What a new incarnation keeps of the one it replaces.
fn previous_of(old: &Connection) -> Previous {
    let time_wait = [Side::Client, Side::Server]
        .into_iter()
        .find_map(|side| old.end(side).time_wait_from.map(|at| (side, at)));
    Previous {
        id: old.id,
        last: old.last,
        time_wait,
        old_client: old.client,
        next_seq: [
            old.end(Side::Client).next_seq,
            old.end(Side::Server).next_seq,
        ],
        last_tsval: [
            old.end(Side::Client).last_tsval,
            old.end(Side::Server).last_tsval,
        ],
        still_open: (!old.is_over()).then(|| [old.state(Side::Client), old.state(Side::Server)]),
    }
}

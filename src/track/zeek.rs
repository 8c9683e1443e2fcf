//! Zeek's view of a connection, kept beside tcplife's own: the coarse per-endpoint states Zeek's
//! TCP analyzer keeps (INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET),
//! its `history` letters, its sequence-space byte counts and content gaps, its packet counts, and
//! from them the `conn_state` and the rest of a conn.log row.
//!
//! This is an observer: it sees every segment the tracker sees (and, with checksum verification
//! on, the corrupt ones the tracker does not), and never feeds anything back into tcplife's RFC
//! 9293 state machines. Its originator is Zeek's (the first packet's sender, unless Zeek's
//! direction heuristics flip it), which need not be tcplife's client.
//!
//! The rules are Zeek's, from `TCPSessionAdapter.cc` (state machine, history, timers),
//! `TCP_Endpoint.cc` (sizes), `TCP_Reassembler.cc` (content gaps), `TCP.cc` (which packets start
//! connections, which get flipped), `Session.cc` (the logarithmic letters) and
//! `scripts/base/protocols/conn/main.zeek` (`conn_state`). docs/zeek.md says what differs.
//!
//! A tcplife record is normally one Zeek row. Zeek also ends rows on its own timers (an attempt
//! unanswered for 5 s, 5 s after a close, an idle connection) and starts a new row when a SYN
//! reuses a closed 4-tuple; with [`ZeekConfig::timers`] the observer does the same inside the
//! record, which then carries several rows.

use super::boxed_in;
use super::connection::Addr;
use super::history::History;
use super::state::At;
use crate::decode::Segment;
use std::net::IpAddr;

const SECOND: i64 = 1_000_000_000;
/// `tcp_attempt_delay`: an unanswered SYN is given up this long after it was sent.
const ATTEMPT_DELAY: i64 = 5 * SECOND;
/// `tcp_SYN_timeout`: the first expiry check, counted from the connection's first packet.
const SYN_TIMEOUT: i64 = 5 * SECOND;
/// `tcp_session_timer`: how often the expiry check runs again.
const SESSION_TIMER: i64 = 6 * SECOND;
/// `tcp_connection_linger`: idle time after which a half-closed connection may be removed.
const CONNECTION_LINGER: i64 = 5 * SECOND;
/// `tcp_close_delay`: a connection whose close is complete is removed this long after its last
/// packet.
const CLOSE_DELAY: i64 = 5 * SECOND;
/// `tcp_inactivity_timeout`: once either side left the handshake states.
const TCP_INACTIVITY: i64 = 300 * SECOND;
/// `udp_inactivity_timeout`: what a TCP connection starts with.
const INITIAL_INACTIVITY: i64 = 60 * SECOND;
/// Sequence jumps larger than this in a SYN or RST are not believed.
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// Zeek's `likely_server_ports`: when a connection's first packet is not a bare SYN, a packet
/// from one of these ports is taken to come from the server. tcplife uses the same list to pick
/// the server of a connection whose handshake it did not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPorts(&'static [u16]);

/// The TCP ports in Zeek's `likely_server_ports` when all of its base scripts are loaded (a
/// plain `zeek -r`): the union of the `ports` every `base/protocols/*` script adds.
const ZEEK_FULL_MODE: [u16; 47] = [
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 502, 563, 585, 587, 614, 631,
    636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222, 5223, 5269,
    5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
];

impl ServerPorts {
    /// Zeek's list in full (non-bare) mode.
    pub const ZEEK: ServerPorts = ServerPorts(&ZEEK_FULL_MODE);
    /// No port is a likely server port (Zeek in bare mode with no protocol scripts).
    pub const NONE: ServerPorts = ServerPorts(&[]);

    pub fn contains(self, port: u16) -> bool {
        self.0.binary_search(&port).is_ok()
    }

    pub fn ports(self) -> &'static [u16] {
        self.0
    }

    /// Parses a comma-separated list of ports, ranges (`6666-6669`) and the words `zeek` (Zeek's
    /// full-mode list) and `none`. The list lives as long as the process: parse it once.
    pub fn parse(text: &str) -> Result<ServerPorts, String> {
        let mut ports: Vec<u16> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "zeek" => ports.extend_from_slice(&ZEEK_FULL_MODE),
                "none" => {}
                _ => {
                    let (lo, hi) = item.split_once('-').unwrap_or((item, item));
                    let parse = |s: &str| {
                        s.trim().parse::<u16>().map_err(|_| {
                            format!(
                                "`{item}` is not a port, a range like 6666-6669, `zeek` or `none`"
                            )
                        })
                    };
                    let (lo, hi) = (parse(lo)?, parse(hi)?);
                    if lo > hi {
                        return Err(format!("`{item}`: the range is backwards"));
                    }
                    ports.extend(lo..=hi);
                }
            }
        }
        ports.sort_unstable();
        ports.dedup();
        if ports.as_slice() == ZEEK_FULL_MODE.as_slice() {
            return Ok(ServerPorts::ZEEK);
        }
        if ports.is_empty() {
            return Ok(ServerPorts::NONE);
        }
        Ok(ServerPorts(Box::leak(ports.into_boxed_slice())))
    }
}

impl Default for ServerPorts {
    fn default() -> Self {
        ServerPorts::ZEEK
    }
}

/// What the Zeek observer needs to know beyond the packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZeekConfig {
    pub server_ports: ServerPorts,
    /// Split rows where Zeek's own timers and its connection-reuse rule would.
    pub timers: bool,
}

/// Zeek's coarse state of one endpoint, from what the endpoint sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

impl EndpointState {
    fn is_handshake(self) -> bool {
        matches!(
            self,
            EndpointState::Inactive | EndpointState::SynSent | EndpointState::SynAckSent
        )
    }

    /// INACTIVE or PARTIAL: what `conn_state` counts as not having taken part.
    fn is_inactive(self) -> bool {
        matches!(self, EndpointState::Inactive | EndpointState::Partial)
    }
}

/// One row of Zeek's conn.log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeekRow {
    /// The row's first packet.
    pub start_ns: i64,
    /// Where Zeek's duration ends: the last packet before both sides had closed.
    pub last_ns: i64,
    pub orig: Addr,
    pub resp: Addr,
    pub conn_state: &'static str,
    pub history: History,
    /// Sequence-space sizes (they include data acknowledged but never captured).
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    /// Octets of acknowledged data never seen, in an established connection.
    pub missed_bytes: u64,
    pub orig_pkts: u64,
    pub orig_ip_bytes: u64,
    pub resp_pkts: u64,
    pub resp_ip_bytes: u64,
}

impl ZeekRow {
    pub fn duration_ns(&self) -> i64 {
        self.last_ns.saturating_sub(self.start_ns)
    }
}

/// Zeek's view of one tcplife connection: the rows Zeek's timers closed, and the current one.
#[derive(Debug, Clone)]
pub struct ZeekView {
    config: ZeekConfig,
    done: Vec<ZeekRow>,
    /// Boxed: most of a connection's size otherwise, and allocated once per row.
    current: Option<Box<Session>>,
    /// A finished connection's box, for the first row (see [`ZeekView::take_room`]).
    spare: Option<Box<Session>>,
}

impl ZeekView {
    pub fn new(config: ZeekConfig) -> Self {
        ZeekView {
            config,
            done: Vec::new(),
            current: None,
            spare: None,
        }
    }

    /// The current row's history so far.
    pub fn as_str(&self) -> &str {
        self.current.as_ref().map_or("", |s| s.history.as_str())
    }

    /// Keeps `old`'s box (its connection is finished) for this view's first row.
    pub(super) fn take_room(&mut self, old: &mut ZeekView) {
        if self.spare.is_none() {
            self.spare = old.current.take().or_else(|| old.spare.take());
        }
    }

    /// One segment with a good (or unchecked) checksum.
    pub fn on_segment(&mut self, seg: &Segment<'_>, at: At) {
        self.on_packet(seg, at, true);
    }

    /// One segment whose TCP checksum is wrong: Zeek finds (or starts) its connection, writes
    /// `C`/`c`, and does nothing else with it.
    pub fn on_corrupt(&mut self, seg: &Segment<'_>, at: At) {
        self.on_packet(seg, at, false);
    }

    /// Every row: those Zeek's timers closed, then the current one. Made as they are read: a
    /// record takes them once, and a list of them would be an allocation a connection.
    pub fn rows(&self) -> impl Iterator<Item = ZeekRow> + '_ {
        let current = self.current.as_ref().map(|s| s.row());
        self.done.iter().cloned().chain(current)
    }

    fn on_packet(&mut self, seg: &Segment<'_>, at: At, checksum_ok: bool) {
        let t = at.ns;
        if self.config.timers {
            if let Some(session) = &mut self.current {
                let removed = session.run_timers(t) || session.is_reuse(seg);
                if removed {
                    if let Some(old) = self.current.take() {
                        self.done.push(old.row());
                    }
                }
            }
        }
        let ports = self.config.server_ports;
        let session = self
            .current
            .get_or_insert_with(|| boxed_in(Session::new(seg, t, ports), self.spare.take()));
        session.on_packet(seg, t, checksum_ok);
    }
}

// History masks: one bit per letter kind per direction (the responder's shifted by 16).
const HIST_SYN: u32 = 0x1;
const HIST_FIN: u32 = 0x2;
const HIST_RST: u32 = 0x4;
const HIST_FIN_RST: u32 = 0x8;
const HIST_DATA: u32 = 0x10;
const HIST_ACK: u32 = 0x20;
const HIST_MULTI_FLAG: u32 = 0x40;

const ORIG: usize = 0;
const RESP: usize = 1;

/// A letter written at the 1st, 10th, 100th ... occurrence (`Session::ScaledHistoryEntry`).
#[derive(Debug, Clone, Copy)]
struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl Scaled {
    fn hit(&mut self) -> bool {
        self.count = self.count.wrapping_add(1);
        if self.count != self.threshold {
            return false;
        }
        match self.threshold.checked_mul(10) {
            Some(next) => self.threshold = next,
            None => self.count = 0,
        }
        true
    }
}

/// Most blocks held above holes per direction; later ones are treated as unseen.
const MAX_BLOCKS: usize = 64;

/// What Zeek's reassembler needs for content gaps: how far the stream was delivered in order,
/// and the blocks seen above a hole. Relative sequence numbers (1 is the first data octet).
#[derive(Debug, Clone)]
struct Reassembly {
    delivered: u64,
    trimmed: u64,
    /// Undelivered blocks `[start, end)`, sorted and disjoint, all above `delivered`.
    blocks: Vec<(u64, u64)>,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly {
            delivered: 1,
            trimmed: 1,
            blocks: Vec::new(),
        }
    }
}

impl Reassembly {
    /// New data `[start, end)`.
    fn add(&mut self, start: u64, end: u64) {
        if end <= self.trimmed {
            return;
        }
        let start = start.max(self.trimmed);
        if start <= self.delivered {
            if end > self.delivered {
                self.delivered = end;
                self.absorb();
            }
            return;
        }
        // Above a hole: keep it, merged in place with the blocks it touches.
        let first = self.blocks.partition_point(|&(_, e)| e < start);
        let past = self.blocks.partition_point(|&(s, _)| s <= end);
        if first < past {
            let (mut lo, mut hi) = (start, end);
            if let (Some(&(s, _)), Some(&(_, e))) =
                (self.blocks.get(first), self.blocks.get(past - 1))
            {
                lo = lo.min(s);
                hi = hi.max(e);
            }
            self.blocks.drain(first + 1..past);
            if let Some(b) = self.blocks.get_mut(first) {
                *b = (lo, hi);
            }
        } else if self.blocks.len() < MAX_BLOCKS {
            self.blocks.insert(first, (start, end));
        }
    }

    /// Delivers blocks that now continue the in-order stream.
    fn absorb(&mut self) {
        while let Some(&(s, e)) = self.blocks.first() {
            if s > self.delivered {
                break;
            }
            self.delivered = self.delivered.max(e);
            self.blocks.remove(0);
        }
    }

    /// The peer acknowledged everything below `up_to`: returns the holes it skipped over, as
    /// (start, length) pairs, in order (at most a few per acknowledgment).
    fn acknowledged(&mut self, up_to: u64, partial_start: bool, gaps: &mut GapList) {
        if up_to <= self.trimmed {
            return;
        }
        if up_to > self.delivered && !(up_to <= 2 && partial_start) {
            while let Some(&(s, e)) = self.blocks.first() {
                if s >= up_to {
                    break;
                }
                gaps.push(self.delivered, s - self.delivered);
                self.delivered = e;
                self.blocks.remove(0);
                self.absorb();
            }
            if up_to > self.delivered {
                gaps.push(self.delivered, up_to - self.delivered);
                self.delivered = up_to;
            }
        }
        self.trimmed = up_to;
        self.blocks.retain(|&(_, e)| e > up_to);
    }
}

/// Gaps found by one acknowledgment, without allocating.
#[derive(Debug, Default)]
struct GapList {
    gaps: [(u64, u64); 8],
    len: usize,
}

impl GapList {
    fn push(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Some(slot) = self.gaps.get_mut(self.len) {
            *slot = (start, len);
            self.len += 1;
        } else if let Some(last) = self.gaps.last_mut() {
            last.1 = last.1.saturating_add(len);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(u64, u64)> {
        self.gaps.iter().take(self.len)
    }
}

/// One endpoint as Zeek's `TCP_Endpoint` sees it.
#[derive(Debug, Clone)]
struct Endpoint {
    state: EndpointState,
    prev_state: EndpointState,
    start_seq: u32,
    last_seq: u32,
    ack_seq: u32,
    seq_wraps: u32,
    ack_wraps: u32,
    hist_last_syn: u64,
    hist_last_fin: u64,
    hist_last_rst: u64,
    fin_count: u32,
    fin_seq: u64,
    did_close: bool,
    checksum_errors: Scaled,
    retransmissions: Scaled,
    zero_windows: Scaled,
    gaps: Scaled,
    packets: u64,
    ip_bytes: u64,
    reassembly: Reassembly,
}

impl Endpoint {
    fn new() -> Self {
        Endpoint {
            state: EndpointState::Inactive,
            prev_state: EndpointState::Inactive,
            start_seq: 0,
            last_seq: 0,
            ack_seq: 0,
            seq_wraps: 0,
            ack_wraps: 0,
            hist_last_syn: 0,
            hist_last_fin: 0,
            hist_last_rst: 0,
            fin_count: 0,
            fin_seq: 0,
            did_close: false,
            checksum_errors: Scaled::default(),
            retransmissions: Scaled::default(),
            zero_windows: Scaled::default(),
            gaps: Scaled::default(),
            packets: 0,
            ip_bytes: 0,
            reassembly: Reassembly::default(),
        }
    }

    fn init_seqs(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn update_last_seq(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps = self.seq_wraps.wrapping_add(1);
        }
        self.last_seq = seq;
    }

    fn update_ack_seq(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps = self.ack_wraps.wrapping_add(1);
        }
        self.ack_seq = seq;
    }

    fn full(seq: u32, wraps: u32) -> u64 {
        (u64::from(wraps) << 32) | u64::from(seq)
    }

    fn relative(&self, seq: u32, wraps: u32) -> u64 {
        Self::full(seq, wraps).wrapping_sub(u64::from(self.start_seq))
    }

    /// `get_relative_seq`: `seq` relative to the start, judging wraps against `last`; the flag
    /// is set when it lies before the start.
    fn relative_seq(&self, seq: u32, last: u32, wraps: u32) -> (u64, bool) {
        let delta = seq_delta(seq, last);
        let mut wraps = wraps;
        if delta < 0 {
            if wraps > 0 && seq > last {
                wraps -= 1;
            }
        } else if delta > 0 && seq < last {
            wraps = wraps.wrapping_add(1);
        }
        if wraps == 0 {
            let d = seq_delta(seq, self.start_seq);
            return (i64::from(d) as u64, d < 0);
        }
        (self.relative(seq, wraps), false)
    }

    fn no_data_acked(&self) -> bool {
        self.ack_wraps == 0
            && (self.ack_seq == self.start_seq || self.ack_seq == self.start_seq.wrapping_add(1))
    }

    /// `TCP_Endpoint::Size`: the sequence space used, less the SYN and FIN octets.
    fn size(&self, peer_state: EndpointState) -> u64 {
        if self.prev_state == EndpointState::SynSent
            && self.state == EndpointState::Reset
            && peer_state == EndpointState::Inactive
            && !self.no_data_acked()
        {
            return 0;
        }
        let last = Self::full(self.last_seq, self.seq_wraps);
        let ack = Self::full(self.ack_seq, self.ack_wraps);
        let mut size = last.max(ack).wrapping_sub(u64::from(self.start_seq));
        // Not the SYN octet, nor the FIN's.
        size = size.saturating_sub(1);
        if self.fin_count > 0 {
            size = size.saturating_sub(1);
        }
        size
    }

    /// Established, or closed cleanly from established: where Zeek believes a content gap.
    fn is_clean(&self) -> bool {
        self.state == EndpointState::Established
            || (self.state == EndpointState::Closed
                && self.prev_state == EndpointState::Established)
    }
}

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One Zeek connection (one conn.log row) in progress.
#[derive(Debug, Clone)]
struct Session {
    orig: Addr,
    resp: Addr,
    start_ns: i64,
    last_ns: i64,
    history: History,
    hist_seen: u32,
    /// `[originator, responder]`.
    ends: [Endpoint; 2],
    is_partial: bool,
    /// Bit 0: the originator's first packet has been processed; bit 1: the responder's.
    first_packet_seen: u8,
    is_active: bool,
    missed_bytes: u64,
    /// Packets looked up to this connection so far, corrupt ones included.
    packets_seen: u64,
    /// The first packet was a SYN-ACK and did not make Zeek flip the roles.
    unflipped_syn_ack_first: bool,
    attempt_at: Option<i64>,
    /// Up to three expiry checks can be pending (one from the start, one per closing side).
    expire_at: [Option<i64>; 3],
    delete_at: Option<i64>,
    inactivity: i64,
    inactivity_at: Option<i64>,
}

impl Session {
    /// A connection started by `seg` (`IPBasedAnalyzer::NewConn`): the sender is the originator
    /// unless the first packet is not a bare SYN and comes from a likely server port.
    fn new(seg: &Segment<'_>, t: i64, ports: ServerPorts) -> Self {
        let (src, dst) = Addr::ends_of(seg);
        let f = seg.flags;
        // Only a connection that does not start with a bare SYN is a candidate; when both
        // ports are likely servers', a SYN-ACK is never flipped (stealth scans send those).
        let candidate = (!f.syn() || f.ack()) && ports.contains(src.port);
        let flip = candidate
            && (!ports.contains(dst.port) || (!f.syn() && src.port < dst.port))
            && !is_broadcast(dst.ip);
        let (orig, resp) = if flip { (dst, src) } else { (src, dst) };
        Session {
            orig,
            resp,
            start_ns: t,
            last_ns: t,
            history: if flip { "^".into() } else { History::default() },
            hist_seen: 0,
            ends: [Endpoint::new(), Endpoint::new()],
            is_partial: false,
            first_packet_seen: 0,
            is_active: true,
            missed_bytes: 0,
            packets_seen: 0,
            unflipped_syn_ack_first: f.syn() && f.ack() && !flip,
            attempt_at: None,
            expire_at: [Some(t.saturating_add(SYN_TIMEOUT)), None, None],
            delete_at: None,
            inactivity: INITIAL_INACTIVITY,
            inactivity_at: Some(t.saturating_add(INITIAL_INACTIVITY)),
        }
    }

    fn end(&self, i: usize) -> &Endpoint {
        let [o, r] = &self.ends;
        if i == ORIG { o } else { r }
    }

    fn end_mut(&mut self, i: usize) -> &mut Endpoint {
        let [o, r] = &mut self.ends;
        if i == ORIG { o } else { r }
    }

    fn state(&self, i: usize) -> EndpointState {
        self.end(i).state
    }

    fn row(&self) -> ZeekRow {
        let o = self.end(ORIG);
        let r = self.end(RESP);
        ZeekRow {
            start_ns: self.start_ns,
            last_ns: self.last_ns,
            orig: self.orig,
            resp: self.resp,
            conn_state: self.conn_state(),
            history: self.history.clone(),
            orig_bytes: o.size(r.state),
            resp_bytes: r.size(o.state),
            missed_bytes: self.missed_bytes,
            orig_pkts: o.packets,
            orig_ip_bytes: o.ip_bytes,
            resp_pkts: r.packets,
            resp_ip_bytes: r.ip_bytes,
        }
    }

    /// `conn_state` from scripts/base/protocols/conn/main.zeek.
    fn conn_state(&self) -> &'static str {
        use EndpointState::*;
        let (o, r) = (self.end(ORIG), self.end(RESP));
        let (os, rs) = (o.state, r.state);
        if rs == Reset {
            let both_empty = o.size(rs) == 0 && r.size(os) == 0;
            if matches!(os, SynSent | SynAckSent) || (os == Reset && both_empty) {
                "REJ"
            } else if os.is_inactive() {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if rs.is_inactive() {
                if syn_then_rst(&self.history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if rs.is_inactive() { "SH" } else { "S2" }
        } else if rs == Closed {
            if os.is_inactive() { "SHR" } else { "S3" }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }

    // ---- timers and reuse (only with --zeek-timers) ----

    /// Runs every timer due by `t`, as Zeek does before processing a packet stamped `t`.
    /// Returns true when the connection was removed.
    fn run_timers(&mut self, t: i64) -> bool {
        loop {
            let mut due: Option<(i64, Timer)> = None;
            let mut consider = |at: Option<i64>, which: Timer| {
                if let Some(at) = at {
                    if at <= t && due.is_none_or(|(d, _)| at < d) {
                        due = Some((at, which));
                    }
                }
            };
            consider(self.attempt_at, Timer::Attempt);
            for (i, at) in self.expire_at.iter().enumerate() {
                consider(*at, Timer::Expire(i));
            }
            consider(self.delete_at, Timer::Delete);
            consider(self.inactivity_at, Timer::Inactivity);
            let Some((_, timer)) = due else {
                return false;
            };
            if self.fire(timer, t) {
                return true;
            }
        }
    }

    /// One timer fires at network time `t`; true when it removes the connection.
    fn fire(&mut self, timer: Timer, t: i64) -> bool {
        use EndpointState::*;
        match timer {
            Timer::Attempt => {
                self.attempt_at = None;
                self.is_active
                    && matches!(self.state(ORIG), SynSent | SynAckSent)
                    && self.state(RESP) == Inactive
            }
            Timer::Expire(i) => {
                if let Some(slot) = self.expire_at.get_mut(i) {
                    *slot = None;
                }
                if !self.is_active {
                    return false;
                }
                let (o, r) = (self.end(ORIG), self.end(RESP));
                if self.last_ns.saturating_add(CONNECTION_LINGER) < t {
                    if (o.did_close || r.did_close)
                        && ((o.did_close && r.did_close)
                            || o.state == Reset
                            || r.state == Reset
                            || o.state == Inactive
                            || r.state == Inactive)
                    {
                        return true;
                    }
                    if o.state == Inactive && r.state == Inactive {
                        return true;
                    }
                }
                self.add_expire(t.saturating_add(SESSION_TIMER));
                false
            }
            Timer::Delete => true,
            Timer::Inactivity => {
                let ends = self.last_ns.saturating_add(self.inactivity);
                if ends <= t {
                    return true;
                }
                self.inactivity_at = Some(ends);
                false
            }
        }
    }

    fn add_expire(&mut self, at: i64) {
        if let Some(slot) = self.expire_at.iter_mut().find(|s| s.is_none()) {
            *slot = Some(at);
        } else if let Some(slot) = self.expire_at.iter_mut().max() {
            // All three pending (not seen in practice): keep the earliest.
            *slot = Some(at.min(slot.unwrap_or(at)));
        }
    }

    /// `Session::SetInactivityTimeout`.
    fn set_inactivity(&mut self, timeout: i64) {
        if timeout == self.inactivity {
            return;
        }
        self.inactivity = timeout;
        self.inactivity_at = Some(self.last_ns.saturating_add(timeout));
    }

    /// `TCPSessionAdapter::IsReuse`: a SYN that starts a new connection on this 4-tuple.
    fn is_reuse(&self, seg: &Segment<'_>) -> bool {
        let f = seg.flags;
        if !f.syn() {
            return false;
        }
        let conn_orig = if f.ack() {
            if self.state(ORIG) != EndpointState::Inactive {
                return false;
            }
            RESP
        } else {
            ORIG
        };
        let closed = self.end(ORIG).did_close || self.end(RESP).did_close;
        if closed {
            return true;
        }
        if seg.seq == self.end(conn_orig).start_seq {
            return false;
        }
        // A SYN answering a SYN-ACK seen first (the two captured in reverse order).
        !(!f.ack()
            && self.state(conn_orig) == EndpointState::SynAckSent
            && self.state(RESP) == EndpointState::Inactive
            && seg.seq == self.end(RESP).start_seq)
    }

    // ---- packets ----

    fn on_packet(&mut self, seg: &Segment<'_>, t: i64, checksum_ok: bool) {
        let seen_before = self.packets_seen;
        self.packets_seen += 1;
        let mut is_orig = self.is_from_orig(seg);
        if !checksum_ok {
            let i = if is_orig { ORIG } else { RESP };
            let letter = if is_orig { b'C' } else { b'c' };
            if self.end_mut(i).checksum_errors.hit() {
                self.history.push(letter);
            }
            return;
        }
        // Zeek flips a connection that began with a SYN-ACK once the next packet shows an
        // acknowledgment or data: a stealth scan would not produce one.
        let f = seg.flags;
        if seen_before == 1
            && self.unflipped_syn_ack_first
            && self.state(ORIG) == EndpointState::SynAckSent
            && self.state(RESP) == EndpointState::Inactive
            && !f.rst()
            && (f.ack() || seg.payload_len > 0)
        {
            self.flip_rewriting_history();
            is_orig = !is_orig;
        }
        let i = self.process(seg, if is_orig { ORIG } else { RESP }, t);
        let e = self.end_mut(i);
        e.packets += 1;
        e.ip_bytes += u64::from(seg.ip_len);
    }

    fn is_from_orig(&self, seg: &Segment<'_>) -> bool {
        seg.src == self.orig.ip && seg.src_port == self.orig.port
    }

    /// The second-packet flip: the roles swap and the history so far is rewritten as if the
    /// first packet had been flipped when it arrived.
    fn flip_rewriting_history(&mut self) {
        self.swap_roles();
        let mut swapped = History::from("^");
        for &c in self.history.as_bytes() {
            swapped.push(if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            });
        }
        self.history = swapped;
        self.hist_seen = self.hist_seen.rotate_left(16);
        self.first_packet_seen =
            ((self.first_packet_seen & 1) << 1) | ((self.first_packet_seen >> 1) & 1);
        self.is_partial = false;
    }

    fn swap_roles(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        self.ends.swap(ORIG, RESP);
    }

    /// `TCPSessionAdapter::Process` for a packet from endpoint `i`; returns the sender's index
    /// afterwards (it changes when the packet made Zeek flip the roles).
    fn process(&mut self, seg: &Segment<'_>, i: usize, t: i64) -> usize {
        let f = seg.flags;
        let len = seg.payload_len;
        let (mut i, mut p) = (i, 1 - i);
        self.set_partial_status(f.syn(), f.ack(), i == ORIG);

        let mut seg_len = len
            .wrapping_add(u32::from(f.syn()))
            .wrapping_add(u32::from(f.fin()));
        if f.rst() {
            seg_len = seg_len.wrapping_sub(len);
        }
        let base_seq = seg.seq;
        let one_past = base_seq.wrapping_add(seg_len);
        self.init_endpoint(i, f.syn(), base_seq, one_past);

        let e = self.end(i);
        let (rel_seq, underflow) = e.relative_seq(base_seq, e.last_seq, e.seq_wraps);
        self.update_history(seg, i, rel_seq, len);

        // Zero windows count unless this is a RST, the sender was reset, or its peer closed.
        if seg.window == 0
            && !f.rst()
            && self.state(p) != EndpointState::Closed
            && self.state(i) != EndpointState::Reset
            && self.end_mut(i).zero_windows.hit()
        {
            self.push_letter(i, b'W');
        }

        if !(self.end(ORIG).did_close && self.end(RESP).did_close) {
            self.last_ns = t;
        }
        if f.fin() {
            let e = self.end_mut(i);
            e.fin_count = e.fin_count.saturating_add(1);
            e.fin_seq = rel_seq.wrapping_add(u64::from(seg_len));
        }

        let mut rel_ack = 0;
        if f.ack() {
            let ack = seg.ack;
            if self.state(p) == EndpointState::Inactive {
                rel_ack = 1;
                let start = ack.wrapping_sub(1);
                self.end_mut(p).init_seqs(start, start);
            } else {
                let peer = self.end(p);
                let (r, ack_underflow) = peer.relative_seq(ack, peer.ack_seq, peer.ack_wraps);
                if !ack_underflow {
                    rel_ack = r;
                    if !f.rst() {
                        let peer = self.end_mut(p);
                        let delta = seq_delta(ack, peer.ack_seq);
                        if !(ack == 0 && delta > TOO_LARGE_SEQ_DELTA) && delta > 0 {
                            peer.update_ack_seq(ack);
                        }
                    }
                }
            }
        }

        let delta_last = self.update_last_seq(i, one_past, f.syn(), f.fin(), f.rst(), len);

        let outcome = self.update_state_machine(seg, i, p, delta_last, t);
        if outcome.flipped {
            // Zeek's endpoint pointers follow the endpoints, not the roles.
            std::mem::swap(&mut i, &mut p);
        }

        if f.ack() {
            self.ack_received(p, rel_ack);
        }
        self.first_packet_seen |= if i == ORIG { 1 } else { 2 };

        if len > 0 && !f.rst() && !underflow {
            let data_seq = if f.syn() {
                rel_seq.wrapping_add(1)
            } else {
                rel_seq
            };
            self.data_sent(i, data_seq, u64::from(len));
        }

        if outcome.close {
            self.connection_closed(i, p, outcome.gen_event);
        }
        i
    }

    fn set_partial_status(&mut self, syn: bool, ack: bool, is_orig: bool) {
        if is_orig {
            if self.first_packet_seen & 1 == 0 {
                self.is_partial = !syn || ack;
            }
        } else if self.first_packet_seen & 2 == 0 && !self.is_partial {
            self.is_partial = !syn;
        }
    }

    /// `init_endpoint`: sequence numbers from an endpoint's first packet, or a new SYN.
    fn init_endpoint(&mut self, i: usize, syn: bool, seq: u32, one_past: u32) {
        let e = self.end_mut(i);
        match e.state {
            EndpointState::Inactive => {
                if syn {
                    e.init_seqs(seq, one_past);
                } else {
                    // As if a SYN had come just before.
                    e.init_seqs(seq.wrapping_sub(1), seq);
                }
            }
            EndpointState::SynSent | EndpointState::SynAckSent => {
                if syn && seq != e.start_seq {
                    e.init_seqs(seq, one_past);
                }
            }
            EndpointState::Established | EndpointState::Partial => {
                if syn {
                    e.init_seqs(seq, one_past);
                }
            }
            EndpointState::Reset => {
                if syn && e.prev_state == EndpointState::Inactive {
                    e.init_seqs(seq, one_past);
                }
            }
            EndpointState::Closed => {}
        }
    }

    fn push_letter(&mut self, i: usize, letter: u8) {
        let c = if i == ORIG {
            letter
        } else {
            letter.to_ascii_lowercase()
        };
        self.history.push(c);
    }

    /// `Connection::CheckHistory`: writes the letter the first time; true if seen before.
    fn check_history(&mut self, i: usize, mask: u32, letter: u8) -> bool {
        let mask = if i == ORIG { mask } else { mask << 16 };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.push_letter(i, letter);
            false
        } else {
            true
        }
    }

    fn update_history(&mut self, seg: &Segment<'_>, i: usize, rel_seq: u64, len: u32) {
        let f = seg.flags;
        let bits = u8::from(f.syn()) + u8::from(f.fin()) + u8::from(f.rst());
        if bits > 1 {
            if f.fin() && f.rst() {
                self.check_history(i, HIST_FIN_RST, b'I');
            } else {
                self.check_history(i, HIST_MULTI_FLAG, b'Q');
            }
        } else if bits == 1 {
            if f.syn() {
                let letter = if f.ack() { b'H' } else { b'S' };
                if self.check_history(i, HIST_SYN, letter) && rel_seq != self.end(i).hist_last_syn {
                    self.push_letter(i, letter);
                }
                self.end_mut(i).hist_last_syn = rel_seq;
            }
            if f.fin() {
                // A FIN's sequence number is after the data it carries.
                let fin_at = rel_seq.wrapping_add(u64::from(len));
                if self.check_history(i, HIST_FIN, b'F') && fin_at != self.end(i).hist_last_fin {
                    self.push_letter(i, b'F');
                }
                self.end_mut(i).hist_last_fin = fin_at;
            }
            if f.rst() {
                if self.check_history(i, HIST_RST, b'R') && rel_seq != self.end(i).hist_last_rst {
                    self.push_letter(i, b'R');
                }
                self.end_mut(i).hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.check_history(i, HIST_DATA, b'D');
        } else if f.ack() {
            self.check_history(i, HIST_ACK, b'A');
        }
    }

    /// `update_last_seq`; counts a retransmission (`T`) for payload at or below the highest
    /// sequence number seen.
    fn update_last_seq(
        &mut self,
        i: usize,
        last: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        len: u32,
    ) -> i32 {
        let e = self.end_mut(i);
        let delta = seq_delta(last, e.last_seq);
        let outlandish = !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta);
        if (syn || rst) && outlandish {
        } else if fin && e.last_seq == e.start_seq.wrapping_add(1) {
            e.update_last_seq(last);
        } else if e.state == EndpointState::Reset {
        } else if delta > 0 {
            e.update_last_seq(last);
        } else if len > 0 && e.retransmissions.hit() {
            self.push_letter(i, b'T');
        }
        delta
    }

    fn set_state(&mut self, i: usize, to: EndpointState) {
        let from = self.state(i);
        if to == from {
            return;
        }
        if !to.is_handshake() && from.is_handshake() && self.state(1 - i).is_handshake() {
            self.set_inactivity(TCP_INACTIVITY);
        }
        let e = self.end_mut(i);
        e.prev_state = from;
        e.state = to;
    }

    fn update_state_machine(
        &mut self,
        seg: &Segment<'_>,
        i: usize,
        p: usize,
        delta_last: i32,
        t: i64,
    ) -> StateOutcome {
        use EndpointState::*;
        let f = seg.flags;
        let mut out = StateOutcome::default();
        match self.state(i) {
            Inactive => self.update_inactive(seg, i, p, t, &mut out),
            SynSent | SynAckSent => {
                if f.fin() {
                    self.set_state(i, Closed);
                    out.close = true;
                    out.gen_event = true;
                }
                if f.rst() {
                    self.set_state(i, Reset);
                    self.is_active = false;
                    out.close = true;
                }
            }
            Established | Partial => {
                if f.syn() && !f.ack() && self.state(i) == Partial && self.state(p) == Inactive {
                    self.set_state(i, SynSent);
                }
                if f.fin() && !f.rst() {
                    self.set_state(i, Closed);
                    if self.state(p) == Reset && self.end(p).prev_state == Closed {
                        // A FIN, then a RST, from the peer: that was a normal close after all.
                        self.set_state(p, Closed);
                    }
                    out.close = true;
                    out.gen_event = true;
                }
                if f.rst() {
                    let peer = self.end(p);
                    let peer_was_reset_in_established =
                        peer.state == Reset && peer.prev_state == Established;
                    self.set_state(i, Reset);
                    out.close = true;
                    if !peer_was_reset_in_established {
                        self.is_active = false;
                    }
                }
            }
            Closed => {
                let _ = delta_last;
                if f.rst() && self.state(p) != Closed {
                    self.set_state(i, Reset);
                    if !self.end(i).did_close {
                        out.close = true;
                    }
                }
            }
            Reset => {}
        }
        out
    }

    fn update_inactive(
        &mut self,
        seg: &Segment<'_>,
        i: usize,
        p: usize,
        t: i64,
        out: &mut StateOutcome,
    ) {
        use EndpointState::*;
        let f = seg.flags;
        let (mut i, mut p) = (i, p);
        if f.syn() {
            if i == ORIG {
                self.set_state(i, if f.ack() { SynAckSent } else { SynSent });
                self.attempt_at = Some(t.saturating_add(ATTEMPT_DELAY));
            } else {
                if !f.ack() && self.state(p) == SynAckSent && seg.seq == self.end(i).start_seq {
                    // The SYN and its SYN-ACK were captured in reverse order: flip.
                    self.is_partial = false;
                    self.swap_roles();
                    self.history.push(b'^');
                    std::mem::swap(&mut i, &mut p);
                    out.flipped = true;
                    self.set_state(p, Established);
                }
                if self.state(p) == SynSent {
                    self.set_state(p, Established);
                }
                self.set_state(i, Established);
            }
        }
        if f.fin() {
            self.set_state(i, Closed);
            out.close = true;
            out.gen_event = true;
        }
        if f.rst() {
            self.set_state(i, Reset);
            let is_reject = if i == ORIG {
                self.state(p) == Established
            } else {
                matches!(self.state(p), SynSent | SynAckSent)
            };
            out.close = true;
            out.gen_event = !is_reject;
        }
        if self.state(i) == Inactive {
            if i == RESP && seg.payload_len == 0 && self.state(ORIG) == SynSent {
                // An ACK of the SYN before the SYN-ACK: not a partial connection.
            } else if f.ack() && self.state(p) == Established {
                // The SYN was missed but the SYN-ACK seen: establish.
                self.set_state(i, Established);
                self.is_partial = false;
                self.first_packet_seen |= if i == ORIG { 1 } else { 2 };
            } else {
                self.set_state(i, Partial);
            }
        }
    }

    /// `TCP_Reassembler::AckReceived` for endpoint `i`'s data, acknowledged up to `rel_ack`.
    fn ack_received(&mut self, i: usize, rel_ack: u64) {
        let e = self.end(i);
        let mut up_to = rel_ack;
        if e.fin_count > 0 && up_to >= e.fin_seq {
            up_to = e.fin_seq.saturating_sub(1);
        }
        let partial = self.is_partial;
        let mut gaps = GapList::default();
        self.end_mut(i)
            .reassembly
            .acknowledged(up_to, partial, &mut gaps);
        if gaps.len == 0 {
            return;
        }
        let clean = self.end(i).is_clean() && self.end(1 - i).is_clean();
        if !clean {
            return;
        }
        for &(_, len) in gaps.iter() {
            self.missed_bytes = self.missed_bytes.saturating_add(len);
            if self.end_mut(i).gaps.hit() {
                self.push_letter(i, b'G');
            }
        }
    }

    /// `TCP_Reassembler::DataSent`: payload `[seq, seq + len)` from endpoint `i`.
    fn data_sent(&mut self, i: usize, seq: u64, len: u64) {
        let e = self.end_mut(i);
        let acked = e.relative(e.ack_seq, e.ack_wraps);
        let mut start = seq;
        let end = seq.saturating_add(len);
        if start < acked {
            if end <= acked {
                return;
            }
            start = acked;
        }
        e.reassembly.add(start, end);
    }

    /// `TCPSessionAdapter::ConnectionClosed`: endpoint `i` closed (FIN or RST).
    fn connection_closed(&mut self, i: usize, p: usize, gen_event: bool) {
        if self.end(i).did_close {
            return;
        }
        self.end_mut(i).did_close = true;
        let (e, peer) = (self.end(i), self.end(p));
        let complete = e.state == EndpointState::Reset
            || peer.did_close
            || peer.state == EndpointState::Inactive;
        if complete {
            if (e.prev_state != EndpointState::Inactive || peer.state != EndpointState::Inactive)
                && gen_event
            {
                self.is_active = false;
            }
            self.attempt_at = None;
            self.expire_at = [None; 3];
            self.delete_at = Some(self.last_ns.saturating_add(CLOSE_DELAY));
        } else if e.prev_state != EndpointState::Inactive {
            self.add_expire(self.last_ns.saturating_add(SESSION_TIMER));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    Attempt,
    Expire(usize),
    Delete,
    Inactivity,
}

#[derive(Debug, Default)]
struct StateOutcome {
    close: bool,
    gen_event: bool,
    /// The roles were flipped while processing (a SYN seen after its SYN-ACK).
    flipped: bool,
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/`: a SYN, then a RST, with none of the originator's answers
/// (H, A, F, G, I, Q) in between.
fn syn_then_rst(history: &str) -> bool {
    let rest = history.strip_prefix('^').unwrap_or(history);
    let Some(rest) = rest.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpOptions};
    use std::net::Ipv4Addr;

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const RST: u8 = TcpFlags::RST;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn seg(
        from: (u8, u16),
        to: (u8, u16),
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Segment<'static> {
        Segment {
            src: ip(from.0),
            dst: ip(to.0),
            src_port: from.1,
            dst_port: to.1,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 1000,
            options: TcpOptions::default(),
            payload_len: len,
            ip_len: 40 + len,
            payload: &[],
            ip_header: &[],
            tcp_header: &[],
        }
    }

    const C: (u8, u16) = (1, 40000);
    const S: (u8, u16) = (2, 80);

    fn run(packets: &[(i64, Segment<'static>)], timers: bool) -> Vec<ZeekRow> {
        let mut v = ZeekView::new(ZeekConfig {
            server_ports: ServerPorts::ZEEK,
            timers,
        });
        for (n, (ms, s)) in packets.iter().enumerate() {
            v.on_segment(s, At::packet(ms * 1_000_000, n as u64 + 1));
        }
        v.rows().collect()
    }

    #[test]
    fn a_clean_exchange_is_sf() {
        let rows = run(
            &[
                (0, seg(C, S, SYN, 100, 0, 0)),
                (1, seg(S, C, SYN | ACK, 500, 101, 0)),
                (2, seg(C, S, ACK, 101, 501, 0)),
                (3, seg(C, S, ACK, 101, 501, 10)),
                (4, seg(S, C, ACK, 501, 111, 20)),
                (5, seg(C, S, FIN | ACK, 111, 521, 0)),
                (6, seg(S, C, FIN | ACK, 521, 112, 0)),
                (7, seg(C, S, ACK, 112, 522, 0)),
            ],
            false,
        );
        let r = &rows[0];
        assert_eq!((r.conn_state, r.history.as_str()), ("SF", "ShADdFf"));
        assert_eq!((r.orig_bytes, r.resp_bytes), (10, 20));
        assert_eq!(
            r.duration_ns(),
            6_000_000,
            "ends at the last FIN, not the final ACK"
        );
    }

    #[test]
    fn rejected_and_syn_then_rst() {
        let rows = run(
            &[
                (0, seg(C, S, SYN, 1, 0, 0)),
                (1, seg(S, C, RST | ACK, 0, 2, 0)),
            ],
            false,
        );
        assert_eq!(
            (rows[0].conn_state, rows[0].history.as_str()),
            ("REJ", "Sr")
        );
        let rows = run(
            &[(0, seg(C, S, SYN, 1, 0, 0)), (1, seg(C, S, RST, 2, 0, 0))],
            false,
        );
        assert_eq!(
            (rows[0].conn_state, rows[0].history.as_str()),
            ("RSTOS0", "SR")
        );
    }

    #[test]
    fn midstream_from_a_server_port_is_flipped() {
        let rows = run(&[(0, seg(S, C, ACK, 7, 9, 20))], false);
        assert_eq!(rows[0].history, "^d");
        assert_eq!(rows[0].orig.port, C.1);
    }

    #[test]
    fn a_syn_ack_first_is_flipped_by_the_next_ack() {
        let a = (1, 5000);
        let b = (2, 6000);
        let rows = run(
            &[
                (0, seg(b, a, SYN | ACK, 500, 101, 0)),
                (1, seg(a, b, ACK, 101, 501, 0)),
            ],
            false,
        );
        assert_eq!(rows[0].history, "^hA");
        assert_eq!(rows[0].orig.port, 5000);
        assert_eq!((rows[0].orig_pkts, rows[0].resp_pkts), (1, 1));
    }

    #[test]
    fn retransmissions_and_zero_windows_are_counted_logarithmically() {
        let mut packets = vec![
            (0, seg(C, S, SYN, 100, 0, 0)),
            (1, seg(S, C, SYN | ACK, 500, 101, 0)),
            (2, seg(C, S, ACK, 101, 501, 10)),
        ];
        for n in 0..10 {
            packets.push((3 + n, seg(C, S, ACK, 101, 501, 10)));
        }
        let rows = run(&packets, false);
        assert_eq!(rows[0].history, "ShDTT");
    }

    #[test]
    fn the_attempt_timer_splits_an_unanswered_connection() {
        let packets = [
            (0, seg(C, S, SYN, 100, 0, 0)),
            (1000, seg(C, S, ACK, 101, 1, 5)),
            (7000, seg(C, S, ACK, 106, 1, 5)),
            (7001, seg(C, S, FIN | ACK, 111, 1, 0)),
        ];
        let rows = run(&packets, true);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.conn_state, r.history.as_str()))
            .collect();
        assert_eq!(got, vec![("S0", "SD"), ("SH", "DF")]);
        let whole = run(&packets, false);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].history, "SDF");
    }

    #[test]
    fn corrupt_packets_only_write_c() {
        let mut v = ZeekView::new(ZeekConfig::default());
        v.on_corrupt(&seg(C, S, SYN, 1, 0, 0), At::packet(0, 1));
        let rows: Vec<_> = v.rows().collect();
        assert_eq!((rows[0].conn_state, rows[0].history.as_str()), ("OTH", "C"));
        assert_eq!((rows[0].orig_pkts, rows[0].resp_pkts), (0, 0));
    }

    #[test]
    fn gaps_are_the_acknowledged_octets_never_seen() {
        let mut r = Reassembly::default();
        r.add(1, 11);
        r.add(21, 31);
        r.add(41, 51);
        r.add(45, 61);
        assert_eq!(r.blocks, vec![(21, 31), (41, 61)]);
        let mut gaps = GapList::default();
        r.acknowledged(61, false, &mut gaps);
        let got: Vec<_> = gaps.iter().copied().collect();
        assert_eq!(got, vec![(11, 10), (31, 10)]);
        assert_eq!(r.delivered, 61);
        assert!(r.blocks.is_empty());
        let mut none = GapList::default();
        r.acknowledged(61, false, &mut none);
        assert_eq!(none.len, 0);
    }

    #[test]
    fn counted_letters_fall_on_powers_of_ten() {
        let mut s = Scaled::default();
        let hits: Vec<u32> = (1..=1000).filter(|_| s.hit()).collect();
        assert_eq!(hits.len(), 4);
    }

    #[test]
    fn syn_then_rst_pattern() {
        assert!(syn_then_rst("SR"));
        assert!(syn_then_rst("^STR"));
        assert!(syn_then_rst("ShR"));
        assert!(!syn_then_rst("SAR"));
        assert!(!syn_then_rst("R"));
    }

    #[test]
    fn server_port_lists_parse() {
        assert_eq!(ServerPorts::parse("zeek"), Ok(ServerPorts::ZEEK));
        assert_eq!(ServerPorts::parse("none"), Ok(ServerPorts::NONE));
        let p = ServerPorts::parse("80, 6666-6667,21").unwrap();
        assert_eq!(p.ports(), &[21, 80, 6666, 6667]);
        assert!(ServerPorts::parse("http").is_err());
        assert!(ServerPorts::parse("9-1").is_err());
        assert!(ZEEK_FULL_MODE.windows(2).all(|w| w[0] < w[1]));
    }
}

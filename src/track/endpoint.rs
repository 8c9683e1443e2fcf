//! What the capture shows of one side of a connection: what it sent (sequence space, options,
//! counters) and its state timeline.

use super::observe::{NO_NOTES, Notes};
use super::seq::SeqNumber;
use super::state::{At, State, Timeline};
use crate::decode::{Segment, TcpOptions};

/// The options an endpoint announced on its SYN or SYN-ACK.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announced {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
}

impl From<TcpOptions> for Announced {
    fn from(o: TcpOptions) -> Self {
        Announced {
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            timestamps: o.timestamp.is_some(),
        }
    }
}

/// Counters of what one endpoint sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub packets: u64,
    /// Sum of IP lengths from the IP headers.
    pub ip_bytes: u64,
    /// Payload octets counted once each by sequence number.
    pub payload_bytes: u64,
    /// Segments carrying payload that had been sent before (wholly or partly).
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    /// Segments carrying payload (new or old), keep-alive probes excluded.
    pub data_segments: u64,
    /// Octets skipped: a segment started beyond everything seen before (loss before the
    /// capture point, or reordering).
    pub gap_bytes: u64,
    pub zero_window_advertisements: u64,
    pub keepalive_probes: u64,
    /// Probes sent into a zero window the peer advertised.
    pub window_probes: u64,
    /// RSTs whose sequence number fell outside the receiver's window: ignored by the state
    /// machine, as the receiver would ignore them.
    pub rst_out_of_window: u64,
    /// Every RST sent, whatever became of it.
    pub rsts: u64,
}

/// What one sent segment was, beyond its flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentKind {
    pub retransmission: bool,
    pub zero_window: bool,
}

/// Most retransmission times remembered per SYN or FIN (the backoff pattern shows in a few).
const MAX_COPIES: usize = 16;

/// A SYN, SYN-ACK or FIN this endpoint sent, with when it was first and last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub seq: SeqNumber,
    /// Payload carried by the first copy (data on a SYN: TCP Fast Open).
    pub payload_len: u32,
    pub first: At,
    pub last: At,
    /// Copies after the first.
    pub retransmissions: u32,
    /// When the first copies after the first were seen (up to 16).
    pub copies: Vec<At>,
}

impl Control {
    fn new(seq: SeqNumber, at: At) -> Self {
        Control {
            seq,
            payload_len: 0,
            first: at,
            last: at,
            retransmissions: 0,
            copies: Vec::new(),
        }
    }

    fn repeat(&mut self, at: At) {
        self.retransmissions += 1;
        self.last = at;
        if self.copies.len() < MAX_COPIES {
            self.copies.push(at);
        }
    }

    /// Gaps between successive copies, first to last, in nanoseconds.
    pub fn intervals_ns(&self) -> Vec<i64> {
        std::iter::once(self.first)
            .chain(self.copies.iter().copied())
            .collect::<Vec<_>>()
            .windows(2)
            .filter_map(|w| match w {
                [a, b] => Some(b.ns - a.ns),
                _ => None,
            })
            .collect()
    }
}

/// A segment on the wire towards this endpoint that must change its state once it arrives
/// (a SYN-ACK for the client, a FIN, a crossing SYN). It is delivered when the endpoint
/// acknowledges it, when a later segment of the same sender shows the wire kept order, or when
/// the connection is finalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub kind: PendingKind,
    /// The acknowledgment number that proves delivery.
    pub ack_covers: SeqNumber,
    /// The segment's own time and packet: the date of the delivery.
    pub at: At,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Syn,
    SynAck,
    Fin,
}

/// One side of a connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub timeline: Timeline,
    pub syn: Option<Control>,
    pub fin: Option<Control>,
    pub announced: Announced,
    /// One past the highest sequence number this side has sent (SYN and FIN included).
    pub next_seq: Option<SeqNumber>,
    /// The highest acknowledgment this side has sent.
    pub highest_ack: Option<SeqNumber>,
    /// The last receive window this side advertised, unscaled, and whether it was from a SYN.
    pub last_window: u16,
    pub sent: Sent,
    pub pending: Option<Pending>,
    /// When TIME-WAIT's 2×MSL timer last (re)started: at the ACK of the peer's FIN.
    pub time_wait_from: Option<At>,
    /// The first TSval this side sent, and the last, for RFC 6191 reuse checks.
    pub first_tsval: Option<u32>,
    pub last_tsval: Option<u32>,
    /// The out-of-the-ordinary, boxed on first use: see [`Notes`].
    notes: Option<Box<Notes>>,
    /// Payload sent when this side entered CLOSE-WAIT, to count what it sent while there.
    pub payload_at_close_wait: Option<u64>,
    /// Payload this side sent while in CLOSE-WAIT.
    pub payload_in_close_wait: u64,
}

impl Endpoint {
    pub fn new(initial: State) -> Self {
        Endpoint {
            timeline: Timeline::starting_in(initial),
            syn: None,
            fin: None,
            announced: Announced::default(),
            next_seq: None,
            highest_ack: None,
            last_window: 0,
            sent: Sent::default(),
            pending: None,
            time_wait_from: None,
            first_tsval: None,
            last_tsval: None,
            notes: None,
            payload_at_close_wait: None,
            payload_in_close_wait: 0,
        }
    }

    /// What was noted of this side (nothing, for most).
    pub fn notes(&self) -> &Notes {
        self.notes.as_deref().unwrap_or(&NO_NOTES)
    }

    /// The notes, boxed now if this is the first.
    pub fn notes_mut(&mut self) -> &mut Notes {
        self.notes.get_or_insert_with(Box::default)
    }

    /// The window this side advertised last was zero.
    pub fn window_closed(&self) -> bool {
        self.notes
            .as_ref()
            .is_some_and(|n| n.zero_window.is_closed_window())
    }

    /// The peer sent something: an outstanding keep-alive probe was answered.
    pub fn peer_spoke(&mut self) {
        if let Some(n) = &mut self.notes {
            n.probes.peer_spoke();
        }
    }

    pub fn state(&self) -> State {
        self.timeline.current()
    }

    pub fn isn(&self) -> Option<SeqNumber> {
        self.syn.as_ref().map(|s| s.seq)
    }

    /// The sequence number of this side's FIN, once sent.
    pub fn fin_seq(&self) -> Option<SeqNumber> {
        self.fin.as_ref().map(|f| f.seq)
    }

    /// Records a SYN (or SYN-ACK) this side sent; returns true for a retransmission (same ISN).
    pub fn note_syn(&mut self, seg: &Segment<'_>, at: At) -> bool {
        let seq = SeqNumber::new(seg.seq);
        match &mut self.syn {
            Some(syn) if syn.seq == seq => {
                syn.repeat(at);
                true
            }
            // A SYN with another ISN from a side already synchronized opens nothing (RFC 9293
            // §3.10.7.4 answers it with a challenge ACK): the handshake on record stays.
            Some(_) if self.timeline.current().is_synchronized() => false,
            _ => {
                self.syn = Some(Control {
                    payload_len: seg.payload_len,
                    ..Control::new(seq, at)
                });
                self.announced = seg.options.into();
                false
            }
        }
    }

    /// Records a FIN at `seq` (the FIN's own sequence number); returns true for a retransmission.
    pub fn note_fin(&mut self, seq: SeqNumber, at: At) -> bool {
        match &mut self.fin {
            Some(fin) if fin.seq == seq => {
                fin.repeat(at);
                true
            }
            Some(_) => false,
            None => {
                self.fin = Some(Control::new(seq, at));
                false
            }
        }
    }

    /// Counts a segment this side sent: packets, bytes by sequence number, retransmissions,
    /// holes, keep-alive and window probes, zero windows. Call for every segment, before its
    /// SYN/FIN handling. `peer_window_closed`: the peer's last advertised window was zero, so a
    /// probe is a window probe rather than a keep-alive. Says what the segment was.
    pub fn count_sent(&mut self, seg: &Segment<'_>, at: At, peer_window_closed: bool) -> SentKind {
        self.sent.packets += 1;
        self.sent.ip_bytes += u64::from(seg.ip_len);
        self.sent.rsts += u64::from(seg.flags.rst());
        if let Some((tsval, _)) = seg.options.timestamp {
            self.first_tsval.get_or_insert(tsval);
            self.last_tsval = Some(tsval);
        }
        let mut kind = SentKind::default();
        // A RST's sequence, acknowledgment and window are claims to be checked, not data sent
        // or received.
        if seg.flags.rst() {
            return kind;
        }
        if seg.flags.ack() {
            let ack = SeqNumber::new(seg.ack);
            self.highest_ack = Some(self.highest_ack.map_or(ack, |h| h.latest(ack)));
        }
        self.last_window = seg.window;
        if !seg.flags.syn() && (seg.window == 0 || self.window_closed()) {
            self.notes_mut().zero_window.advertise(seg.window, at);
            if seg.window == 0 {
                self.sent.zero_window_advertisements += 1;
                kind.zero_window = true;
            }
        }
        if seg.flags.syn() && seg.payload_len > 0 {
            self.notes_mut().syn_data.get_or_insert(at);
        }
        kind.retransmission = self.count_payload(seg, at, peer_window_closed);
        kind
    }

    /// Returns true when the segment repeated payload already sent.
    fn count_payload(&mut self, seg: &Segment<'_>, at: At, peer_window_closed: bool) -> bool {
        let flags = seg.flags;
        let start = SeqNumber::new(seg.seq).plus(u32::from(flags.syn()));
        let len = seg.payload_len;
        let end = start.plus(len);
        let Some(next) = self.next_seq else {
            self.sent.payload_bytes += u64::from(len);
            self.sent.data_segments += u64::from(len > 0);
            self.advance_to(end.plus(u32::from(flags.fin())));
            return false;
        };
        if self.is_probe(seg, start, next) {
            if peer_window_closed {
                self.sent.window_probes += 1;
            } else {
                self.sent.keepalive_probes += 1;
                self.notes_mut().probes.sent_one(at);
            }
            return false;
        }
        if len == 0 {
            self.advance_to(end.plus(u32::from(flags.fin())));
            return false;
        }
        self.sent.data_segments += 1;
        if let Some(fin) = self.fin_seq() {
            if end.after(fin) {
                self.notes_mut().data_after_fin.get_or_insert(at);
            }
        }
        let before_next = if end.before(next) { end } else { next };
        let old = before_next.octets_since(start);
        let filled = self
            .notes
            .as_mut()
            .map_or(0, |n| n.holes.fill(start, before_next));
        let resent = old - filled.min(old);
        if start.after(next) {
            let skipped = start.octets_since(next);
            let notes = self.notes_mut();
            notes.holes.open(next, skipped);
            notes.first_gap.get_or_insert(at);
            self.sent.gap_bytes += u64::from(skipped);
        }
        self.sent.payload_bytes += u64::from(len - old + filled.min(old));
        if resent > 0 {
            self.sent.retransmitted_segments += 1;
            self.sent.retransmitted_bytes += u64::from(resent);
            self.notes_mut().first_retransmission.get_or_insert(at);
        }
        self.advance_to(end.plus(u32::from(flags.fin())));
        resent > 0
    }

    /// A keep-alive or zero-window probe carries 0 or 1 octet at one before the next sequence
    /// number, with no SYN, FIN or RST (RFC 9293 §3.8.4; Linux's tcp_xmit_probe_skb).
    fn is_probe(&self, seg: &Segment<'_>, start: SeqNumber, next: SeqNumber) -> bool {
        let f = seg.flags;
        seg.payload_len <= 1 && !f.syn() && !f.fin() && !f.rst() && start == next.minus(1)
    }

    fn advance_to(&mut self, end: SeqNumber) {
        self.next_seq = Some(self.next_seq.map_or(end, |n| n.latest(end)));
    }

    /// The receive window this side last advertised, in octets (scaled when both sides
    /// negotiated window scaling).
    pub fn window_octets(&self, scale: u8) -> u32 {
        u32::from(self.last_window) << scale.min(14)
    }
}

//! One incarnation of a 4-tuple: two endpoints driven through RFC 9293 by what the capture
//! shows each of them send.
//!
//! The capture point is treated as the wire. A segment moves its sender's state when it is
//! seen. A segment that changes its receiver's state (a SYN-ACK reaching the client, a FIN)
//! does so once the capture shows it arrived: the receiver acknowledges it, or the sender's
//! next segment shows the path kept order, or the connection ends with it still in flight.
//! The change is dated at the segment's own time. This is what makes a simultaneous close come
//! out as two CLOSINGs wherever the capture was taken, rather than a CLOSE-WAIT that the
//! receiver never was in. Acknowledgments move their receiver at once: nothing later could
//! prove them.

use super::endpoint::{Endpoint, Pending, PendingKind};
use super::seq::SeqNumber;
use super::state::{At, State, Transition};
use super::zeek::{ServerPorts, ZeekView};
use super::{Config, Side};
use crate::decode::Segment;
use std::net::{IpAddr, Ipv4Addr};

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub ip: IpAddr,
    pub port: u16,
}

impl Addr {
    /// A segment's source and destination.
    pub fn ends_of(seg: &Segment<'_>) -> (Addr, Addr) {
        (
            Addr {
                ip: seg.src,
                port: seg.src_port,
            },
            Addr {
                ip: seg.dst,
                port: seg.dst_port,
            },
        )
    }

    /// The end as one integer: an IPv4 address above its port, exactly (so that it can stand
    /// for the end in a key); an IPv6 address folded first, which only a hash may use.
    pub fn folded(self) -> u64 {
        let bits = match self.ip {
            IpAddr::V4(v4) => u64::from(v4.to_bits()),
            IpAddr::V6(v6) => {
                let x = v6.to_bits();
                (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
            }
        };
        fold(bits, self.port)
    }

    /// [`Addr::folded`] of an IPv4 end, from its address and port.
    pub fn folded_v4(ip: Ipv4Addr, port: u16) -> u64 {
        fold(u64::from(ip.to_bits()), port)
    }
}

/// An address's bits (at most 64) above its port.
fn fold(bits: u64, port: u16) -> u64 {
    bits.rotate_left(16) ^ u64::from(port)
}

/// How the client/server roles were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolesFrom {
    /// The client sent the first SYN.
    Syn,
    /// No SYN seen; the server sent a SYN-ACK.
    SynAck,
    /// Neither seen: the well-known or lower port is the server's.
    Ports,
}

/// How a RST ended (or failed to end) the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    pub sender: Side,
    pub at: At,
    /// The sender's state just before it sent the RST.
    pub sender_state: State,
    /// The receiver's state when the RST reached it.
    pub receiver_state: State,
    /// Payload octets the sender had sent that the receiver had not acknowledged.
    pub sender_unacked: u32,
    /// Payload octets the receiver had sent that the RST's sender had not acknowledged.
    pub receiver_unacked: u32,
}

/// Why a connection was finalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The active closer's TIME-WAIT ran out (2×MSL after its final ACK).
    TimeWaitExpired,
    /// Closed, with a side in TIME-WAIT: the record is out after the linger time, and a
    /// tombstone of the 4-tuple lasts until the TIME-WAIT ends.
    TimeWait,
    /// Both sides closed (or reset) and nothing followed for the linger time.
    Closed,
    /// No packet for the idle timeout.
    IdleTimeout,
    /// The flow table was full and this was among the longest idle.
    Evicted,
    /// A new incarnation of the 4-tuple began.
    NewIncarnation,
    /// The capture ended.
    CaptureEnd,
}

/// One incarnation of a TCP connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: u64,
    pub client: Addr,
    pub server: Addr,
    pub roles_from: RolesFrom,
    pub first: At,
    pub last: At,
    pub ends: [Endpoint; 2],
    /// The first FIN's sender, or both when each sent FIN before seeing the other's.
    pub active_closer: Option<Closer>,
    /// The ACK of the last FIN, completing the close.
    pub final_ack: Option<At>,
    /// The RST that took effect, if any.
    pub reset: Option<Reset>,
    /// RSTs seen after the one that took effect, or with no connection left to reset.
    pub extra_rsts: u32,
    /// The first RST seen after both FINs were acknowledged.
    pub rst_after_close: Option<(Side, At)>,
    /// The first segment with an impossible combination of flags: sender, when, the flags.
    pub invalid_flags: Option<(Side, At, u8)>,
    pub invalid_flags_count: u32,
    /// Capture time when the connection was finalised (the end of what was watched).
    pub finished_at_ns: i64,
    /// When the active closer's TIME-WAIT ends (2×MSL after its final ACK), set when the
    /// connection is finalised.
    pub time_wait_ends_ns: Option<i64>,
    /// The handshake's completing ACK.
    pub handshake_ack: Option<At>,
    /// A SYN-ACK whose acknowledgment was not the client's ISN + 1.
    pub handshake_ack_mismatch: Option<At>,
    /// Both sides sent a bare SYN before any SYN-ACK.
    pub simultaneous_open: bool,
    /// The previous incarnation of the same 4-tuple, if it was still known.
    pub previous: Option<Previous>,
    /// Zeek's view of the same packets: its history, conn_state and conn.log row(s).
    pub zeek: ZeekView,
    pub finish: Option<Finish>,
    /// The flow table's: when this connection's entry in its timer queue comes up (never after
    /// its deadline).
    pub(super) timer_ns: i64,
}

/// Who closed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    Side(Side),
    Simultaneous,
}

/// What a new incarnation remembers of the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub id: u64,
    pub last: At,
    /// The side (in the old incarnation's roles) that was in TIME-WAIT, and since when.
    pub time_wait: Option<(Side, At)>,
    pub old_client: Addr,
    /// One past the highest sequence number each old side sent, and its last TSval.
    pub next_seq: [Option<SeqNumber>; 2],
    pub last_tsval: [Option<u32>; 2],
    /// Both sides' states when the new SYN arrived, if the old connection was not over yet.
    pub still_open: Option<[State; 2]>,
}

impl Connection {
    /// Takes over what `old` (finished, about to be overwritten) had allocated, so that this
    /// connection needs no allocation of its own for it: its timelines' room and its Zeek
    /// view's box.
    pub(super) fn take_room(&mut self, old: &mut Connection) {
        for (end, old_end) in self.ends.iter_mut().zip(old.ends.iter_mut()) {
            end.timeline.take_room(&mut old_end.timeline);
        }
        self.zeek.take_room(&mut old.zeek);
    }

    /// A connection whose first captured segment is `seg`, sent by `src`.
    pub fn new(id: u64, seg: &Segment<'_>, src: Addr, dst: Addr, at: At, config: &Config) -> Self {
        let f = seg.flags;
        let (client, server, roles_from, initial) = if f.syn() && !f.ack() {
            (src, dst, RolesFrom::Syn, [State::Closed, State::Listen])
        } else if f.syn() && f.ack() {
            (dst, src, RolesFrom::SynAck, [State::SynSent, State::Listen])
        } else if server_by_port(src, dst, config.zeek.server_ports) {
            (dst, src, RolesFrom::Ports, [State::Established; 2])
        } else {
            (src, dst, RolesFrom::Ports, [State::Established; 2])
        };
        Connection {
            id,
            client,
            server,
            roles_from,
            first: at,
            last: at,
            ends: [Endpoint::new(initial[0]), Endpoint::new(initial[1])],
            active_closer: None,
            final_ack: None,
            reset: None,
            extra_rsts: 0,
            rst_after_close: None,
            invalid_flags: None,
            invalid_flags_count: 0,
            finished_at_ns: at.ns,
            time_wait_ends_ns: None,
            handshake_ack: None,
            handshake_ack_mismatch: None,
            simultaneous_open: false,
            previous: None,
            zeek: ZeekView::new(config.zeek),
            finish: None,
            timer_ns: i64::MAX,
        }
    }

    pub fn end(&self, side: Side) -> &Endpoint {
        let [client, server] = &self.ends;
        match side {
            Side::Client => client,
            Side::Server => server,
        }
    }

    fn end_mut(&mut self, side: Side) -> &mut Endpoint {
        let [client, server] = &mut self.ends;
        match side {
            Side::Client => client,
            Side::Server => server,
        }
    }

    pub fn state(&self, side: Side) -> State {
        self.end(side).state()
    }

    /// The handshake was not captured.
    pub fn midstream(&self) -> bool {
        self.roles_from == RolesFrom::Ports
    }

    /// Which side sent a segment from `src`.
    pub fn side_of(&self, src: Addr) -> Side {
        if src == self.client && src != self.server {
            Side::Client
        } else if src == self.server {
            Side::Server
        } else {
            Side::Client
        }
    }

    /// The one place where an endpoint's state changes. It also keeps the books that
    /// span a state: what a side sent while in CLOSE-WAIT.
    fn set_state(&mut self, side: Side, to: State, at: At) -> Option<Transition> {
        let end = self.end_mut(side);
        let transition = end.timeline.set(to, at)?;
        let sent = end.sent.payload_bytes;
        if to == State::CloseWait {
            end.payload_at_close_wait = Some(sent);
        } else if let Some(before) = end.payload_at_close_wait.take() {
            end.payload_in_close_wait += sent.saturating_sub(before);
        }
        Some(transition)
    }

    /// A segment whose TCP checksum is wrong (with `--verify-checksums`): like Zeek, tcplife
    /// does not believe anything in it, so it reaches only the Zeek view (as `C`/`c`).
    pub fn on_corrupt_segment(&mut self, seg: &Segment<'_>, at: At) {
        self.zeek.on_corrupt(seg, at);
    }

    /// Feeds one segment sent by `sender`.
    pub fn on_segment(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let receiver = sender.peer();
        self.last = at;
        self.check_flags(seg, sender, at);
        self.deliver_if_proven(sender, seg, at);
        self.infer_unseen_syn_ack(seg, sender, at);
        let peer_window_closed = self.end(receiver).window_closed();
        self.end_mut(sender).count_sent(seg, at, peer_window_closed);
        self.end_mut(receiver).peer_spoke();
        self.zeek.on_segment(seg, at);
        let f = seg.flags;
        if f.ack() {
            self.check_ack_of_unseen(SeqNumber::new(seg.ack), sender, at);
        }
        if f.rst() {
            self.on_rst(seg, sender, at);
            return;
        }
        if f.syn() {
            self.on_syn(seg, sender, at);
        }
        if f.ack() {
            self.on_ack(SeqNumber::new(seg.ack), receiver, at);
        }
        if f.fin() {
            self.on_fin(seg, sender, at);
        }
    }

    /// A client in SYN-SENT that acknowledges something without SYN received a SYN-ACK the
    /// capture did not show (a one-sided capture): the handshake completed at this ACK.
    fn infer_unseen_syn_ack(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let f = seg.flags;
        if self.state(sender) != State::SynSent || f.syn() || f.rst() || !f.ack() {
            return;
        }
        let peer = sender.peer();
        self.set_state(sender, State::Established, at);
        if self.state(peer) == State::Listen {
            self.set_state(peer, State::SynReceived, at);
        }
        if self.state(peer) == State::SynReceived {
            self.set_state(peer, State::Established, at);
        }
        self.handshake_ack.get_or_insert(at);
    }

    /// Notes the first segment with a combination of flags no correct stack sends: SYN+FIN,
    /// SYN+RST, no flags at all, or a FIN without ACK once the connection is synchronized.
    fn check_flags(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let f = seg.flags;
        let invalid = (f.syn() && (f.fin() || f.rst()))
            || f.0 == 0
            || (f.fin() && !f.ack() && self.state(sender).is_synchronized());
        if invalid {
            self.invalid_flags_count += 1;
            self.invalid_flags.get_or_insert((sender, at, f.0));
        }
    }

    /// An acknowledgment beyond everything the capture showed the peer sending means the peer
    /// sent data the capture missed.
    fn check_ack_of_unseen(&mut self, ack: SeqNumber, acker: Side, at: At) {
        let Some(next) = self.end(acker.peer()).next_seq else {
            return;
        };
        if ack.after(next) && self.end(acker).notes().ack_of_unseen.is_none() {
            self.end_mut(acker).notes_mut().ack_of_unseen = Some((at, ack.octets_since(next)));
        }
    }

    /// Delivers what was in flight towards either side that this segment proves arrived:
    /// the sender acknowledging it, or (towards the receiver) the same sender's wire order.
    fn deliver_if_proven(&mut self, sender: Side, seg: &Segment<'_>, at: At) {
        if let Some(p) = self.end(sender).pending {
            if seg.flags.ack() && SeqNumber::new(seg.ack).at_or_after(p.ack_covers) {
                self.deliver(sender);
            }
        }
        let receiver = sender.peer();
        if let Some(p) = self.end(receiver).pending {
            if !self.repeats_pending(seg, sender, p) && at.packet != p.at.packet {
                self.deliver(receiver);
            }
        }
    }

    /// A copy of the very segment still in flight says nothing about the first copy's fate.
    fn repeats_pending(&self, seg: &Segment<'_>, sender: Side, p: Pending) -> bool {
        let f = seg.flags;
        match p.kind {
            PendingKind::Fin => f.fin() && self.end(sender).fin_seq() == Some(fin_seq(seg)),
            PendingKind::Syn | PendingKind::SynAck => f.syn(),
        }
    }

    /// Applies a pending arrival at `side`, dated at the segment that carried it.
    fn deliver(&mut self, side: Side) {
        let Some(p) = self.end_mut(side).pending.take() else {
            return;
        };
        let state = self.state(side);
        match p.kind {
            // RFC 9293 §3.10.7.3, SYN-SENT: "If our SYN has been ACKed ... change the connection
            // state to ESTABLISHED"; a bare SYN instead: "enter SYN-RECEIVED".
            PendingKind::SynAck if state == State::SynSent => {
                self.set_state(side, State::Established, p.at);
            }
            PendingKind::Syn if state == State::SynSent => {
                self.set_state(side, State::SynReceived, p.at);
            }
            // §3.10.7.4, eighth, the FIN bit: ESTABLISHED → CLOSE-WAIT; FIN-WAIT-1 → CLOSING
            // (its own FIN not yet acknowledged); FIN-WAIT-2 → TIME-WAIT.
            PendingKind::Fin => match state {
                State::Established | State::SynReceived => {
                    self.set_state(side, State::CloseWait, p.at);
                }
                State::FinWait1 => {
                    self.set_state(side, State::Closing, p.at);
                }
                State::FinWait2 => self.enter_time_wait(side, p.at),
                _ => {}
            },
            _ => {}
        }
    }

    /// Delivers whatever is still in flight: with nothing to say otherwise, the wire delivered it.
    pub fn deliver_all_pending(&mut self) {
        self.deliver(Side::Client);
        self.deliver(Side::Server);
    }

    fn queue(&mut self, side: Side, kind: PendingKind, ack_covers: SeqNumber, at: At) {
        // The wire keeps order: whatever was in flight before this reached the side first.
        self.deliver(side);
        self.end_mut(side).pending = Some(Pending {
            kind,
            ack_covers,
            at,
        });
    }

    fn on_syn(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let receiver = sender.peer();
        let retransmission = self.end_mut(sender).note_syn(seg, at);
        let covers = SeqNumber::new(seg.seq).plus(1);
        if !seg.flags.ack() {
            // An active OPEN: CLOSED → SYN-SENT. A SYN from the side that was listening, before
            // any SYN-ACK, is a simultaneous open (§3.5, figure 8).
            match self.state(sender) {
                State::Closed => {
                    self.set_state(sender, State::SynSent, at);
                }
                State::Listen if self.state(receiver) == State::SynSent => {
                    // It was never listening: it opened actively too.
                    self.simultaneous_open = true;
                    self.end_mut(sender)
                        .timeline
                        .reassume_initial(State::Closed);
                    self.set_state(sender, State::SynSent, at);
                }
                _ => {}
            }
            if !retransmission && self.state(receiver) == State::SynSent {
                self.queue(receiver, PendingKind::Syn, covers, at);
            }
            return;
        }
        // A SYN-ACK: its sender received a SYN (LISTEN → SYN-RECEIVED) and answers it.
        if let Some(syn) = &self.end(receiver).syn {
            // It acknowledges the SYN, and with TCP Fast Open (RFC 7413) possibly the data the
            // SYN carried: anything from ISN + 1 to ISN + 1 + that data.
            let ack = SeqNumber::new(seg.ack);
            if !ack.within(syn.seq.plus(1), syn.payload_len + 1) {
                self.handshake_ack_mismatch.get_or_insert(at);
                return;
            }
        }
        if matches!(self.state(sender), State::Listen | State::SynSent) {
            self.set_state(sender, State::SynReceived, at);
        }
        if !retransmission && self.state(receiver) == State::SynSent {
            self.queue(receiver, PendingKind::SynAck, covers, at);
        }
    }

    /// The segment's sender acknowledges `ack`: the receiver learns its SYN or FIN arrived.
    fn on_ack(&mut self, ack: SeqNumber, receiver: Side, at: At) {
        if let Some(isn) = self.end(receiver).isn() {
            if self.state(receiver) == State::SynReceived && ack.at_or_after(isn.plus(1)) {
                // §3.10.7.4, fifth, SYN-RECEIVED: "If SEG.ACK is acceptable, then enter
                // ESTABLISHED state".
                self.set_state(receiver, State::Established, at);
                self.handshake_ack.get_or_insert(at);
            }
        }
        let Some(fin) = self.end(receiver).fin_seq() else {
            return;
        };
        if !ack.at_or_after(fin.plus(1)) {
            return;
        }
        match self.state(receiver) {
            // FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter FIN-WAIT-2".
            State::FinWait1 => {
                self.set_state(receiver, State::FinWait2, at);
            }
            // CLOSING: "if the ACK acknowledges our FIN, then enter the TIME-WAIT state".
            State::Closing => {
                self.final_ack.get_or_insert(at);
                self.enter_time_wait(receiver, at);
            }
            // LAST-ACK: "if our FIN is now acknowledged, delete the TCB, enter the CLOSED state".
            State::LastAck => {
                self.final_ack.get_or_insert(at);
                self.set_state(receiver, State::Closed, at);
            }
            _ => {}
        }
        // The ACK of the peer's FIN by a side in TIME-WAIT (re)starts its 2×MSL timer
        // ("restart the 2 MSL timeout").
        if self.state(receiver.peer()) == State::TimeWait {
            self.end_mut(receiver.peer()).time_wait_from = Some(at);
        }
    }

    fn enter_time_wait(&mut self, side: Side, at: At) {
        self.set_state(side, State::TimeWait, at);
        self.end_mut(side).time_wait_from.get_or_insert(at);
    }

    fn on_fin(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let seq = fin_seq(seg);
        if self.end_mut(sender).note_fin(seq, at) {
            return;
        }
        // §3.10.4 CLOSE: ESTABLISHED or SYN-RECEIVED → FIN-WAIT-1; CLOSE-WAIT → LAST-ACK.
        match self.state(sender) {
            State::Established | State::SynReceived => {
                self.set_state(sender, State::FinWait1, at);
            }
            State::CloseWait => {
                self.set_state(sender, State::LastAck, at);
            }
            _ => {}
        }
        self.note_closer(sender);
        let receiver = sender.peer();
        if !self.state(receiver).is_gone() {
            self.queue(receiver, PendingKind::Fin, seq.plus(1), at);
        }
    }

    /// The first FIN makes its sender the active closer; a second FIN sent before its sender
    /// had acknowledged the first makes the close simultaneous.
    fn note_closer(&mut self, sender: Side) {
        match self.active_closer {
            None => self.active_closer = Some(Closer::Side(sender)),
            Some(Closer::Side(first)) if first != sender => {
                let peer_fin = self.end(first).fin_seq().map(|f| f.plus(1));
                let acked = match (self.end(sender).highest_ack, peer_fin) {
                    (Some(ack), Some(covers)) => ack.at_or_after(covers),
                    _ => false,
                };
                if !acked && self.state(sender) == State::FinWait1 {
                    self.active_closer = Some(Closer::Simultaneous);
                }
            }
            _ => {}
        }
    }

    fn on_rst(&mut self, seg: &Segment<'_>, sender: Side, at: At) {
        let receiver = sender.peer();
        if self.final_ack.is_some() {
            self.rst_after_close.get_or_insert((sender, at));
        }
        let nothing_to_reset = self.state(sender).is_gone() && self.state(receiver).is_gone();
        if nothing_to_reset {
            self.extra_rsts += 1;
            return;
        }
        // A RST to a side that is only listening (or has not been heard from) protects nothing
        // there: the sender has given up on its own attempt.
        let aborts_own_attempt = self.state(receiver) == State::Listen;
        if !aborts_own_attempt && !self.rst_acceptable(seg, sender) {
            self.end_mut(sender).sent.rst_out_of_window += 1;
            return;
        }
        let reset = Reset {
            sender,
            at,
            sender_state: self.state(sender),
            receiver_state: self.state(receiver),
            sender_unacked: self.unacked(sender),
            receiver_unacked: self.unacked(receiver),
        };
        self.reset = Some(reset);
        self.set_state(sender, State::Closed, at);
        // §3.10.7.4, first, SYN-RECEIVED reached from a passive OPEN: "return this connection
        // to LISTEN state"; every other state: "enter the CLOSED state".
        let passive =
            receiver == Side::Server && self.end(receiver).timeline.initial() == State::Listen;
        let to = match self.state(receiver) {
            State::SynReceived if passive => State::Listen,
            State::Listen => State::Listen,
            _ => State::Closed,
        };
        self.end_mut(receiver).pending = None;
        self.set_state(receiver, to, at);
    }

    /// RFC 9293 §3.10.7: in SYN-SENT a RST is acceptable if it acknowledges the SYN; otherwise
    /// if its sequence number is in the receiver's window. With no sequence numbers known yet
    /// (a capture that starts with the RST) it is taken as genuine.
    fn rst_acceptable(&self, seg: &Segment<'_>, sender: Side) -> bool {
        let receiver = sender.peer();
        if self.state(receiver) == State::SynSent {
            let Some(isn) = self.end(receiver).isn() else {
                return true;
            };
            return seg.flags.ack() && SeqNumber::new(seg.ack) == isn.plus(1);
        }
        let expected = self.end(receiver).highest_ack.or(self.end(sender).next_seq);
        let Some(expected) = expected else {
            return true;
        };
        let window = self
            .end(receiver)
            .window_octets(self.window_shift(receiver))
            .max(1);
        let seq = SeqNumber::new(seg.seq);
        seq.within(expected, window) || self.end(sender).next_seq == Some(seq)
    }

    /// The window scale `side` applies to the windows it advertises (RFC 7323 §2.2: only when
    /// both SYNs carried the option).
    fn window_shift(&self, side: Side) -> u8 {
        match (
            self.end(side).announced.window_scale,
            self.end(side.peer()).announced.window_scale,
        ) {
            (Some(shift), Some(_)) => shift,
            _ => 0,
        }
    }

    /// Payload octets `side` sent that its peer had not acknowledged.
    fn unacked(&self, side: Side) -> u32 {
        match (self.end(side).next_seq, self.end(side.peer()).highest_ack) {
            (Some(next), Some(acked)) => next.octets_since(acked),
            _ => 0,
        }
    }

    /// The close is over: nobody is left but perhaps a side in TIME-WAIT.
    pub fn is_over(&self) -> bool {
        [Side::Client, Side::Server]
            .iter()
            .all(|&side| self.state(side).is_gone() || self.state(side) == State::TimeWait)
    }

    /// When a side in TIME-WAIT gets to leave it: 2×MSL after its final ACK.
    pub fn time_wait_ends(&self, config: &Config) -> Option<(Side, i64)> {
        [Side::Client, Side::Server].into_iter().find_map(|side| {
            let end = self.end(side);
            (end.state() == State::TimeWait)
                .then(|| {
                    end.time_wait_from
                        .map(|from| (side, from.ns.saturating_add(config.time_wait_ns())))
                })
                .flatten()
        })
    }

    /// A side's TIME-WAIT has run out by `now_ns`.
    pub fn time_wait_passed(&self, config: &Config, now_ns: i64) -> bool {
        self.time_wait_ends(config)
            .is_some_and(|(_, ends)| ends <= now_ns)
    }

    /// TIME-WAIT → CLOSED when its timer fires ("When the time-wait timeout expires ... delete the
    /// TCB, enter the CLOSED state").
    pub fn expire_time_wait(&mut self, config: &Config, now_ns: i64) {
        if let Some((side, ends)) = self.time_wait_ends(config) {
            if ends <= now_ns {
                self.set_state(side, State::Closed, At::timer(ends));
            }
        }
    }

    /// The capture time after which nothing more is expected of this connection.
    pub fn deadline(&self, config: &Config) -> i64 {
        if self.is_over() {
            return self.last.ns.saturating_add(config.closed_linger_ns);
        }
        self.last.ns.saturating_add(config.idle_timeout_ns)
    }
}

/// The sequence number of a segment's FIN: after its SYN and payload.
fn fin_seq(seg: &Segment<'_>) -> SeqNumber {
    SeqNumber::new(seg.seq)
        .plus(u32::from(seg.flags.syn()))
        .plus(seg.payload_len)
}

/// Without a handshake, the server is the side with a likely server port (Zeek's list, or
/// `--server-ports`), else a well-known port, else the lower port. Returns true when `src` looks
/// like the server.
fn server_by_port(src: Addr, dst: Addr, likely: ServerPorts) -> bool {
    const WELL_KNOWN: u16 = 1024;
    match (likely.contains(src.port), likely.contains(dst.port)) {
        (true, false) => return true,
        (false, true) => return false,
        _ => {}
    }
    match (src.port < WELL_KNOWN, dst.port < WELL_KNOWN) {
        (true, false) => true,
        (false, true) => false,
        _ => src.port < dst.port,
    }
}

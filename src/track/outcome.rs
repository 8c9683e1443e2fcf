//! How a connection ended: exactly one outcome per incarnation.

use super::Side;
use super::connection::Connection;
use super::state::State;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Both FINs sent and both acknowledged.
    Closed,
    /// Both FINs sent, the last one never acknowledged.
    ClosedUnacked,
    /// Ended by a RST after the handshake completed.
    Reset,
    /// The SYN was answered by a RST.
    Refused,
    /// SYN(s) got no reply.
    Unanswered,
    /// SYN-ACK sent, the handshake's final ACK never seen.
    HalfOpen,
    /// One side sent FIN, the other had not by the end.
    HalfClosed,
    /// Established and still open when the capture (or the idle timeout) ended.
    Open,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Closed,
        Outcome::ClosedUnacked,
        Outcome::Reset,
        Outcome::Refused,
        Outcome::Unanswered,
        Outcome::HalfOpen,
        Outcome::HalfClosed,
        Outcome::Open,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Closed => "closed",
            Outcome::ClosedUnacked => "closed_unacked",
            Outcome::Reset => "reset",
            Outcome::Refused => "refused",
            Outcome::Unanswered => "unanswered",
            Outcome::HalfOpen => "half_open",
            Outcome::HalfClosed => "half_closed",
            Outcome::Open => "open",
        }
    }

    /// How much a person reading a summary wants to see this first (higher is worse).
    pub const fn badness(self) -> u8 {
        match self {
            Outcome::Closed => 0,
            Outcome::Open => 1,
            Outcome::HalfClosed => 2,
            Outcome::Refused => 3,
            Outcome::ClosedUnacked => 4,
            Outcome::Unanswered => 5,
            Outcome::HalfOpen => 6,
            Outcome::Reset => 7,
        }
    }
}

impl Connection {
    /// The outcome, judged in this order: a completed close wins over a later RST; a RST decides
    /// next (refused when it answered a SYN that nothing else answered); then FINs; then how far
    /// the handshake got.
    pub fn outcome(&self) -> Outcome {
        let fins = [Side::Client, Side::Server].map(|s| self.end(s).fin.is_some());
        let both_fins = fins[0] && fins[1];
        if both_fins && self.final_ack.is_some() {
            return Outcome::Closed;
        }
        if let Some(reset) = self.reset {
            let answered = self.end(Side::Server).syn.is_some();
            let before_answer = !answered && !self.midstream() && !self.handshake_done();
            return match reset.sender {
                Side::Server if before_answer && reset.receiver_state == State::SynSent => {
                    Outcome::Refused
                }
                // The client gave up on SYNs nobody answered.
                Side::Client if before_answer => Outcome::Unanswered,
                _ => Outcome::Reset,
            };
        }
        if both_fins {
            return Outcome::ClosedUnacked;
        }
        if fins[0] || fins[1] {
            return Outcome::HalfClosed;
        }
        if self.handshake_done() {
            return Outcome::Open;
        }
        if self.end(Side::Server).syn.is_some() {
            Outcome::HalfOpen
        } else {
            Outcome::Unanswered
        }
    }

    /// The handshake completed (the capture showed the ACK that completes it, which also
    /// covers a simultaneous open), or happened before the capture began.
    pub fn handshake_done(&self) -> bool {
        self.midstream() || self.handshake_ack.is_some()
    }
}

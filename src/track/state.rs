//! The eleven RFC 9293 connection states and the record of how an endpoint moved through them.

use serde::Serialize;
use std::fmt;

/// A TCP endpoint's state, named as in RFC 9293 §3.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum State {
    /// "represents no connection state at all"
    #[serde(rename = "CLOSED")]
    Closed,
    /// "waiting for a connection request from any remote TCP peer and port"
    #[serde(rename = "LISTEN")]
    Listen,
    /// "waiting for a matching connection request after having sent a connection request"
    #[serde(rename = "SYN-SENT")]
    SynSent,
    /// "waiting for a confirming connection request acknowledgment after having both received
    /// and sent a connection request"
    #[serde(rename = "SYN-RECEIVED")]
    SynReceived,
    /// "an open connection, data received can be delivered to the user"
    #[serde(rename = "ESTABLISHED")]
    Established,
    /// "waiting for a connection termination request from the remote TCP peer, or an
    /// acknowledgment of the connection termination request previously sent"
    #[serde(rename = "FIN-WAIT-1")]
    FinWait1,
    /// "waiting for a connection termination request from the remote TCP peer"
    #[serde(rename = "FIN-WAIT-2")]
    FinWait2,
    /// "waiting for a connection termination request from the local user"
    #[serde(rename = "CLOSE-WAIT")]
    CloseWait,
    /// "waiting for a connection termination request acknowledgment from the remote TCP peer"
    #[serde(rename = "CLOSING")]
    Closing,
    /// "waiting for an acknowledgment of the connection termination request previously sent to
    /// the remote TCP peer"
    #[serde(rename = "LAST-ACK")]
    LastAck,
    /// "waiting for enough time to pass to be sure the remote TCP peer received the
    /// acknowledgment of its connection termination request"
    #[serde(rename = "TIME-WAIT")]
    TimeWait,
}

impl State {
    /// All states, in RFC order.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// The RFC's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// "The state of a connection is synchronized once the three-way handshake is done":
    /// ESTABLISHED and every state a close passes through.
    pub const fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// No connection left on this side (CLOSED, or back in LISTEN).
    pub const fn is_gone(self) -> bool {
        matches!(self, State::Closed | State::Listen)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When something happened: capture time and the packet that showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Nanoseconds since the Unix epoch.
    pub ns: i64,
    /// 1-based packet number in the run; `None` for a timer (TIME-WAIT expiring).
    pub packet: Option<u64>,
}

impl At {
    pub const fn packet(ns: i64, packet: u64) -> Self {
        At {
            ns,
            packet: Some(packet),
        }
    }

    pub const fn timer(ns: i64) -> Self {
        At { ns, packet: None }
    }
}

/// One state change of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at: At,
}

/// Changes of state an endpoint usually goes through (see [`Timeline::set`]).
const USUAL_TRANSITIONS: usize = 6;

/// An endpoint's state and every change of it. The state can only change through
/// [`Timeline::set`], which records the transition.
#[derive(Debug, Clone)]
pub struct Timeline {
    initial: State,
    current: State,
    transitions: Vec<Transition>,
}

impl Timeline {
    pub fn starting_in(initial: State) -> Self {
        Timeline {
            initial,
            current: initial,
            transitions: Vec::new(),
        }
    }

    pub fn initial(&self) -> State {
        self.initial
    }

    pub fn current(&self) -> State {
        self.current
    }

    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// When the endpoint entered its current state (`None` if it never changed).
    pub fn entered_current(&self) -> Option<At> {
        self.transitions.last().map(|t| t.at)
    }

    /// Takes over `old`'s room for transitions, emptied, when it has none of its own: the
    /// timeline of a connection made in a recycled one's place needs no allocation.
    pub(super) fn take_room(&mut self, old: &mut Timeline) {
        if self.transitions.capacity() == 0 {
            self.transitions = std::mem::take(&mut old.transitions);
            self.transitions.clear();
        }
    }

    /// Corrects the assumed initial state while nothing has happened yet (a side taken for a
    /// listener that turns out to open actively); returns whether it could.
    pub(super) fn reassume_initial(&mut self, initial: State) -> bool {
        if !self.transitions.is_empty() {
            return false;
        }
        self.initial = initial;
        self.current = initial;
        true
    }

    /// Moves to `to`, recording the change; returns it, or `None` when already there.
    /// A transition is never dated before the previous one: a receipt inferred late is
    /// clamped to the endpoint's last known change.
    pub(super) fn set(&mut self, to: State, at: At) -> Option<Transition> {
        if to == self.current {
            return None;
        }
        let at = match self.entered_current() {
            Some(prev) if prev.ns > at.ns => prev,
            _ => at,
        };
        let transition = Transition {
            from: self.current,
            to,
            at,
        };
        self.current = to;
        if self.transitions.capacity() == 0 {
            // A handshake and a four-way close make five changes a side: room for them at
            // once rather than a first allocation of four and a second of eight.
            self.transitions.reserve_exact(USUAL_TRANSITIONS);
        }
        self.transitions.push(transition);
        Some(transition)
    }

    /// How long the endpoint spent in `state`, summed over its visits, up to `end_ns` for a
    /// visit still open.
    pub fn time_in(&self, state: State, end_ns: i64) -> i64 {
        let mut total = 0;
        let mut since = (self.initial == state).then_some(None::<i64>);
        for t in &self.transitions {
            if t.to == state {
                since = Some(Some(t.at.ns));
            } else if t.from == state {
                if let Some(Some(start)) = since {
                    total += t.at.ns - start;
                }
                since = None;
            }
        }
        if let Some(Some(start)) = since {
            total += end_ns - start;
        }
        total
    }
}

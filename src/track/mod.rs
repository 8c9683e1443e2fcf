//! Stage 3: segments → connections.
//!
//! The flow table maps each 4-tuple to its current incarnation; each incarnation runs both
//! endpoints' RFC 9293 state machines from what the capture shows them send and receive, and is
//! handed on, finished, when it is over.

pub mod connection;
pub mod endpoint;
pub mod history;
pub mod observe;
pub mod outcome;
pub mod seq;
pub mod state;
pub mod table;
pub mod zeek;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use connection::{Addr, Closer, Connection, Finish};
pub use history::History;
pub use outcome::Outcome;
pub use seq::SeqNumber;
pub use state::{At, State, Timeline, Transition};
pub use table::FlowTable;

/// `value` in a box: `room`, a finished one's box, when there is one (a connection and its
/// Zeek session are too big for the allocator's per-thread cache, and one is made for every
/// connection). Always inlined: otherwise `value` is built apart and copied in by a call to
/// `memcpy` (measured: 0.3 % of the instructions).
#[inline(always)]
fn boxed_in<T>(value: T, room: Option<Box<T>>) -> Box<T> {
    match room {
        Some(mut room) => {
            *room = value;
            room
        }
        None => Box::new(value),
    }
}

/// One side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub const fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    pub const fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Tracking limits and timers, all in capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Maximum segment lifetime; TIME-WAIT lasts twice this (Linux: 60 s in all).
    pub msl_ns: i64,
    /// A connection with no packet for this long is finalised as it stands.
    pub idle_timeout_ns: i64,
    /// A connection that is over (both sides closed, or one in TIME-WAIT) is kept this long for
    /// stragglers (a retransmitted FIN, duplicate RSTs) before its record is emitted; its
    /// TIME-WAIT then continues as a tombstone.
    pub closed_linger_ns: i64,
    /// Most connections held at once; beyond it the longest idle are finalised early.
    pub max_connections: usize,
    /// Zeek's view: its likely server ports (also used for tcplife's own roles when the
    /// handshake was not seen) and whether to split rows on Zeek's timers.
    pub zeek: zeek::ZeekConfig,
}

const SECOND: i64 = 1_000_000_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            msl_ns: 30 * SECOND,
            idle_timeout_ns: 300 * SECOND,
            closed_linger_ns: 2 * SECOND,
            max_connections: 100_000,
            zeek: zeek::ZeekConfig::default(),
        }
    }
}

impl Config {
    /// TIME-WAIT's length: 2×MSL.
    pub const fn time_wait_ns(&self) -> i64 {
        self.msl_ns.saturating_mul(2)
    }
}

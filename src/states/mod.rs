//! States over time: `netstat` at any instant of a capture, state counts through it, and the
//! peak of each state.
//!
//! Everything here reads the connection records as they stream out of the analysis, so it
//! works from each endpoint's recorded timeline (initial state, transitions, final state).
//! What an endpoint counts as, and when ([`presence::stays`]):
//!
//! - It counts from its connection's first packet, in its initial state: a client's
//!   CLOSED → SYN-SENT is at that packet (its SYN), so CLOSED practically never shows; a server
//!   is in LISTEN from the client's SYN until it answers (so LISTEN counts the SYNs waiting for
//!   an answer, not listening sockets).
//! - It stops counting when it reaches CLOSED, or LISTEN again: no connection is left on that
//!   side.
//! - When its record ends with the endpoint still in a state: a TIME-WAIT counts until its
//!   2×MSL timer (the record's `close.time_wait_ends`), or until a new SYN reused the 4-tuple
//!   (the new connection's `time_wait_reuse`), or to the capture's end if that comes first; any
//!   other state counts to the capture's end if the capture ended first, until the idle timeout
//!   after the last packet if tcplife gave up on the connection as idle, else until its last
//!   packet (closed, evicted, replaced by a new incarnation).
//!
//! The count of a state at an instant is the number of endpoints in it then (entered at or
//! before the instant, not yet left). `--every` and the summary peaks keep, per group, only
//! the changes (+1 in, −1 out) on a grid of instants, and sum them at the end
//! ([`grid::Grids`]): memory follows the number of instants (× servers with `--by server`),
//! not the number of connections. A record often comes out before its TIME-WAIT ends: that
//! end waits, as a change not yet due, until the capture reaches it (and never happens if the
//! capture ends first), so what waits is the endpoints in TIME-WAIT at the moment.

mod filter;
mod grid;
mod instant;
mod peaks;
mod presence;
mod render;
mod series;
mod time_arg;

pub use filter::{Filter, parse_state};
pub use grid::Counts;
pub use instant::{EndpointRow, Instant, InstantOptions};
pub use peaks::{
    HostPeak, PeakAt, PeakInput, PortRange, StatePeak, StatePeakSummary, StatePeaks, write_peaks,
};
pub use presence::{Reuse, Stay, Until, final_until, reuse, stays};
pub use render::{
    JsonLines, PLOTTED, Plot, RowWriter, SeriesContext, Table, write_instant_jsonl,
    write_instant_table,
};
pub use series::{MAX_STEPS, Row, Series, SeriesOptions, ServerKey};
pub use time_arg::{TimeArg, parse_time};

/// The capture's first and last packet over all inputs, if any was read.
pub fn capture_span(inputs: &[crate::analyze::InputStats]) -> Option<(i64, i64)> {
    let first = inputs
        .iter()
        .filter_map(|i| i.first)
        .map(|m| m.time_ns)
        .min()?;
    let last = inputs
        .iter()
        .filter_map(|i| i.last)
        .map(|m| m.time_ns)
        .max()?;
    Some((first, last))
}

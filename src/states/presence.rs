//! When an endpoint counts, and in which state: its stays, read off its recorded timeline.

use crate::detect::Details;
use crate::report::record::{ConnectionRecord, StateTimeline};
use crate::track::{Side, State};

/// When a stay ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At this capture time: from then on the endpoint is no longer in the state. It may lie
    /// after the capture's end (a TIME-WAIT timer): then the endpoint counts to the end.
    At(i64),
    /// Not before the capture ended: the endpoint was still in the state then.
    CaptureEnd,
}

/// One endpoint in one state, from `from_ns` (inclusive) until `until` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    pub state: State,
    pub from_ns: i64,
    pub until: Until,
}

pub fn timeline(record: &ConnectionRecord, side: Side) -> &StateTimeline {
    match side {
        Side::Client => &record.states.client,
        Side::Server => &record.states.server,
    }
}

/// The stays of one endpoint, in time order.
///
/// The endpoint counts from its connection's first packet, in its initial state (a server is
/// in LISTEN from the client's SYN until it answers), through every state its timeline
/// records, until it reaches CLOSED or LISTEN again (no connection left on that side) or its
/// record ends (see [`final_until`]). Stays of no length are left out.
pub fn stays(record: &ConnectionRecord, side: Side, idle_timeout_ns: i64) -> Vec<Stay> {
    let mut out = Vec::new();
    stays_into(record, side, idle_timeout_ns, &mut out);
    out
}

/// [`stays`], appended to `out`.
pub fn stays_into(
    record: &ConnectionRecord,
    side: Side,
    idle_timeout_ns: i64,
    out: &mut Vec<Stay>,
) {
    let t = timeline(record, side);
    let mut state = t.initial;
    let mut from = record.first.time_ns;
    let mut counted = true;
    for tr in &t.transitions {
        let at = tr.at.time_ns.max(from);
        if counted && at > from {
            out.push(Stay {
                state,
                from_ns: from,
                until: Until::At(at),
            });
        }
        state = tr.to;
        from = at;
        counted = !tr.to.is_gone();
    }
    if counted {
        let until = match final_until(record, state, idle_timeout_ns) {
            Until::At(t) if t <= from => None,
            other => Some(other),
        };
        out.extend(until.map(|until| Stay {
            state,
            from_ns: from,
            until,
        }));
    }
}

/// Until when an endpoint still in `state` at the end of its record counts:
/// - TIME-WAIT: until its 2×MSL timer (`close.time_wait_ends`), or the capture's end if that
///   comes first; a new incarnation that reuses the 4-tuple ends it earlier ([`reuse`]);
/// - when the capture ended first: until its end (it still was in that state);
/// - when tcplife gave up on the connection as idle: the idle timeout after its last packet;
/// - otherwise (closed, evicted, replaced by a new incarnation): its last packet.
pub fn final_until(record: &ConnectionRecord, state: State, idle_timeout_ns: i64) -> Until {
    match (state, record.close.time_wait_ends, record.finished_by) {
        (State::TimeWait, Some(ends), _) => Until::At(ends.time_ns),
        (_, _, "capture_end") => Until::CaptureEnd,
        (_, _, "idle_timeout") => Until::At(record.last.time_ns.saturating_add(idle_timeout_ns)),
        _ => Until::At(record.last.time_ns),
    }
}

/// A TIME-WAIT cut short: the new incarnation's SYN reused the 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// The earlier connection whose endpoint was in TIME-WAIT.
    pub previous: u64,
    /// That endpoint, by its role in this (new) connection.
    pub side: Side,
    /// The new SYN: TIME-WAIT ended here...
    pub at_ns: i64,
    /// ...instead of at its timer.
    pub timer_ns: i64,
}

/// The TIME-WAIT this connection's SYN ended, read off its `time_wait_reuse` anomaly. The side
/// that reconnected from TIME-WAIT is this connection's client; otherwise the endpoint in
/// TIME-WAIT is this connection's server. A SYN dated before the TIME-WAIT began (captures
/// read out of time order) ended nothing.
pub fn reuse(record: &ConnectionRecord) -> Option<Reuse> {
    let syn = record.handshake.syn.as_ref()?.time_ns;
    record.anomalies.iter().find_map(|a| match &a.details {
        Details::TimeWaitReuse {
            previous_incarnation,
            gap_ns,
            time_wait_ns,
            opened_by,
            ..
        } if *gap_ns >= 0 => Some(Reuse {
            previous: *previous_incarnation,
            side: if *opened_by == "former_active_closer" {
                Side::Client
            } else {
                Side::Server
            },
            at_ns: syn,
            timer_ns: syn - gap_ns + time_wait_ns,
        }),
        _ => None,
    })
}

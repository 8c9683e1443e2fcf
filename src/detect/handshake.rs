//! Anomalies of the opening handshake.

use super::{Anomaly, Details, DetectConfig, Kind};
use crate::track::endpoint::Control;
use crate::track::{At, Connection, Outcome, Side};

/// The SYN was answered by a RST (a closed port, or a firewall rejecting).
pub fn refused(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    if conn.outcome() != Outcome::Refused {
        return None;
    }
    let reset = conn.reset?;
    let syn = conn.end(Side::Client).syn.as_ref()?;
    Some(
        Anomaly::new(Kind::Refused, Some(Side::Server), reset.at, attempts(syn))
            .with_packets([syn.first.packet]),
    )
}

/// SYNs with no SYN-ACK or RST by the end.
pub fn unanswered_syn(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    if conn.outcome() != Outcome::Unanswered {
        return None;
    }
    let syn = conn.end(Side::Client).syn.as_ref()?;
    Some(copies(Kind::UnansweredSyn, Side::Client, syn))
}

/// The server answered with SYN-ACK (it is in SYN-RECEIVED) but the completing ACK never came.
pub fn half_open(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let failed = match conn.outcome() {
        Outcome::HalfOpen => true,
        Outcome::Reset => !conn.handshake_done(),
        _ => false,
    };
    if !failed {
        return None;
    }
    let syn_ack = conn.end(Side::Server).syn.as_ref()?;
    Some(copies(Kind::HalfOpen, Side::Server, syn_ack))
}

fn attempts(c: &Control) -> Details {
    Details::Attempts {
        attempts: c.retransmissions + 1,
        intervals_ns: c.intervals_ns(),
    }
}

/// An anomaly at a control segment's first copy, with every copy as evidence.
fn copies(kind: Kind, side: Side, c: &Control) -> Anomaly {
    Anomaly::new(kind, Some(side), c.first, attempts(c))
        .with_packets(c.copies.iter().map(|a| a.packet))
}

/// A bare SYN with a new ISN while the previous incarnation was not closed: the old connection
/// was abandoned (the peer restarted and reconnected).
pub fn syn_in_open_connection(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let previous = conn.previous?;
    let [client, server] = previous.still_open?;
    let syn = conn.end(Side::Client).syn.as_ref()?;
    Some(Anomaly::new(
        Kind::SynInOpenConnection,
        Some(Side::Client),
        syn.first,
        Details::SynInOpenConnection {
            previous_incarnation: previous.id,
            previous_client_state: client,
            previous_server_state: server,
        },
    ))
}

/// Both sides sent a bare SYN before any SYN-ACK.
pub fn simultaneous_open(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    if !conn.simultaneous_open {
        return None;
    }
    let at = conn
        .end(Side::Server)
        .syn
        .as_ref()
        .map_or(conn.first, |s| s.first);
    Some(Anomaly::new(
        Kind::SimultaneousOpen,
        None,
        at,
        Details::None {},
    ))
}

/// Payload on a SYN: TCP Fast Open, or a malformed stack.
pub fn syn_with_data(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (side, at) = first_of(|s| conn.end(s).notes().syn_data)?;
    Some(Anomaly::new(
        Kind::SynWithData,
        Some(side),
        at,
        Details::None {},
    ))
}

/// A SYN-ACK acknowledging something other than the client's ISN + 1.
pub fn handshake_ack_mismatch(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let at = conn.handshake_ack_mismatch?;
    Some(Anomaly::new(
        Kind::HandshakeAckMismatch,
        Some(Side::Server),
        at,
        Details::None {},
    ))
}

/// The earlier of a per-side observation on both sides.
pub(super) fn first_of(f: impl Fn(Side) -> Option<At>) -> Option<(Side, At)> {
    [Side::Client, Side::Server]
        .into_iter()
        .filter_map(|s| f(s).map(|at| (s, at)))
        .min_by_key(|(_, at)| at.ns)
}

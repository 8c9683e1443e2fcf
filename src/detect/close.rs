//! Anomalies of the close and after it: the four the product is named for and their kin.

use super::handshake::first_of;
use super::{Anomaly, Details, DetectConfig, Kind};
use crate::track::{Closer, Connection, Outcome, SeqNumber, Side, State};

/// Both FINs were sent and the last was never acknowledged (its sender is left in LAST-ACK or
/// CLOSING), or was acknowledged only after being retransmitted (`late`).
pub fn missing_final_ack(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (client_fin, server_fin) = (
        conn.end(Side::Client).fin.as_ref()?,
        conn.end(Side::Server).fin.as_ref()?,
    );
    let (waiting, fin) = if server_fin.first.ns >= client_fin.first.ns {
        (Side::Server, server_fin)
    } else {
        (Side::Client, client_fin)
    };
    let details = |late, delay_ns| Details::MissingFinalAck {
        waiting_state: conn.state(waiting),
        fin_retransmissions: fin.retransmissions,
        late,
        delay_ns,
    };
    let evidence = fin.copies.iter().map(|a| a.packet);
    match conn.final_ack {
        None if conn.outcome() == Outcome::ClosedUnacked => Some(
            Anomaly::new(
                Kind::MissingFinalAck,
                Some(waiting),
                fin.first,
                details(false, None),
            )
            .with_packets(evidence),
        ),
        Some(ack) if fin.retransmissions > 0 => Some(
            Anomaly::new(
                Kind::MissingFinalAck,
                Some(waiting),
                fin.first,
                details(true, Some(ack.ns - fin.first.ns)),
            )
            .with_packets(evidence.chain([ack.packet])),
        ),
        _ => None,
    }
}

/// A side received its peer's FIN (CLOSE-WAIT) and sent its own FIN more than the threshold
/// later, or not at all while it was watched for longer than that.
pub fn long_close_wait(conn: &Connection, config: &DetectConfig) -> Option<Anomaly> {
    [Side::Client, Side::Server]
        .into_iter()
        .find_map(|side| long_close_wait_of(conn, side, config))
}

fn long_close_wait_of(conn: &Connection, side: Side, config: &DetectConfig) -> Option<Anomaly> {
    let transitions = conn.end(side).timeline.transitions();
    let entered = transitions.iter().find(|t| t.to == State::CloseWait)?;
    let left = transitions
        .iter()
        .find(|t| t.from == State::CloseWait && t.at.ns >= entered.at.ns);
    let end_ns = left.map_or(conn.finished_at_ns, |t| t.at.ns);
    let duration_ns = end_ns - entered.at.ns;
    if duration_ns <= config.close_wait_ns {
        return None;
    }
    let end = conn.end(side);
    Some(
        Anomaly::new(
            Kind::LongCloseWait,
            Some(side),
            entered.at,
            Details::LongCloseWait {
                duration_ns,
                threshold_ns: config.close_wait_ns,
                open_at_end: left.is_none(),
                bytes_sent_in_close_wait: end.payload_in_close_wait
                    + end
                        .payload_at_close_wait
                        .map_or(0, |before| end.sent.payload_bytes.saturating_sub(before)),
                peer_state: State::FinWait2,
            },
        )
        .with_packets([left.and_then(|t| t.at.packet)]),
    )
}

/// A new incarnation began with a bare SYN less than 2×MSL after the previous incarnation's
/// active closer sent its final ACK (entered TIME-WAIT).
pub fn time_wait_reuse(conn: &Connection, config: &DetectConfig) -> Option<Anomaly> {
    let previous = conn.previous?;
    let (tw_side, tw_from) = previous.time_wait?;
    let syn = conn.end(Side::Client).syn.as_ref()?;
    let gap_ns = syn.first.ns - tw_from.ns;
    if gap_ns >= config.time_wait_ns {
        return None;
    }
    // The old side that the new client was (same address and port).
    let old_side = if previous.old_client == conn.client {
        Side::Client
    } else {
        Side::Server
    };
    let isn_beyond = previous
        .next_seq
        .get(old_side.index())
        .copied()
        .flatten()
        .is_some_and(|old| syn.seq.after(old));
    let ts_increased = match (
        conn.end(Side::Client).first_tsval,
        previous.last_tsval.get(old_side.index()).copied().flatten(),
    ) {
        (Some(new), Some(old)) => SeqNumber::new(new).after(SeqNumber::new(old)),
        _ => false,
    };
    let safe_because = if isn_beyond {
        Some("isn_beyond_old_sequence_space")
    } else if ts_increased {
        Some("timestamps_increased")
    } else {
        None
    };
    Some(
        Anomaly::new(
            Kind::TimeWaitReuse,
            Some(Side::Client),
            syn.first,
            Details::TimeWaitReuse {
                previous_incarnation: previous.id,
                gap_ns,
                time_wait_ns: config.time_wait_ns,
                opened_by: if old_side == tw_side {
                    "former_active_closer"
                } else {
                    "former_passive_closer"
                },
                safe: safe_because.is_some(),
                safe_because,
            },
        )
        .with_packets([tw_from.packet]),
    )
}

/// The connection ended by a RST after the handshake instead of the FIN exchange.
pub fn rst_teardown(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let reset = conn.reset?;
    if conn.outcome() != Outcome::Reset || !conn.handshake_done() {
        return None;
    }
    let cause = if conn.end(reset.sender).fin.is_some() {
        "after_own_fin"
    } else if reset.receiver_unacked > 0 {
        "close_with_unread_data"
    } else {
        "abort"
    };
    Some(Anomaly::new(
        Kind::RstTeardown,
        Some(reset.sender),
        reset.at,
        Details::RstTeardown {
            sender: reset.sender.name(),
            sender_state: reset.sender_state,
            receiver_state: reset.receiver_state,
            cause,
            in_window: true,
            sender_unacked_bytes: reset.sender_unacked,
            receiver_unacked_bytes: reset.receiver_unacked,
        },
    ))
}

/// Each side sent its FIN before it had acknowledged the other's: both pass CLOSING.
pub fn simultaneous_close(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    if conn.active_closer != Some(Closer::Simultaneous) {
        return None;
    }
    let (_, at) = first_of(|s| conn.end(s).fin.as_ref().map(|f| f.first))?;
    let second = conn
        .end(Side::Client)
        .fin
        .as_ref()
        .zip(conn.end(Side::Server).fin.as_ref());
    Some(
        Anomaly::new(Kind::SimultaneousClose, None, at, Details::None {}).with_packets(
            second
                .map(|(c, s)| [c.first.packet, s.first.packet])
                .into_iter()
                .flatten(),
        ),
    )
}

/// A side sent payload beyond the sequence number of its own FIN.
pub fn data_after_fin(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (side, at) = first_of(|s| conn.end(s).notes().data_after_fin)?;
    Some(Anomaly::new(
        Kind::DataAfterFin,
        Some(side),
        at,
        Details::None {},
    ))
}

/// The active closer, in TIME-WAIT, was killed by a RST (the RFC 1337 hazard).
pub fn time_wait_assassination(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let reset = conn.reset?;
    if reset.receiver_state != State::TimeWait {
        return None;
    }
    Some(Anomaly::new(
        Kind::TimeWaitAssassination,
        Some(reset.sender.peer()),
        reset.at,
        Details::RstSender {
            rst_sender: reset.sender.name(),
        },
    ))
}

/// A RST after both FINs were acknowledged: harmless, often a late reply to a retransmission.
pub fn rst_after_close(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (sender, at) = conn.rst_after_close?;
    if conn
        .reset
        .is_some_and(|r| r.receiver_state == State::TimeWait)
    {
        return None;
    }
    Some(Anomaly::new(
        Kind::RstAfterClose,
        Some(sender),
        at,
        Details::RstSender {
            rst_sender: sender.name(),
        },
    ))
}

//! One line per anomaly, as a ladder writes it where it happens: what the capture shows, in
//! plain words, with the numbers that matter ("final ACK never seen: server stuck in
//! LAST-ACK"). The definitions behind each kind are in docs/anomalies.md.

use crate::detect::{Anomaly, Details, Kind};
use crate::report::record::ConnectionRecord;
use crate::time::Human;

/// The note for anomaly `a` of connection `r`.
pub fn note(a: &Anomaly, r: &ConnectionRecord) -> String {
    let side = a.side.unwrap_or("a side");
    match &a.details {
        Details::MissingFinalAck {
            waiting_state,
            fin_retransmissions,
            late,
            delay_ns,
        } => missing_final_ack(side, *waiting_state, *fin_retransmissions, *late, *delay_ns),
        Details::LongCloseWait {
            duration_ns,
            threshold_ns,
            open_at_end,
            ..
        } => format!(
            "{side} in CLOSE-WAIT {}{} (over {}): its application did not close the socket",
            if *open_at_end { "at least " } else { "for " },
            Human(*duration_ns),
            Human(*threshold_ns)
        ),
        Details::TimeWaitReuse {
            previous_incarnation,
            gap_ns,
            safe,
            ..
        } => format!(
            "4-tuple reused {} after #{previous_incarnation} entered TIME-WAIT ({})",
            Human(*gap_ns),
            if *safe { "safely" } else { "unsafe" }
        ),
        Details::RstTeardown {
            sender,
            sender_state,
            cause,
            ..
        } => format!(
            "reset by the {sender} in {sender_state}: {}",
            rst_cause(cause)
        ),
        Details::Attempts { attempts, .. } => attempts_note(a.kind, *attempts),
        Details::SynInOpenConnection {
            previous_incarnation,
            previous_client_state,
            previous_server_state,
        } => format!(
            "new SYN while #{previous_incarnation} was open (client {previous_client_state}, \
             server {previous_server_state})"
        ),
        Details::RstSender { rst_sender } if a.kind == Kind::TimeWaitAssassination => {
            format!("RST from the {rst_sender} ended TIME-WAIT early (RFC 1337 hazard)")
        }
        Details::RstSender { rst_sender } => {
            format!("RST from the {rst_sender} after a clean close")
        }
        Details::ZeroWindow {
            periods, total_ns, ..
        } => format!(
            "{side} advertised a zero window {periods} time(s), {} in all",
            Human(*total_ns)
        ),
        Details::Keepalive { probes, answered } => {
            format!("{probes} keep-alive probe(s), {answered} answered")
        }
        Details::KeepaliveTimeout {
            unanswered_probes, ..
        } => format!("{unanswered_probes} keep-alive probes unanswered: peer or path gone"),
        Details::InvalidFlags { flags, count } => {
            format!("invalid flags {flags} ({count} segment(s))")
        }
        Details::ExcessiveRetransmission {
            retransmitted_segments,
            data_segments,
            ratio,
            ..
        } => format!(
            "{side} retransmitted {retransmitted_segments} of {data_segments} data segments \
             ({:.0} %)",
            ratio * 100.0
        ),
        Details::Bytes { bytes } if a.kind == Kind::AckOfUnseenData => {
            format!("ACK of {} the capture never saw", super::bytes(*bytes))
        }
        Details::Bytes { bytes } => format!(
            "{} sent by the {side} never captured (capture drops)",
            super::bytes(*bytes)
        ),
        Details::None {} => plain(a.kind, r).to_owned(),
        _ => a.kind.name().to_owned(),
    }
}

fn missing_final_ack(
    side: &str,
    waiting: crate::track::State,
    retransmissions: u32,
    late: bool,
    delay_ns: Option<i64>,
) -> String {
    if late {
        let delay = delay_ns.map(|d| format!(", {} after the FIN", Human(d)));
        return format!(
            "final ACK only after {retransmissions} FIN retransmission(s){}",
            delay.unwrap_or_default()
        );
    }
    let sent = if retransmissions > 0 {
        format!(" (its FIN sent {} times)", retransmissions + 1)
    } else {
        String::new()
    };
    format!("final ACK never seen: {side} stuck in {waiting}{sent}")
}

fn rst_cause(cause: &str) -> &'static str {
    match cause {
        "close_with_unread_data" => "it closed with data unread",
        "after_own_fin" => "more data came after its own FIN",
        _ => "an abort (SO_LINGER 0, a crash or a kill)",
    }
}

fn attempts_note(kind: Kind, attempts: u32) -> String {
    match kind {
        Kind::Refused => format!("refused: RST in answer to the SYN ({attempts} SYN(s))"),
        Kind::UnansweredSyn => format!("SYN never answered ({attempts} sent)"),
        _ => format!("handshake never completed: the SYN-ACK ({attempts} sent) never acknowledged"),
    }
}

/// Kinds whose details are empty.
fn plain(kind: Kind, r: &ConnectionRecord) -> &'static str {
    match kind {
        Kind::SimultaneousOpen => "simultaneous open: both sides sent SYN",
        Kind::SynWithData => "data on a SYN (TCP Fast Open?)",
        Kind::HandshakeAckMismatch => "the SYN-ACK acknowledged the wrong sequence number",
        Kind::SimultaneousClose => "simultaneous close: the FINs crossed, both sides in CLOSING",
        Kind::DataAfterFin => "data sent after the sender's own FIN",
        Kind::Midstream if r.roles_from == "ports" => {
            "handshake not captured: client and server told apart by port"
        }
        Kind::Midstream => "handshake not captured",
        _ => kind.name(),
    }
}

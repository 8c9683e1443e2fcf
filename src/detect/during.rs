//! Anomalies while the connection is open: stalled readers, keep-alives, odd flags and
//! retransmission storms.

use super::{Anomaly, Details, DetectConfig, Kind};
use crate::decode::TcpFlags;
use crate::track::{Connection, Side};

/// A side advertised a zero receive window: its application stopped reading.
pub fn zero_window(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let side = [Side::Client, Side::Server]
        .into_iter()
        .filter(|&s| conn.end(s).notes().zero_window.periods > 0)
        .max_by_key(|&s| {
            (
                conn.end(s).notes().zero_window.total_ns,
                std::cmp::Reverse(s),
            )
        })?;
    let z = conn.end(side).notes().zero_window;
    Some(Anomaly::new(
        Kind::ZeroWindow,
        Some(side),
        z.first?,
        Details::ZeroWindow {
            periods: z.periods,
            total_ns: z.total_ns,
            longest_ns: z.longest_ns,
            window_probes: conn.end(side.peer()).sent.window_probes,
        },
    ))
}

/// Keep-alive probes: 0 or 1 octet at the sender's next sequence number − 1.
pub fn keepalive(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let side = [Side::Client, Side::Server]
        .into_iter()
        .find(|&s| conn.end(s).notes().probes.sent > 0)?;
    let p = conn.end(side).notes().probes;
    Some(Anomaly::new(
        Kind::Keepalive,
        Some(side),
        p.first?,
        Details::Keepalive {
            probes: p.sent,
            answered: p.answered,
        },
    ))
}

/// Keep-alive probes went unanswered (at least three in a row) until the connection or the
/// capture ended: the peer or the path is gone.
pub fn keepalive_timeout(conn: &Connection, config: &DetectConfig) -> Option<Anomaly> {
    let side = [Side::Client, Side::Server]
        .into_iter()
        .find(|&s| conn.end(s).notes().probes.unanswered_run >= config.keepalive_timeout_probes)?;
    let p = conn.end(side).notes().probes;
    Some(Anomaly::new(
        Kind::KeepaliveTimeout,
        Some(side),
        p.last?,
        Details::KeepaliveTimeout {
            unanswered_probes: p.unanswered_run,
            ended: conn.outcome().name(),
        },
    ))
}

/// SYN+FIN, SYN+RST, no flags at all, or FIN without ACK on a synchronized connection.
pub fn invalid_flags(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (side, at, flags) = conn.invalid_flags?;
    Some(Anomaly::new(
        Kind::InvalidFlags,
        Some(side),
        at,
        Details::InvalidFlags {
            flags: TcpFlags(flags).to_string(),
            count: conn.invalid_flags_count,
        },
    ))
}

pub fn excessive_retransmission_client(
    conn: &Connection,
    config: &DetectConfig,
) -> Option<Anomaly> {
    excessive_retransmission(conn, Side::Client, config)
}

pub fn excessive_retransmission_server(
    conn: &Connection,
    config: &DetectConfig,
) -> Option<Anomaly> {
    excessive_retransmission(conn, Side::Server, config)
}

/// A direction retransmitted more than the ratio (10 %) of its data segments, over at least
/// the minimum number (10) of data segments.
fn excessive_retransmission(
    conn: &Connection,
    side: Side,
    config: &DetectConfig,
) -> Option<Anomaly> {
    let sent = conn.end(side).sent;
    if sent.data_segments < config.retransmission_min_segments {
        return None;
    }
    let ratio = sent.retransmitted_segments as f64 / sent.data_segments as f64;
    if ratio <= config.retransmission_ratio {
        return None;
    }
    Some(Anomaly::new(
        Kind::ExcessiveRetransmission,
        Some(side),
        conn.end(side)
            .notes()
            .first_retransmission
            .unwrap_or(conn.first),
        Details::ExcessiveRetransmission {
            retransmitted_segments: sent.retransmitted_segments,
            data_segments: sent.data_segments,
            ratio: (ratio * 1000.0).round() / 1000.0,
            retransmitted_bytes: sent.retransmitted_bytes,
        },
    ))
}

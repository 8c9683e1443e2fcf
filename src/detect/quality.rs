//! Capture-quality findings, so users don't blame the network for the capture.

use super::{Anomaly, Details, DetectConfig, Kind};
use crate::track::{At, Connection, Side};

/// The handshake was not captured: roles were guessed from ports.
pub fn midstream(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    conn.midstream()
        .then(|| Anomaly::new(Kind::Midstream, None, conn.first, Details::None {}))
}

pub fn segment_not_captured_client(conn: &Connection, c: &DetectConfig) -> Option<Anomaly> {
    segment_not_captured(conn, Side::Client, c)
}

pub fn segment_not_captured_server(conn: &Connection, c: &DetectConfig) -> Option<Anomaly> {
    segment_not_captured(conn, Side::Server, c)
}

/// A hole in what `side` sent that its peer acknowledged: the data crossed the wire but not
/// the capture.
fn segment_not_captured(conn: &Connection, side: Side, _: &DetectConfig) -> Option<Anomaly> {
    let acked = conn.end(side.peer()).highest_ack?;
    let bytes = conn.end(side).notes().holes.missing_below(acked);
    (bytes > 0).then(|| {
        Anomaly::new(
            Kind::SegmentNotCaptured,
            Some(side),
            conn.end(side).notes().first_gap.unwrap_or(conn.first),
            Details::Bytes { bytes },
        )
    })
}

/// An ACK of data beyond anything the capture showed the peer sending.
pub fn ack_of_unseen_data(conn: &Connection, _: &DetectConfig) -> Option<Anomaly> {
    let (acker, (at, bytes)) = [Side::Client, Side::Server]
        .into_iter()
        .filter_map(|s| conn.end(s).notes().ack_of_unseen.map(|x| (s, x)))
        .min_by_key(|(_, (at, _)): &(Side, (At, u32))| at.ns)?;
    Some(Anomaly::new(
        Kind::AckOfUnseenData,
        Some(acker.peer()),
        at,
        Details::Bytes {
            bytes: u64::from(bytes),
        },
    ))
}

/// Findings about a whole input rather than one connection: clocks going backwards and
/// packets cut by the snapshot length.
pub fn capture_anomalies(
    file: &str,
    backwards: u64,
    first_backwards: Option<At>,
    truncated: u64,
    first_truncated: Option<At>,
) -> Vec<Anomaly> {
    let mut found = Vec::new();
    if let (true, Some(at)) = (backwards > 0, first_backwards) {
        found.push(Anomaly::new(
            Kind::TimestampsOutOfOrder,
            None,
            at,
            Details::InputCount {
                file: file.to_owned(),
                count: backwards,
            },
        ));
    }
    if let (true, Some(at)) = (truncated > 0, first_truncated) {
        found.push(Anomaly::new(
            Kind::TruncatedPackets,
            None,
            at,
            Details::InputCount {
                file: file.to_owned(),
                count: truncated,
            },
        ));
    }
    found
}

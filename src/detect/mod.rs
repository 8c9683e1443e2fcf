//! Stage 4: connections → anomalies.
//!
//! One small detector per anomaly kind, each a function from a finished connection (its facts,
//! timelines and observations) to at most one [`Anomaly`]. Detectors only read: states change
//! in the tracker alone. The definitions as implemented, their evidence and blind spots are in
//! `docs/anomalies.md`.

mod close;
mod during;
pub mod flood;
mod handshake;
mod quality;
#[cfg(test)]
mod tests;

pub use flood::FloodDetector;
pub use quality::capture_anomalies;

use crate::inline::InlineVec;
use crate::time::Rfc3339;
use crate::track::{At, Connection, Side, State};
use serde::Serialize;
use std::fmt;

/// How much an anomaly matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Alert,
}

impl Severity {
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Alert => "alert",
        }
    }
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $severity:ident;)*) => {
        /// Every kind of anomaly, named as in the output (stable snake_case).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind { $($variant),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            pub const fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name),* }
            }

            /// The severity an anomaly of this kind carries.
            pub const fn severity(self) -> Severity {
                match self { $(Kind::$variant => Severity::$severity),* }
            }
        }
    };
}

kinds! {
    MissingFinalAck => "missing_final_ack", Warning;
    LongCloseWait => "long_close_wait", Warning;
    TimeWaitReuse => "time_wait_reuse", Warning;
    RstTeardown => "rst_teardown", Warning;
    Refused => "refused", Info;
    UnansweredSyn => "unanswered_syn", Warning;
    HalfOpen => "half_open", Warning;
    SynFlood => "syn_flood", Alert;
    SynInOpenConnection => "syn_in_open_connection", Warning;
    SimultaneousOpen => "simultaneous_open", Info;
    SynWithData => "syn_with_data", Info;
    HandshakeAckMismatch => "handshake_ack_mismatch", Warning;
    SimultaneousClose => "simultaneous_close", Info;
    DataAfterFin => "data_after_fin", Warning;
    TimeWaitAssassination => "time_wait_assassination", Warning;
    RstAfterClose => "rst_after_close", Info;
    ZeroWindow => "zero_window", Info;
    Keepalive => "keepalive", Info;
    KeepaliveTimeout => "keepalive_timeout", Warning;
    InvalidFlags => "invalid_flags", Warning;
    ExcessiveRetransmission => "excessive_retransmission", Warning;
    Midstream => "midstream", Info;
    SegmentNotCaptured => "segment_not_captured", Info;
    AckOfUnseenData => "ack_of_unseen_data", Info;
    TimestampsOutOfOrder => "timestamps_out_of_order", Warning;
    TruncatedPackets => "truncated_packets", Info;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown anomaly kind `{s}` (see docs/anomalies.md)"))
    }
}

/// One finding: what, how bad, about which side, when, the packets that prove it, and the
/// details particular to its kind.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub kind: Kind,
    pub severity: Severity,
    /// "client" or "server": the side the finding is about; absent when it is about both or
    /// about the capture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<&'static str>,
    pub time_ns: i64,
    pub time: Rfc3339,
    /// Packet numbers (in the run's numbering) that show it, first the one at `time`. Kept in
    /// place: nearly every anomaly names one to four, and a connection that reuses a 4-tuple
    /// (most of them, on a busy client) has one.
    pub packets: InlineVec<u64, 4>,
    pub details: Details,
}

impl Anomaly {
    pub fn new(kind: Kind, side: Option<Side>, at: At, details: Details) -> Self {
        Anomaly {
            kind,
            severity: kind.severity(),
            side: side.map(Side::name),
            time_ns: at.ns,
            time: Rfc3339(at.ns),
            packets: InlineVec::default(),
            details,
        }
        .with_packets([at.packet])
    }

    /// Adds more evidence (packets), keeping the list short and free of repeats.
    #[must_use]
    pub fn with_packets(mut self, more: impl IntoIterator<Item = Option<u64>>) -> Self {
        const MAX_EVIDENCE: usize = 16;
        for p in more.into_iter().flatten() {
            let packets = self.packets.as_slice();
            if packets.len() < MAX_EVIDENCE && !packets.contains(&p) {
                self.packets.push(p);
            }
        }
        self
    }
}

/// What each kind says beyond kind, side and time. Serialised as a plain object.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Details {
    MissingFinalAck {
        /// The side still waiting for the ACK of its FIN, and its state.
        waiting_state: State,
        fin_retransmissions: u32,
        /// Acknowledged in the end, but only after the FIN was retransmitted.
        late: bool,
        /// From the FIN's first copy to its ACK, when it came.
        delay_ns: Option<i64>,
    },
    LongCloseWait {
        duration_ns: i64,
        threshold_ns: i64,
        /// Still in CLOSE-WAIT when the connection's record ended: the duration is a lower bound.
        open_at_end: bool,
        /// Payload this side sent while in CLOSE-WAIT (a half-close in use, not a leak, if large).
        bytes_sent_in_close_wait: u64,
        /// The peer spent the same interval in this state (after the ACK of its FIN).
        peer_state: State,
    },
    TimeWaitReuse {
        previous_incarnation: u64,
        /// From the final ACK that began TIME-WAIT to the new SYN.
        gap_ns: i64,
        time_wait_ns: i64,
        /// "former_active_closer" (the side that was in TIME-WAIT reconnected) or
        /// "former_passive_closer".
        opened_by: &'static str,
        /// RFC 1122 §4.2.2.13 / RFC 6191: acceptable if the new ISN is beyond the old
        /// connection's sequence space or the TSval increased.
        safe: bool,
        safe_because: Option<&'static str>,
    },
    RstTeardown {
        sender: &'static str,
        sender_state: State,
        receiver_state: State,
        /// "abort" (SO_LINGER 0 or a crash), "close_with_unread_data" (the sender closed while
        /// data it had not read was waiting), "after_own_fin" (the sender had closed and got
        /// more data).
        cause: &'static str,
        in_window: bool,
        sender_unacked_bytes: u32,
        receiver_unacked_bytes: u32,
    },
    Attempts {
        /// Copies sent, the first included.
        attempts: u32,
        /// Gaps between successive copies (Linux backs off 1, 2, 4 ... s).
        intervals_ns: Vec<i64>,
    },
    SynInOpenConnection {
        previous_incarnation: u64,
        previous_client_state: State,
        previous_server_state: State,
    },
    ZeroWindow {
        periods: u32,
        total_ns: i64,
        longest_ns: i64,
        /// Probes the peer sent into the closed window.
        window_probes: u64,
    },
    Keepalive {
        probes: u64,
        answered: u64,
    },
    KeepaliveTimeout {
        unanswered_probes: u32,
        /// How the connection ended: its outcome.
        ended: &'static str,
    },
    InvalidFlags {
        flags: String,
        count: u32,
    },
    ExcessiveRetransmission {
        retransmitted_segments: u64,
        data_segments: u64,
        ratio: f64,
        retransmitted_bytes: u64,
    },
    Bytes {
        bytes: u64,
    },
    RstSender {
        rst_sender: &'static str,
    },
    /// A RST into TIME-WAIT after the connection's record was emitted.
    LateReset {
        connection: u64,
        rst_sender: &'static str,
    },
    SynFlood {
        server: String,
        start_ns: i64,
        start: Rfc3339,
        end_ns: i64,
        end: Rfc3339,
        /// Handshakes that never completed within the episode.
        incomplete_handshakes: u64,
        /// All SYNs to the server in the same span (approximate to 100 ms buckets).
        syns: u64,
        distinct_sources: u64,
    },
    InputCount {
        file: String,
        count: u64,
    },
    None {},
}

/// Thresholds of the detectors, with the defaults of docs/anomalies.md.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectConfig {
    pub close_wait_ns: i64,
    /// 2×MSL.
    pub time_wait_ns: i64,
    pub flood_window_ns: i64,
    pub flood_count: u64,
    pub flood_ratio: f64,
    pub retransmission_ratio: f64,
    pub retransmission_min_segments: u64,
    pub keepalive_timeout_probes: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            close_wait_ns: 5_000_000_000,
            time_wait_ns: 60_000_000_000,
            flood_window_ns: 1_000_000_000,
            flood_count: 100,
            flood_ratio: 0.8,
            retransmission_ratio: 0.10,
            retransmission_min_segments: 10,
            keepalive_timeout_probes: 3,
        }
    }
}

type Detector = fn(&Connection, &DetectConfig) -> Option<Anomaly>;

/// Every per-connection detector, in the order their findings are listed for equal times.
const DETECTORS: &[Detector] = &[
    handshake::refused,
    handshake::unanswered_syn,
    handshake::half_open,
    handshake::syn_in_open_connection,
    handshake::simultaneous_open,
    handshake::syn_with_data,
    handshake::handshake_ack_mismatch,
    close::missing_final_ack,
    close::long_close_wait,
    close::time_wait_reuse,
    close::rst_teardown,
    close::simultaneous_close,
    close::data_after_fin,
    close::time_wait_assassination,
    close::rst_after_close,
    during::zero_window,
    during::keepalive,
    during::keepalive_timeout,
    during::invalid_flags,
    during::excessive_retransmission_client,
    during::excessive_retransmission_server,
    quality::midstream,
    quality::segment_not_captured_client,
    quality::segment_not_captured_server,
    quality::ack_of_unseen_data,
];

/// All anomalies of a finished connection, in time order.
pub fn detect(conn: &Connection, config: &DetectConfig) -> Vec<Anomaly> {
    let mut found: Vec<Anomaly> = DETECTORS.iter().filter_map(|d| d(conn, config)).collect();
    found.sort_by_key(|a| (a.time_ns, a.kind));
    found
}

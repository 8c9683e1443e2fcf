//! The connection record: everything tcplife says about one incarnation, built once when the
//! connection is finalised. Field names are the public JSON contract (see
//! `schema/tcplife.schema.json`).

use super::time::Rfc3339;
use super::zeek::ZeekRecord;
use crate::detect::Anomaly;
use crate::track::connection::{Addr, Closer, Connection, Finish, RolesFrom};
use crate::track::endpoint::{Announced, Control, Endpoint, Sent};
use crate::track::{At, History, Outcome, Side, State, Timeline};
use serde::Serialize;
use std::net::IpAddr;

/// A moment in the capture: integer nanoseconds, the same as RFC 3339, and the packet that
/// showed it (absent for a timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Moment {
    pub time_ns: i64,
    pub time: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet: Option<u64>,
}

impl From<At> for Moment {
    fn from(at: At) -> Self {
        Moment {
            time_ns: at.ns,
            time: Rfc3339(at.ns),
            packet: at.packet,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EndpointAddr {
    pub ip: IpAddr,
    pub port: u16,
}

impl From<Addr> for EndpointAddr {
    fn from(a: Addr) -> Self {
        EndpointAddr {
            ip: a.ip,
            port: a.port,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    /// "connection" in the JSON-lines stream; absent in the single document.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub id: u64,
    pub client: EndpointAddr,
    pub server: EndpointAddr,
    pub ip_version: u8,
    pub first: Moment,
    pub last: Moment,
    pub duration_ns: i64,
    pub outcome: Outcome,
    pub midstream: bool,
    /// How the roles were decided: "syn", "syn_ack" or "ports".
    pub roles_from: &'static str,
    /// Why the record was emitted when it was.
    pub finished_by: &'static str,
    /// Zeek's `conn_state` and `history` for this connection (its first row when
    /// `--zeek-timers` split it; see `zeek`).
    pub conn_state: &'static str,
    pub history: History,
    /// Zeek's conn.log row(s) for this connection.
    pub zeek: ZeekRecord,
    pub handshake: Handshake,
    pub client_sent: DirectionStats,
    pub server_sent: DirectionStats,
    pub close: Close,
    pub states: SideStates,
    pub previous_incarnation: Option<u64>,
    pub anomalies: Vec<Anomaly>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// The client's first SYN.
    pub syn: Option<Moment>,
    /// The server's first SYN-ACK.
    pub syn_ack: Option<Moment>,
    /// The client's ACK completing the handshake.
    pub ack: Option<Moment>,
    /// From the SYN copy the SYN-ACK answered to the SYN-ACK: the path from the capture point
    /// to the server and back.
    pub server_rtt_ns: Option<i64>,
    /// From the SYN-ACK to the completing ACK: the path from the capture point to the client
    /// and back.
    pub client_rtt_ns: Option<i64>,
    pub rtt_ns: Option<i64>,
    pub client_isn: Option<u32>,
    pub server_isn: Option<u32>,
    pub client_options: Option<Options>,
    pub server_options: Option<Options>,
    pub syn_retransmissions: u32,
    pub syn_ack_retransmissions: u32,
    pub simultaneous_open: bool,
    /// A SYN-ACK acknowledging something other than the client's ISN + 1.
    pub ack_mismatch: Option<Moment>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
}

impl From<Announced> for Options {
    fn from(a: Announced) -> Self {
        Options {
            mss: a.mss,
            window_scale: a.window_scale,
            sack_permitted: a.sack_permitted,
            timestamps: a.timestamps,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DirectionStats {
    pub packets: u64,
    pub ip_bytes: u64,
    /// Payload octets, each counted once by sequence number.
    pub payload_bytes: u64,
    pub data_segments: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    /// Octets of sequence space skipped (sent before the capture saw them, or reordered).
    pub gap_bytes: u64,
    pub zero_window_advertisements: u64,
    pub keepalive_probes: u64,
    /// Probes sent into the peer's zero window.
    pub window_probes: u64,
    pub rst_out_of_window: u64,
}

impl From<Sent> for DirectionStats {
    fn from(s: Sent) -> Self {
        DirectionStats {
            packets: s.packets,
            ip_bytes: s.ip_bytes,
            payload_bytes: s.payload_bytes,
            data_segments: s.data_segments,
            retransmitted_segments: s.retransmitted_segments,
            retransmitted_bytes: s.retransmitted_bytes,
            gap_bytes: s.gap_bytes,
            zero_window_advertisements: s.zero_window_advertisements,
            keepalive_probes: s.keepalive_probes,
            window_probes: s.window_probes,
            rst_out_of_window: s.rst_out_of_window,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Close {
    /// "client", "server", "simultaneous", or null when nobody sent a FIN.
    pub active_closer: Option<&'static str>,
    pub client_fin: Option<Fin>,
    pub server_fin: Option<Fin>,
    /// The ACK of the last FIN.
    pub final_ack: Option<Moment>,
    /// When the active closer's TIME-WAIT ends: 2×MSL after its final ACK (a timer, so no
    /// packet). Until then a new SYN on the 4-tuple is a `time_wait_reuse`.
    pub time_wait_ends: Option<Moment>,
    pub reset: Option<ResetRecord>,
    /// RSTs after the one that took effect, or with nothing left to reset.
    pub extra_rsts: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fin {
    pub first: Moment,
    pub retransmissions: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResetRecord {
    pub sender: &'static str,
    pub at: Moment,
    pub sender_state: State,
    pub receiver_state: State,
    /// Payload the RST's sender had sent that its peer had not acknowledged.
    pub sender_unacked_bytes: u32,
    /// Payload the peer had sent that the RST's sender had not acknowledged.
    pub receiver_unacked_bytes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideStates {
    pub client: StateTimeline,
    pub server: StateTimeline,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateTimeline {
    pub initial: State,
    #[serde(rename = "final")]
    pub final_state: State,
    pub transitions: Vec<TransitionRecord>,
}

/// One state change; serialised flat: `{"from", "to", "time_ns", "time", "packet"}`.
#[derive(Debug, Clone, Copy)]
pub struct TransitionRecord {
    pub from: State,
    pub to: State,
    pub at: Moment,
}

impl Serialize for TransitionRecord {
    // Written by hand rather than with `#[serde(flatten)]`, which goes through a map and is
    // several times slower on the output path.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TransitionRecord", 5)?;
        st.serialize_field("from", &self.from)?;
        st.serialize_field("to", &self.to)?;
        st.serialize_field("time_ns", &self.at.time_ns)?;
        st.serialize_field("time", &self.at.time)?;
        match self.at.packet {
            Some(p) => st.serialize_field("packet", &p)?,
            None => st.skip_field("packet")?,
        }
        st.end()
    }
}

impl ConnectionRecord {
    pub fn new(conn: &Connection, anomalies: Vec<Anomaly>) -> Self {
        let client = conn.end(Side::Client);
        let server = conn.end(Side::Server);
        let zeek = ZeekRecord::new(conn.zeek.rows());
        ConnectionRecord {
            kind: None,
            id: conn.id,
            client: conn.client.into(),
            server: conn.server.into(),
            ip_version: if conn.client.ip.is_ipv4() { 4 } else { 6 },
            first: conn.first.into(),
            last: conn.last.into(),
            duration_ns: conn.last.ns.saturating_sub(conn.first.ns),
            outcome: conn.outcome(),
            midstream: conn.midstream(),
            roles_from: match conn.roles_from {
                RolesFrom::Syn => "syn",
                RolesFrom::SynAck => "syn_ack",
                RolesFrom::Ports => "ports",
            },
            finished_by: finish_name(conn.finish),
            conn_state: zeek.row.conn_state,
            history: zeek.row.history.clone(),
            zeek,
            handshake: handshake(conn),
            client_sent: client.sent.into(),
            server_sent: server.sent.into(),
            close: close(conn),
            states: SideStates {
                client: timeline(&client.timeline),
                server: timeline(&server.timeline),
            },
            previous_incarnation: conn.previous.map(|p| p.id),
            anomalies,
        }
    }
}

fn finish_name(finish: Option<Finish>) -> &'static str {
    match finish {
        Some(Finish::TimeWaitExpired) => "time_wait_expired",
        Some(Finish::TimeWait) => "time_wait",
        Some(Finish::Closed) => "closed",
        Some(Finish::IdleTimeout) => "idle_timeout",
        Some(Finish::Evicted) => "evicted",
        Some(Finish::NewIncarnation) => "new_incarnation",
        Some(Finish::CaptureEnd) | None => "capture_end",
    }
}

fn handshake(conn: &Connection) -> Handshake {
    let c = conn.end(Side::Client);
    let s = conn.end(Side::Server);
    let syn_ack_at = s.syn.as_ref().map(|x| x.first);
    // Karn: time the SYN-ACK against the last SYN copy sent before it.
    let answered_syn = match (c.syn.as_ref(), syn_ack_at) {
        (Some(syn), Some(sa)) if syn.last.ns <= sa.ns => Some(syn.last),
        (Some(syn), Some(_)) => Some(syn.first),
        _ => None,
    };
    let server_rtt = answered_syn.zip(syn_ack_at).map(|(a, b)| b.ns - a.ns);
    let client_rtt = syn_ack_at.zip(conn.handshake_ack).map(|(a, b)| b.ns - a.ns);
    let with_syn = |e: &Endpoint| e.syn.as_ref().map(|_| Options::from(e.announced));
    Handshake {
        syn: c.syn.as_ref().map(|x| x.first.into()),
        syn_ack: syn_ack_at.map(Into::into),
        ack: conn.handshake_ack.map(Into::into),
        server_rtt_ns: server_rtt,
        client_rtt_ns: client_rtt,
        rtt_ns: server_rtt.zip(client_rtt).map(|(a, b)| a + b),
        client_isn: c.isn().map(|x| x.raw()),
        server_isn: s.isn().map(|x| x.raw()),
        client_options: with_syn(c),
        server_options: with_syn(s),
        syn_retransmissions: retransmissions(c.syn.as_ref()),
        syn_ack_retransmissions: retransmissions(s.syn.as_ref()),
        simultaneous_open: conn.simultaneous_open,
        ack_mismatch: conn.handshake_ack_mismatch.map(Into::into),
    }
}

fn retransmissions(c: Option<&Control>) -> u32 {
    c.map_or(0, |c| c.retransmissions)
}

fn close(conn: &Connection) -> Close {
    let fin = |side: Side| {
        conn.end(side).fin.as_ref().map(|f| Fin {
            first: f.first.into(),
            retransmissions: f.retransmissions,
        })
    };
    Close {
        active_closer: conn.active_closer.map(|c| match c {
            Closer::Side(side) => side.name(),
            Closer::Simultaneous => "simultaneous",
        }),
        client_fin: fin(Side::Client),
        server_fin: fin(Side::Server),
        final_ack: conn.final_ack.map(Into::into),
        time_wait_ends: conn.time_wait_ends_ns.map(|ns| At::timer(ns).into()),
        reset: conn.reset.map(|r| ResetRecord {
            sender: r.sender.name(),
            at: r.at.into(),
            sender_state: r.sender_state,
            receiver_state: r.receiver_state,
            sender_unacked_bytes: r.sender_unacked,
            receiver_unacked_bytes: r.receiver_unacked,
        }),
        extra_rsts: conn.extra_rsts,
    }
}

fn timeline(t: &Timeline) -> StateTimeline {
    StateTimeline {
        initial: t.initial(),
        final_state: t.current(),
        transitions: t
            .transitions()
            .iter()
            .map(|tr| TransitionRecord {
                from: tr.from,
                to: tr.to,
                at: tr.at.into(),
            })
            .collect(),
    }
}

//! Hand-made segments and a small driver for tests: a flow table fed one segment a millisecond,
//! and fixtures that bring a connection to each state. Shared by the tracker's and the
//! detectors' unit tests.

use super::table::SweepSchedule;
use super::*;
use crate::decode::{Segment, TcpFlags, TcpOptions};
use std::net::{IpAddr, Ipv4Addr};

pub(crate) const CLIENT: Addr = Addr {
    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    port: 40000,
};
pub(crate) const SERVER: Addr = Addr {
    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    port: 80,
};
pub(crate) const C_ISN: u32 = 1000;
pub(crate) const S_ISN: u32 = 5000;

pub(crate) const SYN: u8 = TcpFlags::SYN;
pub(crate) const ACK: u8 = TcpFlags::ACK;
pub(crate) const FIN: u8 = TcpFlags::FIN;
pub(crate) const RST: u8 = TcpFlags::RST;
pub(crate) const PSH: u8 = TcpFlags::PSH;

/// Drives a flow table with hand-made segments, one millisecond apart.
#[derive(Clone)]
pub(crate) struct Wire {
    pub(crate) table: FlowTable,
    sweeps: SweepSchedule,
    pub(crate) packet: u64,
    pub(crate) done: Vec<Connection>,
}

pub(crate) fn segment(
    from: Addr,
    to: Addr,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Segment<'static> {
    Segment {
        src: from.ip,
        dst: to.ip,
        src_port: from.port,
        dst_port: to.port,
        seq,
        ack,
        flags: TcpFlags(flags),
        window: 65535,
        options: TcpOptions::default(),
        payload_len: len,
        ip_len: 40 + len,
        payload: &[],
        ip_header: &[],
        tcp_header: &[],
    }
}

impl Wire {
    pub(crate) fn new() -> Self {
        Wire {
            table: FlowTable::new(Config::default()),
            sweeps: SweepSchedule::default(),
            packet: 0,
            done: Vec::new(),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.packet as i64 * 1_000_000
    }

    pub(crate) fn send(
        &mut self,
        from: Side,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> &mut Self {
        let (src, dst) = match from {
            Side::Client => (CLIENT, SERVER),
            Side::Server => (SERVER, CLIENT),
        };
        self.put(segment(src, dst, flags, seq, ack, len))
    }

    /// A pure ACK from `from` advertising `window`.
    pub(crate) fn table_window(
        &mut self,
        from: Side,
        window: u16,
        seq: u32,
        ack: u32,
    ) -> &mut Self {
        let (src, dst) = match from {
            Side::Client => (CLIENT, SERVER),
            Side::Server => (SERVER, CLIENT),
        };
        let seg = Segment {
            window,
            ..segment(src, dst, TcpFlags::ACK, seq, ack, 0)
        };
        self.put(seg)
    }

    /// Puts a segment on the wire one millisecond after the last.
    fn put(&mut self, seg: Segment<'static>) -> &mut Self {
        self.packet += 1;
        let at = At::packet(self.now(), self.packet);
        self.feed(&seg, at)
    }

    /// Feeds a segment as the analysis does: the table is swept on schedule first, and what
    /// finished is collected.
    pub(crate) fn feed(&mut self, seg: &Segment<'_>, at: At) -> &mut Self {
        if self.sweeps.due(at.ns, at.ns) {
            self.table.sweep(at.ns);
        }
        self.table.on_segment(seg, at);
        self.done.extend(self.table.take_finished().map(|c| *c));
        self
    }

    /// The same as [`Wire::send`] with no payload, by value, for building fixtures.
    pub(crate) fn then(mut self, from: Side, flags: u8, seq: u32, ack: u32) -> Self {
        self.send(from, flags, seq, ack, 0);
        self
    }

    pub(crate) fn client(&mut self, flags: u8, seq: u32, ack: u32) -> &mut Self {
        self.send(Side::Client, flags, seq, ack, 0)
    }

    pub(crate) fn server(&mut self, flags: u8, seq: u32, ack: u32) -> &mut Self {
        self.send(Side::Server, flags, seq, ack, 0)
    }

    /// The connection as it would be reported now (everything in flight delivered).
    pub(crate) fn finish(&mut self) -> Connection {
        self.table.finish_all();
        self.done.extend(self.table.take_finished().map(|c| *c));
        self.done.pop().expect("a connection")
    }

    pub(crate) fn states(&mut self) -> (State, State) {
        let c = self.finish();
        (c.state(Side::Client), c.state(Side::Server))
    }
}

// Fixtures: one per state, each named for where it leaves the endpoints, each one segment
// more than the one before.

/// Client SYN-SENT, server LISTEN.
pub(crate) fn syn_sent() -> Wire {
    Wire::new().then(Side::Client, SYN, C_ISN, 0)
}

/// Client SYN-SENT (SYN-ACK in flight), server SYN-RECEIVED.
pub(crate) fn syn_received() -> Wire {
    syn_sent().then(Side::Server, SYN | ACK, S_ISN, C_ISN + 1)
}

/// Both ESTABLISHED.
pub(crate) fn established() -> Wire {
    syn_received().then(Side::Client, ACK, C_ISN + 1, S_ISN + 1)
}

/// Client FIN-WAIT-1, its FIN in flight to the server.
pub(crate) fn fin_wait_1() -> Wire {
    established().then(Side::Client, FIN | ACK, C_ISN + 1, S_ISN + 1)
}

/// Client FIN-WAIT-2, server CLOSE-WAIT.
pub(crate) fn close_wait() -> Wire {
    fin_wait_1().then(Side::Server, ACK, S_ISN + 1, C_ISN + 2)
}

/// Client FIN-WAIT-2 (server FIN in flight), server LAST-ACK.
pub(crate) fn last_ack() -> Wire {
    close_wait().then(Side::Server, FIN | ACK, S_ISN + 1, C_ISN + 2)
}

/// Client TIME-WAIT, server CLOSED.
pub(crate) fn time_wait() -> Wire {
    last_ack().then(Side::Client, ACK, C_ISN + 2, S_ISN + 2)
}

/// Both sent FIN before acknowledging the other's: both CLOSING once they do.
pub(crate) fn closing() -> Wire {
    fin_wait_1().then(Side::Server, FIN | ACK, S_ISN + 1, C_ISN + 1)
}

pub(crate) fn transitions(c: &Connection, side: Side) -> Vec<(State, State, Option<u64>)> {
    c.end(side)
        .timeline
        .transitions()
        .iter()
        .map(|t| (t.from, t.to, t.at.packet))
        .collect()
}

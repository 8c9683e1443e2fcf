//! One test per state transition, each starting from a hand-built fixture that brings both
//! endpoints into the state under test (the segments are hand-made: a kernel would not let us
//! stop a connection at an exact state). Kernel captures of the same paths are checked end to
//! end in `tests/`.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

use super::testing::*;

use State::*;

#[test]
fn closed_to_syn_sent_on_the_clients_syn() {
    let c = syn_sent().finish();
    assert_eq!(
        transitions(&c, Side::Client),
        vec![(Closed, SynSent, Some(1))]
    );
    assert_eq!(c.end(Side::Server).timeline.initial(), Listen);
    assert_eq!(c.outcome(), Outcome::Unanswered);
}

#[test]
fn listen_to_syn_received_on_the_servers_syn_ack() {
    let c = syn_received().finish();
    assert_eq!(
        transitions(&c, Side::Server),
        vec![(Listen, SynReceived, Some(2))]
    );
}

#[test]
fn syn_sent_to_established_is_dated_at_the_syn_ack() {
    let c = established().finish();
    assert_eq!(
        transitions(&c, Side::Client),
        vec![(Closed, SynSent, Some(1)), (SynSent, Established, Some(2))]
    );
}

#[test]
fn syn_received_to_established_on_the_completing_ack() {
    let c = established().finish();
    assert_eq!(
        transitions(&c, Side::Server),
        vec![
            (Listen, SynReceived, Some(2)),
            (SynReceived, Established, Some(3))
        ]
    );
    assert_eq!(c.outcome(), Outcome::Open);
}

#[test]
fn syn_sent_to_syn_received_in_a_simultaneous_open() {
    let mut w = syn_sent();
    w.server(SYN, S_ISN, 0).server(SYN | ACK, S_ISN, C_ISN + 1);
    w.client(SYN | ACK, C_ISN, S_ISN + 1);
    let c = w.finish();
    assert!(c.simultaneous_open);
    assert!(transitions(&c, Side::Client).contains(&(SynSent, SynReceived, Some(2))));
    assert_eq!(c.id, 1, "the crossing SYN is not a new incarnation");
}

#[test]
fn established_to_fin_wait_1_on_sending_fin() {
    let mut w = fin_wait_1();
    let c = w.finish();
    assert!(transitions(&c, Side::Client).contains(&(Established, FinWait1, Some(4))));
}

#[test]
fn established_to_close_wait_is_dated_at_the_fin() {
    let c = close_wait().finish();
    assert!(transitions(&c, Side::Server).contains(&(Established, CloseWait, Some(4))));
    assert_eq!(c.outcome(), Outcome::HalfClosed);
}

#[test]
fn fin_wait_1_to_fin_wait_2_on_the_ack_of_the_fin() {
    let c = close_wait().finish();
    assert!(transitions(&c, Side::Client).contains(&(FinWait1, FinWait2, Some(5))));
}

#[test]
fn close_wait_to_last_ack_on_sending_fin() {
    let c = last_ack().finish();
    assert!(transitions(&c, Side::Server).contains(&(CloseWait, LastAck, Some(6))));
}

#[test]
fn fin_wait_2_to_time_wait_on_the_peers_fin() {
    let c = time_wait().finish();
    assert!(transitions(&c, Side::Client).contains(&(FinWait2, TimeWait, Some(6))));
}

#[test]
fn last_ack_to_closed_on_the_final_ack() {
    let c = time_wait().finish();
    assert!(transitions(&c, Side::Server).contains(&(LastAck, Closed, Some(7))));
    assert_eq!(c.outcome(), Outcome::Closed);
    assert_eq!(c.active_closer, Some(Closer::Side(Side::Client)));
}

#[test]
fn a_lost_final_ack_leaves_the_server_in_last_ack() {
    let mut w = last_ack();
    w.server(FIN | ACK, S_ISN + 1, C_ISN + 2);
    let c = w.finish();
    assert_eq!(c.state(Side::Server), LastAck);
    assert_eq!(c.state(Side::Client), TimeWait);
    assert_eq!(c.end(Side::Server).fin.as_ref().unwrap().retransmissions, 1);
    assert_eq!(c.outcome(), Outcome::ClosedUnacked);
}

#[test]
fn fin_wait_1_to_closing_when_the_fins_cross() {
    let mut w = closing();
    w.client(ACK, C_ISN + 2, S_ISN + 2);
    let c = w.finish();
    assert!(transitions(&c, Side::Client).contains(&(FinWait1, Closing, Some(5))));
    assert!(transitions(&c, Side::Server).contains(&(Established, FinWait1, Some(5))));
    assert!(transitions(&c, Side::Server).contains(&(FinWait1, Closing, Some(5))));
    assert_eq!(c.active_closer, Some(Closer::Simultaneous));
}

#[test]
fn closing_to_time_wait_on_the_ack_of_the_fin() {
    let mut w = closing();
    w.client(ACK, C_ISN + 2, S_ISN + 2)
        .server(ACK, S_ISN + 2, C_ISN + 2);
    let c = w.finish();
    assert!(transitions(&c, Side::Server).contains(&(Closing, TimeWait, Some(6))));
    assert!(transitions(&c, Side::Client).contains(&(Closing, TimeWait, Some(7))));
    assert_eq!(c.outcome(), Outcome::Closed);
}

#[test]
fn fin_wait_1_to_time_wait_through_fin_wait_2_on_a_fin_that_acks_ours() {
    let mut w = fin_wait_1();
    w.server(FIN | ACK, S_ISN + 1, C_ISN + 2)
        .client(ACK, C_ISN + 2, S_ISN + 2);
    let c = w.finish();
    let t = transitions(&c, Side::Client);
    assert!(t.contains(&(FinWait1, FinWait2, Some(5))));
    assert!(t.contains(&(FinWait2, TimeWait, Some(5))));
    assert_eq!(c.state(Side::Server), Closed);
}

#[test]
fn time_wait_to_closed_when_two_msl_pass() {
    let mut w = time_wait();
    let ack_ns = w.now();
    // A packet on another connection 61 s later moves the capture clock past 2×MSL.
    w.packet += 61_000;
    let at = At::packet(w.now(), w.packet);
    let other = Addr {
        port: 40001,
        ..CLIENT
    };
    w.feed(&segment(other, SERVER, SYN, 1, 0, 0), at);
    let c = w
        .done
        .iter()
        .find(|c| c.id == 1)
        .expect("finalised by the sweep")
        .clone();
    assert_eq!(c.finish, Some(Finish::TimeWaitExpired));
    let last = *c.end(Side::Client).timeline.transitions().last().unwrap();
    assert_eq!(
        (last.from, last.to, last.at.packet),
        (TimeWait, Closed, None)
    );
    assert_eq!(last.at.ns, ack_ns + 60_000_000_000);
}

#[test]
fn time_wait_to_closed_on_a_rst() {
    let mut w = time_wait();
    w.server(RST, S_ISN + 2, 0);
    let c = w.finish();
    assert!(transitions(&c, Side::Client).contains(&(TimeWait, Closed, Some(8))));
    assert_eq!(c.outcome(), Outcome::Closed);
}

#[test]
fn syn_sent_to_closed_on_a_rst_that_acks_the_syn() {
    let mut w = syn_sent();
    w.server(RST | ACK, 0, C_ISN + 1);
    let c = w.finish();
    assert_eq!(
        transitions(&c, Side::Client),
        vec![(Closed, SynSent, Some(1)), (SynSent, Closed, Some(2))]
    );
    assert_eq!(
        transitions(&c, Side::Server),
        vec![(Listen, Closed, Some(2))]
    );
    assert_eq!(c.outcome(), Outcome::Refused);
}

#[test]
fn a_rst_that_does_not_ack_the_syn_is_ignored_in_syn_sent() {
    let mut w = syn_sent();
    w.server(RST | ACK, 0, C_ISN + 7);
    let c = w.finish();
    assert_eq!(c.state(Side::Client), SynSent);
    assert_eq!(c.end(Side::Server).sent.rst_out_of_window, 1);
}

#[test]
fn syn_received_back_to_listen_on_a_rst() {
    let mut w = syn_received();
    w.client(RST, C_ISN + 1, 0);
    let c = w.finish();
    assert!(transitions(&c, Side::Server).contains(&(SynReceived, Listen, Some(3))));
    assert_eq!(c.state(Side::Client), Closed);
    assert_eq!(c.outcome(), Outcome::Reset);
}

#[test]
fn established_to_closed_on_a_rst_both_sides() {
    let mut w = established();
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 100);
    w.server(RST | ACK, S_ISN + 1, C_ISN + 101);
    let c = w.finish();
    assert!(transitions(&c, Side::Server).contains(&(Established, Closed, Some(5))));
    assert!(transitions(&c, Side::Client).contains(&(Established, Closed, Some(5))));
    let reset = c.reset.unwrap();
    assert_eq!(
        (reset.sender, reset.sender_state),
        (Side::Server, Established)
    );
    assert_eq!(c.outcome(), Outcome::Reset);
}

#[test]
fn an_out_of_window_rst_changes_nothing() {
    let mut w = established();
    w.server(RST, S_ISN.wrapping_add(3_000_000), 0);
    let c = w.finish();
    assert_eq!(
        (c.state(Side::Client), c.state(Side::Server)),
        (Established, Established)
    );
    assert_eq!(c.end(Side::Server).sent.rst_out_of_window, 1);
}

#[test]
fn syn_received_to_fin_wait_1_when_the_server_closes_early() {
    let mut w = syn_received();
    w.server(FIN | ACK, S_ISN + 1, C_ISN + 1);
    let c = w.finish();
    assert!(transitions(&c, Side::Server).contains(&(SynReceived, FinWait1, Some(3))));
}

#[test]
fn a_fin_never_acknowledged_is_delivered_when_the_connection_ends() {
    assert_eq!(fin_wait_1().states(), (FinWait1, CloseWait));
}

#[test]
fn sequence_numbers_across_the_wrap() {
    let isn = u32::MAX - 1;
    let mut w = Wire::new();
    w.client(SYN, isn, 0)
        .server(SYN | ACK, S_ISN, isn.wrapping_add(1));
    w.client(ACK, isn.wrapping_add(1), S_ISN + 1);
    w.send(Side::Client, PSH | ACK, isn.wrapping_add(1), S_ISN + 1, 10);
    w.send(Side::Client, PSH | ACK, isn.wrapping_add(1), S_ISN + 1, 10);
    w.client(FIN | ACK, isn.wrapping_add(11), S_ISN + 1);
    w.server(FIN | ACK, S_ISN + 1, isn.wrapping_add(12));
    w.client(ACK, isn.wrapping_add(12), S_ISN + 2);
    let c = w.finish();
    assert_eq!(c.end(Side::Client).sent.payload_bytes, 10);
    assert_eq!(c.end(Side::Client).sent.retransmitted_segments, 1);
    assert_eq!(c.outcome(), Outcome::Closed);
}

#[test]
fn a_retransmitted_syn_is_the_same_incarnation() {
    let mut w = syn_sent();
    w.client(SYN, C_ISN, 0);
    let c = w.finish();
    assert_eq!(c.end(Side::Client).syn.as_ref().unwrap().retransmissions, 1);
    assert!(w.done.is_empty());
}

#[test]
fn a_syn_with_a_new_isn_starts_a_linked_incarnation() {
    let mut w = time_wait();
    w.client(SYN, C_ISN + 100_000, 0);
    assert_eq!(w.done.len(), 1);
    assert_eq!(w.done[0].finish, Some(Finish::NewIncarnation));
    let syn_packet = w.packet;
    let new = w.finish();
    assert_eq!(new.id, syn_packet, "named by its first packet");
    let prev = new.previous.unwrap();
    assert_eq!(prev.id, 1);
    assert_eq!(prev.time_wait.map(|(side, _)| side), Some(Side::Client));
}

#[test]
fn a_new_incarnation_takes_over_its_predecessors_timer_entry() {
    let mut w = time_wait();
    let queued = w.table.timer_entries();
    w.client(SYN, C_ISN + 100_000, 0);
    assert_eq!(w.done.len(), 1, "the old incarnation is reported");
    assert_eq!(
        w.table.timer_entries(),
        queued,
        "no entry left stale, none added"
    );
    // The entry it took over comes up at the old deadline and is put back until the new
    // incarnation's own.
    let new = w.packet;
    later(&mut w, 299);
    assert!(finished(&w, new).is_none(), "reported before its timeout");
    later(&mut w, 2);
    let c = finished(&w, new).expect("reported at its timeout");
    assert_eq!(c.finish, Some(Finish::IdleTimeout));
}

#[test]
fn a_syn_captured_after_its_syn_ack_is_not_a_new_incarnation() {
    let mut w = Wire::new();
    w.server(SYN | ACK, S_ISN, C_ISN + 1)
        .client(SYN, C_ISN, 0)
        .client(ACK, C_ISN + 1, S_ISN + 1);
    let c = w.finish();
    assert!(w.done.is_empty());
    assert_eq!(c.client, CLIENT);
    assert_eq!(c.outcome(), Outcome::Open);
}

#[test]
fn midstream_roles_come_from_ports_not_addresses() {
    let mut w = Wire::new();
    // Data from the server (port 80) first: it must still be the server.
    w.send(Side::Server, PSH | ACK, 7, 9, 20);
    let c = w.finish();
    assert!(c.midstream());
    assert_eq!(c.server, SERVER);
    assert_eq!(c.zeek.as_str(), "^d");
}

#[test]
fn loopback_connections_are_told_apart_by_port() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (a, b) = (
        Addr { ip: lo, port: 5555 },
        Addr {
            ip: lo,
            port: 43210,
        },
    );
    let mut table = FlowTable::new(Config::default());
    table.on_segment(&segment(b, a, SYN, 1, 0, 0), At::packet(0, 1));
    table.on_segment(&segment(a, b, SYN | ACK, 9, 2, 0), At::packet(1, 2));
    table.on_segment(&segment(b, a, ACK, 2, 10, 0), At::packet(2, 3));
    table.finish_all();
    let done: Vec<_> = table.take_finished().collect();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].client, done[0].server), (b, a));
    assert_eq!(done[0].outcome(), Outcome::Open);
}

#[test]
fn a_full_table_evicts_the_longest_idle_by_reporting_them() {
    let mut table = FlowTable::new(Config {
        max_connections: 8,
        ..Config::default()
    });
    for i in 0..20u16 {
        let c = Addr {
            port: 1000 + i,
            ..CLIENT
        };
        table.on_segment(
            &segment(c, SERVER, SYN, 1, 0, 0),
            At::packet(i64::from(i), u64::from(i) + 1),
        );
    }
    assert!(table.len() <= 8);
    let mut done: Vec<_> = table.take_finished().collect();
    let evicted = done.len();
    assert!(evicted >= 12);
    assert!(done.iter().all(|c| c.finish == Some(Finish::Evicted)));
    table.finish_all();
    done.extend(table.take_finished());
    assert_eq!(done.len(), 20, "every connection is reported");
    assert_eq!(table.stats().evicted, evicted as u64);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn any_segment() -> impl Strategy<Value = (bool, u8, u32, u32, u32, u16)> {
        (
            any::<bool>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            0u32..3000,
            any::<u16>(),
        )
    }

    proptest! {
        /// Whatever arrives, the tracker keeps every timeline in time order and reports every
        /// connection exactly once.
        #[test]
        fn arbitrary_segments(segs in proptest::collection::vec(any_segment(), 1..60), seed in 0u32..4) {
            let mut table = FlowTable::new(Config { max_connections: 3, ..Config::default() });
            let near = [0u32, u32::MAX - 5, 1 << 31, 77][seed as usize];
            let mut created = 0u64;
            for (i, (from_client, flags, seq, ack, len, port)) in segs.into_iter().enumerate() {
                let c = Addr { port: 40000 + (port % 3), ..CLIENT };
                let (src, dst) = if from_client { (c, SERVER) } else { (SERVER, c) };
                let seg = segment(src, dst, flags, near.wrapping_add(seq % 4096), near.wrapping_add(ack % 4096), len);
                table.on_segment(&seg, At::packet(i as i64 * 1_000_000, i as u64 + 1));
                created = table.stats().connections;
            }
            table.finish_all();
            let done: Vec<_> = table.take_finished().collect();
            prop_assert_eq!(done.len() as u64, created);
            for conn in &done {
                let _ = conn.outcome();
                for side in [Side::Client, Side::Server] {
                    let t = conn.end(side).timeline.transitions();
                    prop_assert!(t.windows(2).all(|w| w[0].at.ns <= w[1].at.ns && w[0].to == w[1].from));
                }
            }
        }
    }
}

/// Advances the capture clock by `secs` with a packet on another 4-tuple, so the table sweeps.
fn later(w: &mut Wire, secs: u64) {
    w.packet += secs * 1000;
    let at = At::packet(w.now(), w.packet);
    let other = Addr {
        port: 50000 + (w.packet % 1000) as u16,
        ..CLIENT
    };
    w.feed(&segment(other, SERVER, SYN, 1, 0, 0), at);
}

#[test]
fn a_closed_connection_is_reported_after_the_linger_and_its_time_wait_goes_on_as_a_tombstone() {
    let mut w = time_wait();
    later(&mut w, 3);
    let c = w
        .done
        .iter()
        .find(|c| c.id == 1)
        .expect("reported after the linger")
        .clone();
    assert_eq!(c.finish, Some(Finish::TimeWait));
    assert_eq!(c.state(Side::Client), TimeWait);
    assert_eq!(
        c.time_wait_ends_ns,
        Some(c.end(Side::Client).time_wait_from.unwrap().ns + 60_000_000_000)
    );
    // A new SYN on the 4-tuple 10 s later is still judged against the old TIME-WAIT.
    later(&mut w, 10);
    w.client(SYN, C_ISN + 100_000, 0);
    let new = w.finish();
    let prev = new.previous.expect("linked through the tombstone");
    assert_eq!(
        (prev.id, prev.time_wait.map(|(s, _)| s)),
        (1, Some(Side::Client))
    );
}

#[test]
fn late_packets_of_a_reported_connection_do_not_start_a_new_one() {
    let mut w = time_wait();
    later(&mut w, 3);
    let before = w.table.stats().connections;
    w.server(FIN | ACK, S_ISN + 1, C_ISN + 2);
    w.server(RST, S_ISN + 2, 0);
    assert_eq!(
        w.table.stats().connections,
        before,
        "no midstream connection from stragglers"
    );
    assert_eq!(w.table.stats().late_packets, 2);
    let late = w.table.late_resets();
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].connection, late[0].sender), (1, Side::Server));
}

#[test]
fn a_tombstone_is_forgotten_when_time_wait_ends() {
    let mut w = time_wait();
    later(&mut w, 3);
    later(&mut w, 61);
    w.client(SYN, C_ISN + 100_000, 0);
    assert!(w.finish().previous.is_none());
}

#[test]
fn an_open_connection_is_reported_at_its_idle_timeout_and_not_before() {
    let mut w = established();
    // Sweeps look at a held connection at least every linger time (2 s), not at every sweep.
    later(&mut w, 299);
    assert!(finished(&w, 1).is_none(), "reported before its timeout");
    later(&mut w, 2);
    let c = finished(&w, 1).expect("reported at its timeout");
    assert_eq!(c.finish, Some(Finish::IdleTimeout));
}

#[test]
fn a_close_stamped_in_the_past_is_reported_at_the_next_sweep() {
    // Two captures read one after the other: the connection's close comes dated 240 s before
    // the clock. Its deadline (the linger after the close) is long past, so the next sweep
    // must report it, not the one its earlier timer entry was for.
    let mut w = established();
    later(&mut w, 250);
    let past = |w: &mut Wire, secs_ms: i64| {
        w.packet += 1;
        At::packet(secs_ms * 1_000_000, w.packet)
    };
    for (from, to, flags, seq, ack, ms) in [
        (CLIENT, SERVER, FIN | ACK, C_ISN + 1, S_ISN + 1, 10_000),
        (SERVER, CLIENT, ACK, S_ISN + 1, C_ISN + 2, 10_001),
        (SERVER, CLIENT, FIN | ACK, S_ISN + 1, C_ISN + 2, 10_002),
        (CLIENT, SERVER, ACK, C_ISN + 2, S_ISN + 2, 10_003),
    ] {
        let at = past(&mut w, ms);
        w.feed(&segment(from, to, flags, seq, ack, 0), at);
    }
    assert!(finished(&w, 1).is_none(), "reported before a sweep");
    later(&mut w, 1);
    let c = finished(&w, 1).expect("reported at the next sweep");
    assert!(c.is_over(), "{:?}", c.finish);
}

/// Connection `id`, once the table has finished it.
fn finished(w: &Wire, id: u64) -> Option<&Connection> {
    w.done.iter().find(|c| c.id == id)
}

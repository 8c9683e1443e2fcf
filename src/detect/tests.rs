//! Detectors on hand-built segments, for the cases a kernel will not produce on demand
//! (illegal flags, TIME-WAIT assassination, data after FIN, a SYN-ACK for the wrong ISN) and
//! for exact thresholds. Every case a kernel does produce is also checked on a real capture in
//! tests/kernel_fixtures.rs.

use super::*;
use crate::decode::TcpFlags;
use crate::track::testing::*;

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;

fn found(w: &mut Wire) -> Vec<Anomaly> {
    detect(&w.finish(), &DetectConfig::default())
}

fn kinds(anomalies: &[Anomaly]) -> Vec<Kind> {
    anomalies.iter().map(|a| a.kind).collect()
}

fn the(anomalies: &[Anomaly], kind: Kind) -> &Anomaly {
    anomalies
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(anomalies)))
}

#[test]
fn a_clean_close_has_no_anomaly() {
    assert!(found(&mut time_wait()).is_empty());
}

#[test]
fn crossing_syns_are_a_simultaneous_open() {
    let mut w = syn_sent();
    w.server(SYN, S_ISN, 0);
    w.server(SYN | ACK, S_ISN, C_ISN + 1)
        .client(SYN | ACK, C_ISN, S_ISN + 1);
    let a = found(&mut w);
    assert!(kinds(&a).contains(&Kind::SimultaneousOpen));
    assert!(!kinds(&a).contains(&Kind::SynInOpenConnection));
}

#[test]
fn a_syn_ack_for_the_wrong_isn() {
    let mut w = syn_sent();
    w.server(SYN | ACK, S_ISN, C_ISN + 77);
    let a = found(&mut w);
    assert_eq!(the(&a, Kind::HandshakeAckMismatch).packets.as_slice(), [2]);
}

#[test]
fn payload_beyond_the_senders_own_fin() {
    let mut w = fin_wait_1();
    w.send(Side::Client, PSH | ACK, C_ISN + 2, S_ISN + 1, 10);
    let a = found(&mut w);
    let d = the(&a, Kind::DataAfterFin);
    assert_eq!((d.side, d.packets.as_slice()), (Some("client"), &[5][..]));
}

#[test]
fn a_rst_into_time_wait_is_an_assassination() {
    let mut w = time_wait();
    w.server(RST, S_ISN + 2, 0);
    let a = found(&mut w);
    let d = the(&a, Kind::TimeWaitAssassination);
    assert_eq!(d.side, Some("client"));
    assert!(!kinds(&a).contains(&Kind::RstAfterClose));
    assert!(
        !kinds(&a).contains(&Kind::RstTeardown),
        "the close had completed"
    );
}

#[test]
fn a_rst_after_a_completed_close() {
    let mut w = time_wait();
    w.client(RST, C_ISN + 2, 0);
    let a = found(&mut w);
    assert_eq!(the(&a, Kind::RstAfterClose).side, Some("client"));
    assert!(!kinds(&a).contains(&Kind::RstTeardown));
}

#[test]
fn impossible_flag_combinations() {
    let mut w = established();
    w.client(SYN | FIN, C_ISN + 1, 0).client(0, C_ISN + 1, 0);
    let a = found(&mut w);
    match &the(&a, Kind::InvalidFlags).details {
        Details::InvalidFlags { flags, count } => {
            assert_eq!((flags.as_str(), *count), ("SYN+FIN", 2))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fin_without_ack_on_an_established_connection_is_invalid() {
    let mut w = established();
    w.client(FIN, C_ISN + 1, 0);
    assert!(kinds(&found(&mut w)).contains(&Kind::InvalidFlags));
}

#[test]
fn data_on_a_syn() {
    let mut w = Wire::new();
    w.send(Side::Client, SYN, C_ISN, 0, 20);
    assert_eq!(the(&found(&mut w), Kind::SynWithData).side, Some("client"));
}

#[test]
fn a_new_syn_while_the_old_connection_is_open() {
    let mut w = established();
    w.client(SYN, C_ISN + 50_000, 0);
    let new = w.finish();
    let a = detect(&new, &DetectConfig::default());
    match &the(&a, Kind::SynInOpenConnection).details {
        Details::SynInOpenConnection {
            previous_incarnation,
            previous_client_state,
            ..
        } => {
            assert_eq!(
                (*previous_incarnation, *previous_client_state),
                (1, State::Established)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!kinds(&a).contains(&Kind::TimeWaitReuse));
}

#[test]
fn a_hole_the_receiver_acknowledged_was_not_captured() {
    let mut w = established();
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 100);
    w.send(Side::Client, PSH | ACK, C_ISN + 201, S_ISN + 1, 100);
    w.server(ACK, S_ISN + 1, C_ISN + 301);
    let a = found(&mut w);
    match &the(&a, Kind::SegmentNotCaptured).details {
        Details::Bytes { bytes } => assert_eq!(*bytes, 100),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hole_filled_later_is_neither_missing_nor_a_retransmission() {
    let mut w = established();
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 100);
    w.send(Side::Client, PSH | ACK, C_ISN + 201, S_ISN + 1, 100);
    w.send(Side::Client, PSH | ACK, C_ISN + 101, S_ISN + 1, 100);
    w.server(ACK, S_ISN + 1, C_ISN + 301);
    let c = w.finish();
    assert!(!kinds(&detect(&c, &DetectConfig::default())).contains(&Kind::SegmentNotCaptured));
    assert_eq!(c.end(Side::Client).sent.retransmitted_segments, 0);
    assert_eq!(c.end(Side::Client).sent.payload_bytes, 300);
}

#[test]
fn an_ack_beyond_everything_seen() {
    let mut w = established();
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 100);
    w.server(ACK, S_ISN + 1, C_ISN + 501);
    let a = found(&mut w);
    let d = the(&a, Kind::AckOfUnseenData);
    assert_eq!(
        d.side,
        Some("client"),
        "the data the capture missed was the client's"
    );
    match &d.details {
        Details::Bytes { bytes } => assert_eq!(*bytes, 400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn retransmission_over_the_threshold() {
    let mut w = established();
    for i in 0..10u32 {
        w.send(Side::Client, PSH | ACK, C_ISN + 1 + i * 10, S_ISN + 1, 10);
    }
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 10);
    assert!(
        !kinds(&found(&mut w.clone())).contains(&Kind::ExcessiveRetransmission),
        "1 of 11 is under 10 %"
    );
    w.send(Side::Client, PSH | ACK, C_ISN + 11, S_ISN + 1, 10);
    let a = found(&mut w);
    match &the(&a, Kind::ExcessiveRetransmission).details {
        Details::ExcessiveRetransmission {
            retransmitted_segments,
            data_segments,
            ..
        } => {
            assert_eq!((*retransmitted_segments, *data_segments), (2, 12));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn keepalive_probes_answered_and_not() {
    let mut w = established();
    w.send(Side::Client, ACK, C_ISN, S_ISN + 1, 0)
        .server(ACK, S_ISN + 1, C_ISN + 1);
    w.send(Side::Client, ACK, C_ISN, S_ISN + 1, 0);
    w.send(Side::Client, ACK, C_ISN, S_ISN + 1, 0);
    w.send(Side::Client, ACK, C_ISN, S_ISN + 1, 0);
    let c = w.finish();
    let a = detect(&c, &DetectConfig::default());
    match &the(&a, Kind::Keepalive).details {
        Details::Keepalive { probes, answered } => assert_eq!((*probes, *answered), (4, 1)),
        other => panic!("{other:?}"),
    }
    the(&a, Kind::KeepaliveTimeout);
    assert_eq!(c.end(Side::Client).sent.retransmitted_segments, 0);
}

#[test]
fn a_probe_into_a_zero_window_is_a_window_probe() {
    let mut w = established();
    w.send(Side::Client, PSH | ACK, C_ISN + 1, S_ISN + 1, 100);
    w.table_window(Side::Server, 0, S_ISN + 1, C_ISN + 101);
    w.send(Side::Client, ACK, C_ISN + 100, S_ISN + 1, 0);
    let c = w.finish();
    assert_eq!(c.end(Side::Client).sent.window_probes, 1);
    assert_eq!(c.end(Side::Client).sent.keepalive_probes, 0);
    let a = detect(&c, &DetectConfig::default());
    assert_eq!(the(&a, Kind::ZeroWindow).side, Some("server"));
    assert!(!kinds(&a).contains(&Kind::Keepalive));
}

#[test]
fn close_wait_just_over_and_under_the_threshold() {
    for (wait_ms, fires) in [(4_000u64, false), (6_000, true)] {
        let mut w = close_wait();
        w.packet += wait_ms;
        w.server(FIN | ACK, S_ISN + 1, C_ISN + 2)
            .client(ACK, C_ISN + 2, S_ISN + 2);
        assert_eq!(
            kinds(&found(&mut w)).contains(&Kind::LongCloseWait),
            fires,
            "{wait_ms} ms"
        );
    }
}

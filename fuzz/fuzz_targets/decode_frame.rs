//! The link/IP/TCP decoder on single frames.
//!
//! Input layout: byte 0 picks the link type (one of those the decoder knows, or, for the last
//! choice, any 32-bit value from bytes 1..5); bytes 1..5 are also the frame's wire length (a
//! capture file may claim anything there); the rest is the frame.
//!
//! Checks, beyond "no panic": a segment's lengths agree with each other (payload captured ≤
//! payload length; TCP header 20..=60 bytes; IP length covers the TCP header and payload), and
//! the checksum helpers run on whatever came out.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcplife::decode::{Decoded, decode, linktype};

const LINK_TYPES: [u32; 15] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::FDDI,
    linktype::DLT_RAW_12,
    linktype::DLT_RAW_14,
    linktype::PPP_HDLC,
    linktype::PPP_ETHER,
    linktype::RAW,
    linktype::C_HDLC,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some((word, frame)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let word = u32::from_le_bytes(*word);
    let link_type = LINK_TYPES
        .get(usize::from(pick) % (LINK_TYPES.len() + 1))
        .copied()
        .unwrap_or(word);
    // Mostly the honest wire length, sometimes whatever the record claims.
    let orig_len = if pick & 0x80 == 0 {
        u32::try_from(frame.len()).unwrap_or(u32::MAX)
    } else {
        word
    };
    match decode(link_type, frame, orig_len) {
        Decoded::Tcp(seg) => {
            assert!(
                seg.payload.len() as u64 <= u64::from(seg.payload_len),
                "captured payload {} longer than the IP header allows {}",
                seg.payload.len(),
                seg.payload_len
            );
            assert!(
                (20..=60).contains(&seg.tcp_header.len()),
                "TCP header of {} bytes",
                seg.tcp_header.len()
            );
            assert!(
                u64::from(seg.payload_len) + seg.tcp_header.len() as u64 <= u64::from(seg.ip_len),
                "IP length {} does not cover TCP header {} and payload {}",
                seg.ip_len,
                seg.tcp_header.len(),
                seg.payload_len
            );
            std::hint::black_box((seg.ip_checksum_ok(), seg.tcp_checksum_ok()));
            std::hint::black_box(format!("{seg:?}"));
        }
        Decoded::Skipped(reason) => {
            std::hint::black_box((reason.as_str(), reason.is_undecodable()));
        }
    }
});

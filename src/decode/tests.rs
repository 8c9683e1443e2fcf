//! Tests for the decoder. Every frame here is hand-built byte by byte by the helpers below (no
//! capture files, no packet-building library), so each test shows exactly what it feeds in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 2];
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const PSH_ACK: u8 = TcpFlags::PSH | TcpFlags::ACK;

/// MSS 1460, SACK permitted, timestamps (7, 0), NOP, window scale 7: 20 bytes, as Linux sends.
const SYN_OPTS: [u8; 20] = [
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
];

/// Straightforward ones'-complement checksum (independent of the one under test).
fn csum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP header (ports 40000 → 80, seq 1000, ack 2000, window 0xfaf0) with `opts` padded with
/// EOL to a multiple of 4, checksum left 0.
fn tcp_hdr(flags: u8, opts: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(0);
    }
    let hl = 20 + o.len();
    let mut h = Vec::new();
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h.extend_from_slice(&1000u32.to_be_bytes());
    h.extend_from_slice(&2000u32.to_be_bytes());
    h.push(((hl / 4) as u8) << 4);
    h.push(flags);
    h.extend_from_slice(&0xfaf0u16.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    h.extend_from_slice(&o);
    h
}

/// A TCP segment (header + payload) with a correct checksum for the given pseudo-header.
fn tcp_seg(src: &[u8], dst: &[u8], flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut seg = tcp_hdr(flags, opts);
    seg.extend_from_slice(payload);
    let len = (seg.len() as u32).to_be_bytes();
    let c = if src.len() == 16 {
        csum(&[src, dst, &len, &[0, 0, 0, 6], &seg])
    } else {
        csum(&[src, dst, &[0, 6], &len[2..], &seg])
    };
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

/// An IPv4 header (DF set, TTL 64, correct checksum) in front of `body`.
fn ipv4_with(proto: u8, frag: u16, total_len: Option<u16>, body: &[u8]) -> Vec<u8> {
    let total = total_len.unwrap_or((20 + body.len()) as u16);
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&SRC4);
    h.extend_from_slice(&DST4);
    let c = csum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(body);
    h
}

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;

fn ipv4(proto: u8, body: &[u8]) -> Vec<u8> {
    ipv4_with(proto, DF, None, body)
}

/// IPv4 + TCP with `payload`, all lengths and checksums right.
fn v4_tcp(flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    ipv4(6, &tcp_seg(&SRC4, &DST4, flags, opts, payload))
}

/// An IPv6 header in front of `body` (which starts with header `next`).
fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&SRC6);
    h.extend_from_slice(&DST6);
    h.extend_from_slice(body);
    h
}

fn v6_tcp(flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    ipv6(6, &tcp_seg(&SRC6, &DST6, flags, opts, payload))
}

/// Ethernet II: dst, src, type, payload.
fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    ];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A VLAN tag body (TCI, inner type) in front of `payload`; goes after a 0x8100/0x88a8 type.
fn tag(vid: u16, inner: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vid.to_be_bytes().to_vec();
    f.extend_from_slice(&inner.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An MPLS label stack entry.
fn label(label: u32, bottom: bool) -> [u8; 4] {
    ((label << 12) | (u32::from(bottom) << 8) | 64).to_be_bytes()
}

fn seg(d: Decoded<'_>) -> Segment<'_> {
    match d {
        Decoded::Tcp(s) => s,
        Decoded::Skipped(r) => panic!("expected a TCP segment, got {r:?}"),
    }
}

fn skipped(d: Decoded<'_>) -> SkipReason {
    match d {
        Decoded::Skipped(r) => r,
        Decoded::Tcp(s) => panic!("expected a skip, got {s:?}"),
    }
}

fn len(v: &[u8]) -> u32 {
    v.len() as u32
}

/// Decodes a complete (not truncated) frame.
fn dec(link_type: u32, frame: &[u8]) -> Decoded<'_> {
    decode(link_type, frame, len(frame))
}

/// Checks the segment built by `v4_tcp(PSH_ACK, &[], b"hello")` (or its IPv6 twin).
fn assert_hello(s: &Segment<'_>, v6: bool) {
    if v6 {
        assert_eq!(s.src, IpAddr::V6(Ipv6Addr::from(SRC6)));
        assert_eq!(s.dst, IpAddr::V6(Ipv6Addr::from(DST6)));
        assert_eq!(s.ip_len, 40 + 20 + 5);
    } else {
        assert_eq!(s.src, IpAddr::V4(Ipv4Addr::from(SRC4)));
        assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::from(DST4)));
        assert_eq!(s.ip_len, 20 + 20 + 5);
    }
    assert_eq!((s.src_port, s.dst_port), (40000, 80));
    assert_eq!((s.seq, s.ack), (1000, 2000));
    assert_eq!(s.flags, TcpFlags(PSH_ACK));
    assert!(s.flags.ack() && !s.flags.syn() && !s.flags.fin() && !s.flags.rst());
    assert_eq!(s.window, 0xfaf0);
    assert_eq!(s.options, TcpOptions::default());
    assert_eq!(s.payload_len, 5);
    assert_eq!(s.payload, b"hello");
    assert_eq!(s.tcp_header.len(), 20);
    assert!(s.ip_checksum_ok());
    assert_eq!(s.tcp_checksum_ok(), Some(true));
}

fn hello4() -> Vec<u8> {
    v4_tcp(PSH_ACK, &[], b"hello")
}

fn hello6() -> Vec<u8> {
    v6_tcp(PSH_ACK, &[], b"hello")
}

// ---------------------------------------------------------------------------------------------
// Link types and encapsulations
// ---------------------------------------------------------------------------------------------

#[test]
fn ethernet_ipv4() {
    let f = eth(0x0800, &hello4());
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
}

#[test]
fn ethernet_ipv6() {
    let f = eth(0x86dd, &hello6());
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), true);
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A bare ACK is 54 bytes; Ethernet pads it to 60 (and some captures keep a 4-byte FCS).
    let mut f = eth(0x0800, &v4_tcp(ACK, &[], b""));
    f.extend_from_slice(&[0; 10]);
    let s = seg(dec(linktype::ETHERNET, &f));
    assert_eq!(s.payload_len, 0);
    assert!(s.payload.is_empty());
    assert_eq!(s.ip_len, 40);
    assert_eq!(s.tcp_checksum_ok(), Some(true));
}

#[test]
fn vlan() {
    let f = eth(0x8100, &tag(100, 0x0800, &hello4()));
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
}

#[test]
fn qinq_802_1ad_and_old_9100() {
    let inner = tag(200, 0x86dd, &hello6());
    let f = eth(0x88a8, &tag(100, 0x8100, &inner));
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), true);
    let f = eth(0x9100, &tag(100, 0x8100, &tag(200, 0x0800, &hello4())));
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
}

#[test]
fn mpls_single_and_stacked() {
    let f = eth(0x8847, &[&label(16, true)[..], &hello4()].concat());
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
    let stack = [label(16, false), label(17, false), label(18, true)].concat();
    let f = eth(0x8848, &[&stack[..], &hello6()].concat());
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), true);
}

#[test]
fn mpls_in_vlan() {
    let f = eth(
        0x8100,
        &tag(0, 0x8847, &[&label(16106, true)[..], &hello4()].concat()),
    );
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
}

#[test]
fn mpls_pseudowire_and_endless_stack() {
    // Ethernet pseudowire control word (first nibble 0) after the stack.
    let f = eth(
        0x8847,
        &[&label(16, true)[..], &[0, 0, 0, 0], &hello4()].concat(),
    );
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &f)),
        SkipReason::OtherLinkProtocol
    );
    // 30 labels and none at the bottom.
    let stack: Vec<u8> = (0..30).flat_map(|i| label(i, false)).collect();
    let f = eth(0x8847, &[&stack[..], &hello4()].concat());
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &f)),
        SkipReason::BadLinkHeader
    );
}

#[test]
fn pppoe_session() {
    let ip = hello4();
    let mut body = vec![0x11, 0x00, 0x12, 0x34];
    body.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    body.extend_from_slice(&[0x00, 0x21]);
    body.extend_from_slice(&ip);
    assert_hello(&seg(dec(linktype::ETHERNET, &eth(0x8864, &body))), false);

    let ip = hello6();
    let mut body = vec![0x11, 0x00, 0x12, 0x34, 0, 0, 0x00, 0x57];
    body.extend_from_slice(&ip);
    assert_hello(&seg(dec(linktype::ETHERNET, &eth(0x8864, &body))), true);
    // Same, inside a VLAN, and as LINKTYPE_PPP_ETHER (no Ethernet header).
    let f = eth(0x8100, &tag(7, 0x8864, &body));
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), true);
    assert_hello(&seg(dec(linktype::PPP_ETHER, &body)), true);

    // LCP (0xc021) and PPPoE discovery are link control traffic.
    let lcp = [0x11, 0x00, 0x12, 0x34, 0, 4, 0xc0, 0x21, 1, 1];
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &eth(0x8864, &lcp))),
        SkipReason::OtherLinkProtocol
    );
    assert_eq!(
        skipped(dec(
            linktype::ETHERNET,
            &eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0])
        )),
        SkipReason::OtherLinkProtocol
    );
}

#[test]
fn linux_sll() {
    // packet type 0 (to us), ARPHRD_ETHER 1, address length 6, address + 2 pad, protocol.
    let mut f = vec![
        0, 0, 0, 1, 0, 6, 0x00, 0x1c, 0xb0, 0x23, 0x90, 0x40, 0, 0, 0x08, 0x00,
    ];
    f.extend_from_slice(&hello4());
    assert_hello(&seg(dec(linktype::LINUX_SLL, &f)), false);
    // An ARPHRD_NETLINK frame.
    let mut f = vec![0, 4, 0x03, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00];
    f.extend_from_slice(&[0; 20]);
    assert_eq!(
        skipped(dec(linktype::LINUX_SLL, &f)),
        SkipReason::OtherLinkProtocol
    );
}

#[test]
fn linux_sll2() {
    // protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
    let mut f = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    f.extend_from_slice(&hello6());
    assert_hello(&seg(dec(linktype::LINUX_SLL2, &f)), true);
    assert_eq!(
        skipped(dec(linktype::LINUX_SLL2, &f[..19])),
        SkipReason::TruncatedLinkHeader
    );
}

#[test]
fn raw_ip_all_link_type_numbers() {
    for lt in [linktype::RAW, linktype::DLT_RAW_12, linktype::DLT_RAW_14] {
        assert_hello(&seg(dec(lt, &hello4())), false);
        assert_hello(&seg(dec(lt, &hello6())), true);
    }
    assert_hello(&seg(dec(linktype::IPV4, &hello4())), false);
    assert_hello(&seg(dec(linktype::IPV6, &hello6())), true);
    // LINKTYPE_IPV4 holding an IPv6 packet is damage.
    assert_eq!(
        skipped(dec(linktype::IPV4, &hello6())),
        SkipReason::BadIpHeader
    );
}

#[test]
fn null_both_byte_orders() {
    let le = [&[2, 0, 0, 0][..], &hello4()].concat();
    let be = [&[0, 0, 0, 2][..], &hello4()].concat();
    assert_hello(&seg(dec(linktype::NULL, &le)), false);
    assert_hello(&seg(dec(linktype::NULL, &be)), false);
    for af in [24u32, 28, 30] {
        let le = [&af.to_le_bytes()[..], &hello6()].concat();
        let be = [&af.to_be_bytes()[..], &hello6()].concat();
        assert_hello(&seg(dec(linktype::NULL, &le)), true);
        assert_hello(&seg(dec(linktype::NULL, &be)), true);
    }
    let other = [&[7, 0, 0, 0][..], &hello4()].concat();
    assert_eq!(
        skipped(dec(linktype::NULL, &other)),
        SkipReason::OtherLinkProtocol
    );
}

#[test]
fn loop_network_byte_order() {
    let f = [&[0, 0, 0, 2][..], &hello4()].concat();
    assert_hello(&seg(dec(linktype::LOOP, &f)), false);
    let f = [&[0, 0, 0, 30][..], &hello6()].concat();
    assert_hello(&seg(dec(linktype::LOOP, &f)), true);
    // LOOP is always big-endian: a little-endian 2 is not AF_INET.
    let f = [&[2, 0, 0, 0][..], &hello4()].concat();
    assert_eq!(
        skipped(dec(linktype::LOOP, &f)),
        SkipReason::OtherLinkProtocol
    );
}

#[test]
fn fddi_llc_snap() {
    // Frame control 0x50 (async LLC), dst, src, then AA AA 03, OUI 0, Ethertype 0x0800:
    // the layout of Zeek's llc.pcap.
    let mut f = vec![0x50, 0xaa, 0, 4, 0, 0x82, 0xa7, 0xaa, 0, 4, 0, 0x83, 0xa7];
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    f.extend_from_slice(&hello4());
    assert_hello(&seg(dec(linktype::FDDI, &f)), false);
    // An SMT frame (frame control 0x41).
    let mut smt = f.clone();
    smt[0] = 0x41;
    assert_eq!(
        skipped(dec(linktype::FDDI, &smt)),
        SkipReason::OtherLinkProtocol
    );
    assert_eq!(
        skipped(dec(linktype::FDDI, &f[..18])),
        SkipReason::TruncatedLinkHeader
    );
}

#[test]
fn ethernet_802_3_llc() {
    let ip = hello4();
    let mut body = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    body.extend_from_slice(&ip);
    let f = eth(body.len() as u16, &body);
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
    // Spanning tree: LLC 42 42 03, no SNAP.
    let stp = eth(38, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &stp)),
        SkipReason::OtherLinkProtocol
    );
    // SNAP with Cisco's OUI (CDP).
    let cdp = eth(38, &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0x00, 2]);
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &cdp)),
        SkipReason::OtherLinkProtocol
    );
}

#[test]
fn cisco_fabricpath() {
    // Outer dst/src, 0x8903, FTag/TTL, then the original Ethernet frame (as in Zeek's trace).
    let inner = eth(0x0800, &hello4());
    let mut body = vec![0x00, 0x00];
    body.extend_from_slice(&inner);
    let f = eth(0x8903, &body);
    assert_hello(&seg(dec(linktype::ETHERNET, &f)), false);
}

#[test]
fn ppp_and_hdlc() {
    let ip = hello4();
    let framed = [&[0xff, 0x03, 0x00, 0x21][..], &ip].concat();
    let bare = [&[0x00, 0x21][..], &ip].concat();
    let compressed = [&[0x21][..], &ip].concat();
    for f in [&framed, &bare, &compressed] {
        assert_hello(&seg(dec(linktype::PPP, f)), false);
    }
    assert_hello(&seg(dec(linktype::PPP_HDLC, &framed)), false);
    let chdlc = [&[0x0f, 0x00, 0x86, 0xdd][..], &hello6()].concat();
    assert_hello(&seg(dec(linktype::PPP_HDLC, &chdlc)), true);
    assert_hello(&seg(dec(linktype::C_HDLC, &chdlc)), true);
    // PPP carrying MPLS.
    let mpls = [&[0x02, 0x81][..], &label(5, true), &ip].concat();
    assert_hello(&seg(dec(linktype::PPP, &mpls)), false);
    assert_eq!(
        skipped(dec(linktype::C_HDLC, &[0x42, 0, 8, 0])),
        SkipReason::BadLinkHeader
    );
}

#[test]
fn unsupported_link_type() {
    let r = skipped(dec(127, &eth(0x0800, &hello4()))); // radiotap
    assert_eq!(r, SkipReason::UnsupportedLinkType);
    assert!(r.is_undecodable());
}

// ---------------------------------------------------------------------------------------------
// IP
// ---------------------------------------------------------------------------------------------

/// An IPv6 extension header of `len8` 8-octet units beyond the first (zero-filled options).
fn ext(next: u8, len8: u8) -> Vec<u8> {
    let mut e = vec![next, len8];
    e.resize(8 * (usize::from(len8) + 1), 0);
    e
}

fn frag6(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let mut e = vec![next, 0];
    e.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    e.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    e
}

#[test]
fn ipv6_extension_headers() {
    let tcp = tcp_seg(&SRC6, &DST6, PSH_ACK, &[], b"hello");
    // hop-by-hop (8) → routing (16) → destination options (8) → atomic fragment (8) → AH (12)
    // → TCP.
    let ah = vec![6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    let exts = [ext(43, 0), ext(60, 1), ext(44, 0), frag6(51, 0, false), ah].concat();
    let pkt = ipv6(0, &[&exts[..], &tcp].concat());
    let s = seg(dec(linktype::RAW, &pkt));
    assert_eq!(s.payload_len, 5);
    assert_eq!(s.ip_len, 40 + 8 + 16 + 8 + 8 + 12 + 20 + 5);
    assert_eq!(s.payload, b"hello");
    assert_eq!((s.src_port, s.dst_port), (40000, 80));
}

#[test]
fn ipv6_fragments() {
    let tcp = tcp_seg(&SRC6, &DST6, PSH_ACK, &[], b"hello");
    let first = ipv6(44, &[&frag6(6, 0, true)[..], &tcp].concat());
    let later = ipv6(44, &[&frag6(6, 185, false)[..], &tcp].concat());
    assert_eq!(skipped(dec(linktype::RAW, &first)), SkipReason::IpFragment);
    assert_eq!(skipped(dec(linktype::RAW, &later)), SkipReason::IpFragment);
    assert!(!SkipReason::IpFragment.is_undecodable());
}

#[test]
fn ipv6_bad_and_truncated_extensions() {
    // Hop-by-hop not first.
    let tcp = tcp_seg(&SRC6, &DST6, ACK, &[], b"");
    let pkt = ipv6(60, &[&ext(0, 0)[..], &ext(6, 0), &tcp].concat());
    assert_eq!(skipped(dec(linktype::RAW, &pkt)), SkipReason::BadIpHeader);
    // Capture cut inside a 16-byte destination options header.
    let pkt = ipv6(60, &[&ext(6, 1)[..], &tcp].concat());
    assert_eq!(
        skipped(decode(linktype::RAW, &pkt[..50], len(&pkt))),
        SkipReason::TruncatedIpHeader
    );
    // Extension header longer than the payload length says (complete capture).
    let mut pkt = ipv6(60, &ext(6, 1));
    pkt[4..6].copy_from_slice(&8u16.to_be_bytes());
    pkt.truncate(48);
    assert_eq!(skipped(dec(linktype::RAW, &pkt)), SkipReason::BadIpHeader);
}

#[test]
fn ipv4_fragments() {
    let tcp = tcp_seg(&SRC4, &DST4, PSH_ACK, &[], b"hello");
    let first = ipv4_with(6, MF, None, &tcp);
    let middle = ipv4_with(6, MF | 185, None, &tcp);
    let last = ipv4_with(6, 370, None, &tcp);
    for p in [&first, &middle, &last] {
        assert_eq!(skipped(dec(linktype::RAW, p)), SkipReason::IpFragment);
    }
    // DF alone, or no flags at all, is a whole packet.
    assert_hello(
        &seg(dec(linktype::RAW, &ipv4_with(6, 0, None, &tcp))),
        false,
    );
}

#[test]
fn ipv4_options_and_ah() {
    // IHL 6 (a 4-byte NOP/EOL option), then AH (12 bytes) carrying TCP.
    let tcp = tcp_seg(&SRC4, &DST4, PSH_ACK, &[], b"hello");
    let ah = [6u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    let body = [&[1u8, 1, 1, 0][..], &ah, &tcp].concat();
    let mut p = ipv4(51, &body);
    p[0] = 0x46;
    let s = seg(dec(linktype::RAW, &p));
    assert_eq!(s.payload_len, 5);
    assert_eq!(s.ip_len, 24 + 12 + 20 + 5);
    assert_eq!(s.payload, b"hello");
    assert_eq!(s.ip_header.len(), 24);
}

#[test]
fn ipv4_tso_zero_total_length() {
    // Captured before segmentation offload: total length 0; the wire length stands in.
    let tcp = tcp_seg(&SRC4, &DST4, PSH_ACK, &[], &[0x55; 3000]);
    let p = ipv4_with(6, DF, Some(0), &tcp);
    let f = eth(0x0800, &p);
    let s = seg(dec(linktype::ETHERNET, &f));
    assert_eq!(s.ip_len, 20 + 20 + 3000);
    assert_eq!(s.payload_len, 3000);
    assert_eq!(s.payload.len(), 3000);
    // Same, snaplen-cut at 200 bytes: the wire length still gives the size.
    let s = seg(decode(linktype::ETHERNET, &f[..200], len(&f)));
    assert_eq!(s.payload_len, 3000);
    assert_eq!(s.payload.len(), 200 - 14 - 40);
}

#[test]
fn bad_ip_headers() {
    let mut p = hello4();
    p[0] = 0x44; // IHL 4
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadIpHeader);
    let mut p = hello4();
    p[2..4].copy_from_slice(&10u16.to_be_bytes()); // total length < header
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadIpHeader);
    let mut p = hello4();
    p[0] = 0x55; // version 5
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadIpHeader);
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &eth(0x0800, &p))),
        SkipReason::BadIpHeader
    );
}

// ---------------------------------------------------------------------------------------------
// Non-TCP traffic
// ---------------------------------------------------------------------------------------------

fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

#[test]
fn non_tcp_reasons() {
    let cases: Vec<(Vec<u8>, SkipReason)> = vec![
        (eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]), SkipReason::Arp),
        (
            eth(0x0800, &ipv4(17, &udp(53, 53, b"dns"))),
            SkipReason::Ipv4Udp,
        ),
        (
            eth(0x86dd, &ipv6(17, &udp(53, 53, b"dns"))),
            SkipReason::Ipv6Udp,
        ),
        (
            eth(0x0800, &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1])),
            SkipReason::Ipv4Icmp,
        ),
        (
            eth(0x86dd, &ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1])),
            SkipReason::Ipv6Icmp,
        ),
        (eth(0x0800, &ipv4(2, &[0x11; 8])), SkipReason::IpOther), // IGMP
        (eth(0x86dd, &ipv6(59, &[])), SkipReason::IpOther),       // no next header
        (
            eth(0x0800, &ipv4(47, &[0; 8])),
            SkipReason::TunnelUnsupported,
        ), // GRE
        (
            eth(0x0800, &ipv4(41, &hello6())),
            SkipReason::TunnelUnsupported,
        ), // 6in4
        (eth(0x88cc, &[0; 40]), SkipReason::OtherEthertype),      // LLDP
        (
            eth(0x8100, &tag(1, 0x88cc, &[0; 40])),
            SkipReason::OtherEthertype,
        ),
    ];
    for (frame, want) in cases {
        let got = skipped(dec(linktype::ETHERNET, &frame));
        assert_eq!(got, want, "frame {frame:02x?}");
        assert!(!got.is_undecodable(), "{got:?}");
    }
}

#[test]
fn udp_tunnels() {
    // Teredo on its port, with an origin indication.
    let origin = [0u8, 0, 0x12, 0x34, 1, 2, 3, 4];
    let inner = [&origin[..], &hello6()].concat();
    let p = ipv4(17, &udp(3544, 50000, &inner));
    assert_eq!(
        skipped(dec(linktype::RAW, &p)),
        SkipReason::TunnelUnsupported
    );
    // Teredo between peers on arbitrary ports: recognised by the exact inner IPv6 length.
    let p = ipv4(17, &udp(3797, 32900, &hello6()));
    assert_eq!(
        skipped(dec(linktype::RAW, &p)),
        SkipReason::TunnelUnsupported
    );
    // A datagram on those ports that is not IPv6 is plain UDP.
    let p = ipv4(
        17,
        &udp(3797, 32900, b"not a tunnel at all, just bytes...."),
    );
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::Ipv4Udp);
    // GTP-U G-PDU.
    let gtp = [&[0x30, 0xff, 0, 45, 0, 0, 0, 1][..], &hello4()].concat();
    let p = ipv4(17, &udp(2152, 2152, &gtp));
    assert_eq!(
        skipped(dec(linktype::RAW, &p)),
        SkipReason::TunnelUnsupported
    );
    // VXLAN.
    let vx = [&[0x08, 0, 0, 0, 0, 0, 1, 0][..], &eth(0x0800, &hello4())].concat();
    let p = ipv4(17, &udp(55555, 4789, &vx));
    assert_eq!(
        skipped(dec(linktype::RAW, &p)),
        SkipReason::TunnelUnsupported
    );
}

// ---------------------------------------------------------------------------------------------
// TCP header and options
// ---------------------------------------------------------------------------------------------

#[test]
fn syn_options() {
    let f = eth(0x0800, &v4_tcp(SYN, &SYN_OPTS, b""));
    let s = seg(dec(linktype::ETHERNET, &f));
    assert!(s.flags.syn() && !s.flags.ack());
    assert_eq!(
        s.options,
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((7, 0)),
        }
    );
    assert_eq!(s.tcp_header.len(), 40);
    assert_eq!(s.payload_len, 0);
    assert_eq!(s.tcp_checksum_ok(), Some(true));
}

#[test]
fn the_aligned_timestamps_are_read_as_the_walk_reads_them() {
    use super::net::{parse_options, walk_options};
    let aligned = [1, 1, 8, 10, 0x80, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe];
    assert_eq!(
        parse_options(&aligned).timestamp,
        Some((0x8000_0001, 0xffff_fffe))
    );
    assert_eq!(parse_options(&aligned), walk_options(&aligned));
    // One byte more or less, or another option in front, is not the aligned layout: walked.
    for opts in [
        &aligned[..11],
        &[&aligned[..], &[0]].concat(),
        &[&[1, 1, 4, 2][..], &aligned[..]].concat(),
    ] {
        assert_eq!(parse_options(opts), walk_options(opts), "{opts:?}");
    }
}

#[test]
fn options_parsing_edge_cases() {
    use super::net::parse_options;
    // NOPs, an unknown option (kind 30, len 4), then timestamps.
    let o = parse_options(&[1, 1, 30, 4, 0, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    assert_eq!(o.timestamp, Some((1, 2)));
    // EOL ends the list: the MSS after it is padding, not an option.
    let o = parse_options(&[3, 3, 2, 0, 2, 4, 1, 0]);
    assert_eq!(o.window_scale, Some(2));
    assert_eq!(o.mss, None);
    // Length 0 or 1 stops parsing; what came before stays.
    let o = parse_options(&[4, 2, 2, 0, 3, 3, 9]);
    assert!(o.sack_permitted);
    assert_eq!(o.window_scale, None);
    let o = parse_options(&[2, 1, 4, 2]);
    assert_eq!(o, TcpOptions::default());
    // Length running past the end stops parsing.
    let o = parse_options(&[2, 4, 1, 0, 8, 10, 0, 0]);
    assert_eq!(o.mss, Some(256));
    assert_eq!(o.timestamp, None);
    // A known kind with the wrong length is skipped, the next one still read.
    let o = parse_options(&[2, 3, 5, 3, 3, 4]);
    assert_eq!((o.mss, o.window_scale), (None, Some(4)));
    // Option kind with no length byte at the end.
    let o = parse_options(&[4, 2, 8]);
    assert!(o.sack_permitted);
    assert_eq!(parse_options(&[]), TcpOptions::default());
}

#[test]
fn bad_tcp_headers() {
    // Data offset 4.
    let mut p = hello4();
    p[20 + 12] = 0x40;
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadTcpHeader);
    // Data offset 15 (60 bytes) in a packet whose IP length leaves 25 bytes for TCP.
    let mut p = hello4();
    p[20 + 12] = 0xf0;
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadTcpHeader);
    // IP total length leaves 10 bytes for a TCP header.
    let p = ipv4(6, &[0u8; 10]);
    assert_eq!(skipped(dec(linktype::RAW, &p)), SkipReason::BadTcpHeader);
}

#[test]
fn checksums() {
    let mut p = hello4();
    let n = p.len();
    p[n - 1] ^= 0xff;
    let s = seg(dec(linktype::RAW, &p));
    assert_eq!(s.tcp_checksum_ok(), Some(false));
    assert!(s.ip_checksum_ok());
    let mut p = hello4();
    p[8] = 1; // TTL changed, header checksum not updated
    assert!(!seg(dec(linktype::RAW, &p)).ip_checksum_ok());
    let mut p = hello6();
    let n = p.len();
    p[n - 1] ^= 0xff;
    assert_eq!(seg(dec(linktype::RAW, &p)).tcp_checksum_ok(), Some(false));
    assert_eq!(
        seg(dec(linktype::RAW, &hello6())).tcp_checksum_ok(),
        Some(true)
    );
    // Odd payload length.
    let p = v4_tcp(PSH_ACK, &[], b"odd");
    assert_eq!(seg(dec(linktype::RAW, &p)).tcp_checksum_ok(), Some(true));
}

// ---------------------------------------------------------------------------------------------
// Truncation (snaplen)
// ---------------------------------------------------------------------------------------------

#[test]
fn snaplen_cut_inside_payload() {
    let f = eth(0x0800, &v4_tcp(PSH_ACK, &SYN_OPTS, &[0xab; 1000]));
    let cut = &f[..96]; // tcpdump's old default snaplen
    let s = seg(decode(linktype::ETHERNET, cut, len(&f)));
    assert_eq!(s.payload_len, 1000);
    assert_eq!(s.ip_len, 20 + 40 + 1000);
    assert_eq!(s.payload.len(), 96 - 14 - 20 - 40);
    assert_eq!(s.options.mss, Some(1460));
    assert_eq!(s.tcp_checksum_ok(), None);
    // IPv6 likewise.
    let f = eth(0x86dd, &v6_tcp(PSH_ACK, &[], &[0xab; 1000]));
    let s = seg(decode(linktype::ETHERNET, &f[..100], len(&f)));
    assert_eq!(s.payload_len, 1000);
    assert_eq!(s.ip_len, 40 + 20 + 1000);
    assert_eq!(s.payload.len(), 100 - 14 - 40 - 20);
}

#[test]
fn snaplen_cut_in_headers() {
    let f = eth(0x0800, &v4_tcp(SYN, &SYN_OPTS, b""));
    let wire = len(&f);
    let at = |n: usize| skipped(decode(linktype::ETHERNET, &f[..n], wire));
    assert_eq!(at(0), SkipReason::TruncatedLinkHeader);
    assert_eq!(at(13), SkipReason::TruncatedLinkHeader);
    assert_eq!(at(14), SkipReason::TruncatedIpHeader);
    assert_eq!(at(33), SkipReason::TruncatedIpHeader);
    assert_eq!(at(34), SkipReason::TruncatedTcpHeader);
    assert_eq!(at(34 + 19), SkipReason::TruncatedTcpHeader);
    // Inside the options.
    assert_eq!(at(34 + 39), SkipReason::TruncatedTcpHeader);
    assert!(matches!(
        decode(linktype::ETHERNET, &f[..34 + 40], wire),
        Decoded::Tcp(_)
    ));
    // Cut inside a VLAN tag or an MPLS label.
    let v = eth(0x8100, &tag(1, 0x0800, &hello4()));
    assert_eq!(
        skipped(decode(linktype::ETHERNET, &v[..16], len(&v))),
        SkipReason::TruncatedLinkHeader
    );
    let m = eth(0x8847, &[&label(1, true)[..], &hello4()].concat());
    assert_eq!(
        skipped(decode(linktype::ETHERNET, &m[..16], len(&m))),
        SkipReason::TruncatedLinkHeader
    );
    assert_eq!(
        skipped(decode(linktype::ETHERNET, &m[..18], len(&m))),
        SkipReason::TruncatedIpHeader
    );
    for r in [
        SkipReason::TruncatedLinkHeader,
        SkipReason::TruncatedIpHeader,
        SkipReason::TruncatedTcpHeader,
    ] {
        assert!(r.is_undecodable());
    }
}

#[test]
fn garbage_is_undecodable() {
    let junk = [0xffu8; 64];
    for lt in [linktype::RAW, linktype::IPV4, linktype::IPV6] {
        assert!(skipped(dec(lt, &junk)).is_undecodable(), "link type {lt}");
    }
    assert_eq!(
        skipped(dec(linktype::ETHERNET, &[1, 2, 3])),
        SkipReason::TruncatedLinkHeader
    );
    assert_eq!(
        skipped(dec(linktype::RAW, &[])),
        SkipReason::TruncatedIpHeader
    );
}

// ---------------------------------------------------------------------------------------------
// SkipReason
// ---------------------------------------------------------------------------------------------

#[test]
fn skip_reason_names() {
    let mut names: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
    for n in &names {
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{n}"
        );
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SkipReason::ALL.len());
    assert_eq!(SkipReason::Ipv4Udp.as_str(), "ipv4_udp");
    assert_eq!(SkipReason::Ipv6Icmp.to_string(), "ipv6_icmp");
    let undecodable = SkipReason::ALL
        .iter()
        .filter(|r| r.is_undecodable())
        .count();
    assert_eq!(undecodable, 7);
}

// ---------------------------------------------------------------------------------------------
// Never panics
// ---------------------------------------------------------------------------------------------

const LINK_TYPES: [u32; 17] = [
    0,
    1,
    9,
    10,
    12,
    14,
    50,
    51,
    101,
    104,
    108,
    113,
    228,
    229,
    276,
    127,
    0xffff_ffff,
];

fn check_invariants(d: Decoded<'_>) {
    if let Decoded::Tcp(s) = d {
        assert!(s.payload.len() as u64 <= u64::from(s.payload_len));
        assert!(s.tcp_header.len() >= 20 && s.tcp_header.len() <= 60);
        assert!(!s.ip_header.is_empty());
        let _ = s.tcp_checksum_ok();
        let _ = s.ip_checksum_ok();
    }
}

/// Frames that reach deep into the decoder, to mutate.
fn seeds() -> Vec<(u32, Vec<u8>)> {
    vec![
        (1, eth(0x0800, &v4_tcp(SYN, &SYN_OPTS, b"x"))),
        (
            1,
            eth(
                0x8100,
                &tag(1, 0x8847, &[&label(3, true)[..], &hello6()].concat()),
            ),
        ),
        (
            101,
            ipv6(
                0,
                &[
                    &ext(44, 0)[..],
                    &frag6(6, 0, false),
                    &tcp_hdr(ACK, &SYN_OPTS),
                ]
                .concat(),
            ),
        ),
        (
            113,
            [
                &[0u8, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00][..],
                &hello4(),
            ]
            .concat(),
        ),
    ]
}

proptest! {
    #[test]
    fn options_read_the_same_on_the_fast_path_and_by_the_walk(
        tail in prop::collection::vec(any::<u8>(), 8..=8),
        head in prop::sample::select(vec![[1u8, 1, 8, 10], [1, 1, 8, 9], [1, 0, 8, 10], [8, 10, 1, 1]]),
        extra in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        use super::net::{parse_options, walk_options};
        let opts = [&head[..], &tail[..], &extra[..]].concat();
        prop_assert_eq!(parse_options(&opts), walk_options(&opts));
    }

    #[test]
    fn random_bytes_never_panic(
        lt in prop::sample::select(&LINK_TYPES[..]),
        data in prop::collection::vec(any::<u8>(), 0..160),
        orig_len in any::<u32>(),
    ) {
        check_invariants(decode(lt, &data, orig_len));
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        orig_len in any::<u32>(),
    ) {
        let (lt, mut f) = seeds().swap_remove(which);
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] = b;
        }
        let n = cut.index(f.len() + 1);
        check_invariants(decode(lt, &f[..n], orig_len));
    }

    #[test]
    fn truncation_gives_segment_or_truncated_reason(cut in 0usize..200) {
        let f = eth(0x0800, &v4_tcp(PSH_ACK, &SYN_OPTS, &[7; 100]));
        let n = cut.min(f.len());
        match decode(linktype::ETHERNET, &f[..n], len(&f)) {
            Decoded::Tcp(s) => {
                prop_assert!(n >= 14 + 20 + 40);
                prop_assert_eq!(s.payload_len, 100);
                prop_assert_eq!(s.payload.len(), n - 74);
            }
            Decoded::Skipped(r) => {
                prop_assert!(n < 74);
                prop_assert!(matches!(
                    r,
                    SkipReason::TruncatedLinkHeader
                        | SkipReason::TruncatedIpHeader
                        | SkipReason::TruncatedTcpHeader
                ));
            }
        }
    }
}

/// An IPv4 packet near the plain case: the version and header length byte, total length,
/// fragment bits and protocol drawn from values that matter, then a TCP header of any data
/// offset and a payload, cut anywhere.
fn near_plain_ipv4() -> impl Strategy<Value = (Vec<u8>, u32)> {
    (
        prop::sample::select(vec![0x45u8, 0x45, 0x45, 0x46, 0x44, 0x55, 0x4f]),
        prop_oneof![
            Just(None),
            (0u16..120).prop_map(Some),
            any::<u16>().prop_map(Some)
        ],
        prop::sample::select(vec![0u16, 0x4000, 0x4000, 0x2000, 0x0001, 0x6001, 0x8000]),
        prop::sample::select(vec![6u8, 6, 6, 17, 51, 1, 4]),
        prop::sample::select(vec![0x50u8, 0x80, 0xf0, 0x40, 0x00, 0x60]),
        prop::collection::vec(any::<u8>(), 0..80),
        any::<prop::sample::Index>(),
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
    )
        .prop_map(|(vihl, total, frag, proto, offset, body, cut, wire)| {
            let mut tcp = tcp_hdr(ACK, &SYN_OPTS);
            tcp[12] = offset;
            tcp.extend_from_slice(&body);
            let mut pkt = ipv4_with(proto, frag, total, &tcp);
            pkt[0] = vihl;
            let n = cut.index(pkt.len() + 1);
            pkt.truncate(n);
            let wire = wire.unwrap_or(len(&pkt));
            (pkt, wire)
        })
}

proptest! {
    // About one case in ten takes the plain path.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The plain IPv4 path reads what etherparse's slice reads.
    #[test]
    fn plain_ipv4_agrees_with_etherparse((pkt, wire) in near_plain_ipv4()) {
        let sliced = net::ipv4_sliced(&pkt, wire);
        if let Some(plain) = net::plain_ipv4_tcp(&pkt, wire) {
            prop_assert_eq!(format!("{plain:?}"), format!("{sliced:?}"));
        }
    }
}

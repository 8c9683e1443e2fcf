//! IPv4/IPv6 (with extension headers), the TCP header and its options.
//!
//! The IP layer uses etherparse's lax slices, which accept packets cut short by the snapshot
//! length and IPv4 packets whose total length is 0 (captured before TSO filled it in); the
//! lengths reported come from the IP header, not from what was captured.

use std::net::IpAddr;

use etherparse::err::{LenError, ip_auth, ipv4, ipv6, ipv6_exts};
use etherparse::{IpNumber, LaxIpv4Slice, LaxIpv6Slice, LenSource, TcpHeaderSlice};

use super::link::Net;
use super::{Segment, SkipReason, TcpFlags, TcpOptions};

const IPV6_HEADER_LEN: u32 = 40;
const TCP_MIN_HEADER_LEN: usize = 20;

/// Decodes the IP packet `pkt`; `wire_len` is how long it was on the wire at most (the frame's
/// wire length minus the link header), used only when the IP header has no length.
pub(super) fn decode_ip(net: Net, pkt: &[u8], wire_len: u32) -> Result<Segment<'_>, SkipReason> {
    let net = match net {
        Net::Guess => match pkt.first().map(|b| b >> 4) {
            None => return Err(SkipReason::TruncatedIpHeader),
            Some(4) => Net::Ipv4,
            Some(6) => Net::Ipv6,
            Some(_) => return Err(SkipReason::BadIpHeader),
        },
        known => known,
    };
    if net == Net::Ipv4 {
        ipv4(pkt, wire_len)
    } else {
        ipv6(pkt, wire_len)
    }
}

/// A length error is truncation when the captured bytes ran out, damage when the header's own
/// length field left no room.
fn len_reason(e: &LenError) -> SkipReason {
    if e.len_source == LenSource::Slice {
        SkipReason::TruncatedIpHeader
    } else {
        SkipReason::BadIpHeader
    }
}

fn ipv4(pkt: &[u8], wire_len: u32) -> Result<Segment<'_>, SkipReason> {
    plain_ipv4_tcp(pkt, wire_len).unwrap_or_else(|| ipv4_sliced(pkt, wire_len))
}

/// Nearly every packet: IPv4 without options, not a fragment, carrying TCP, read in place
/// (through etherparse's slice it takes about 45 instructions more a packet, 1 % of a run
/// that writes JSON lines). `None` for anything else, which [`ipv4_sliced`] reads; a test
/// holds the two to the same result on every frame.
pub(super) fn plain_ipv4_tcp(pkt: &[u8], wire_len: u32) -> Option<Result<Segment<'_>, SkipReason>> {
    let ip_header = pkt.first_chunk::<20>()?;
    let (fixed, addresses) = ip_header.split_first_chunk::<12>()?;
    let &[version_ihl, _, l0, l1, _, _, f0, f1, _, protocol, _, _] = fixed;
    if (version_ihl, protocol) != (0x45, 6) {
        return None;
    }
    // More fragments, or an offset: a fragment.
    if u16::from_be_bytes([f0, f1]) & 0x3fff != 0 {
        return None;
    }
    let (ip_len, end) = match u16::from_be_bytes([l0, l1]) {
        // Captured on the sending host before segmentation offload set the length.
        0 => (wire_len, pkt.len()),
        n => (u32::from(n), usize::from(n).min(pkt.len())),
    };
    // (`None` too for a total length shorter than the header: the slice says why.)
    let payload = pkt.get(20..end)?;
    let (src, dst) = addresses.split_first_chunk::<4>()?;
    let (src, dst) = (IpAddr::from(*src), IpAddr::from(*dst.first_chunk::<4>()?));
    Some(tcp(
        src,
        dst,
        ip_header,
        payload,
        ip_len.saturating_sub(20),
        ip_len,
    ))
}

/// Any IPv4 packet, through etherparse's lax slice.
pub(super) fn ipv4_sliced(pkt: &[u8], wire_len: u32) -> Result<Segment<'_>, SkipReason> {
    let (ip, auth_err) = LaxIpv4Slice::from_slice(pkt).map_err(|e| match e {
        ipv4::HeaderSliceError::Len(_) => SkipReason::TruncatedIpHeader,
        ipv4::HeaderSliceError::Content(_) => SkipReason::BadIpHeader,
    })?;
    let hdr = ip.header();
    // (`header()` borrows from `ip`; re-slice the input for the frame's lifetime.)
    let ip_header = pkt.get(..hdr.slice().len()).unwrap_or(&[]);
    let header_len = len32(ip_header.len());
    let total_len = u32::from(hdr.total_len());
    let ip_len = match total_len {
        // Captured on the sending host before segmentation offload set the length.
        0 => wire_len,
        n if n < header_len => return Err(SkipReason::BadIpHeader),
        n => n,
    };
    if hdr.is_fragmenting_payload() {
        return Err(SkipReason::IpFragment);
    }
    if let Some(e) = auth_err {
        return Err(match e {
            ip_auth::HeaderSliceError::Len(l) => len_reason(&l),
            ip_auth::HeaderSliceError::Content(_) => SkipReason::BadIpHeader,
        });
    }
    let ext_len = ip.extensions().auth.map_or(0, |a| len32(a.slice().len()));
    let payload = ip.payload();
    let transport_len = ip_len.saturating_sub(header_len).saturating_sub(ext_len);
    let (src, dst) = (
        IpAddr::V4(hdr.source_addr()),
        IpAddr::V4(hdr.destination_addr()),
    );
    match payload.ip_number {
        IpNumber::TCP => tcp(src, dst, ip_header, payload.payload, transport_len, ip_len),
        IpNumber::UDP => Err(udp(payload.payload).unwrap_or(SkipReason::Ipv4Udp)),
        IpNumber::ICMP => Err(SkipReason::Ipv4Icmp),
        n => Err(other_protocol(n)),
    }
}

fn ipv6(pkt: &[u8], wire_len: u32) -> Result<Segment<'_>, SkipReason> {
    let (ip, ext_err) = LaxIpv6Slice::from_slice(pkt).map_err(|e| match e {
        ipv6::HeaderSliceError::Len(_) => SkipReason::TruncatedIpHeader,
        ipv6::HeaderSliceError::Content(_) => SkipReason::BadIpHeader,
    })?;
    let hdr = ip.header();
    let payload_length = u32::from(hdr.payload_length());
    let ip_len = if payload_length == 0 && wire_len > IPV6_HEADER_LEN {
        // Unset (offload) or a jumbogram: the wire length is the best there is.
        wire_len
    } else {
        IPV6_HEADER_LEN + payload_length
    };
    // A fragment header with offset 0 and no more fragments (an atomic fragment) is fine.
    if ip.is_payload_fragmented() {
        return Err(SkipReason::IpFragment);
    }
    if let Some((e, _)) = ext_err {
        return Err(match e {
            ipv6_exts::HeaderSliceError::Len(l) => len_reason(&l),
            ipv6_exts::HeaderSliceError::Content(_) => SkipReason::BadIpHeader,
        });
    }
    let ext_len = len32(ip.extensions().slice().len());
    let payload = ip.payload();
    let transport_len = ip_len
        .saturating_sub(IPV6_HEADER_LEN)
        .saturating_sub(ext_len);
    let (src, dst) = (
        IpAddr::V6(hdr.source_addr()),
        IpAddr::V6(hdr.destination_addr()),
    );
    match payload.ip_number {
        IpNumber::TCP => tcp(
            src,
            dst,
            hdr.slice(),
            payload.payload,
            transport_len,
            ip_len,
        ),
        IpNumber::UDP => Err(udp(payload.payload).unwrap_or(SkipReason::Ipv6Udp)),
        IpNumber::IPV6_ICMP => Err(SkipReason::Ipv6Icmp),
        n => Err(other_protocol(n)),
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// IP protocols other than TCP, UDP and the version's own ICMP.
fn other_protocol(n: IpNumber) -> SkipReason {
    match n {
        // IP-in-IP, IPv6-in-IPv4 (6in4), GRE, EtherIP, L2TPv3.
        IpNumber::IPV4 | IpNumber::IPV6 | IpNumber::GRE | IpNumber::ETHER_IP => {
            SkipReason::TunnelUnsupported
        }
        IpNumber(115) => SkipReason::TunnelUnsupported,
        _ => SkipReason::IpOther,
    }
}

/// Recognises UDP tunnels (Teredo, GTP-U, VXLAN, Geneve) from the captured datagram; `None`
/// for plain UDP.
fn udp(dgram: &[u8]) -> Option<SkipReason> {
    let [s0, s1, d0, d1] = *dgram.first_chunk::<4>()?;
    let (sport, dport) = (u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1]));
    let body = dgram.get(8..)?;
    let either = |p: u16| sport == p || dport == p;
    let tunnel = if either(2152) {
        // GTP-U version 1, message type 255 (G-PDU).
        body.first().is_some_and(|b| b >> 5 == 1) && body.get(1) == Some(&0xff)
    } else if either(4789) || either(8472) {
        // VXLAN: the I flag.
        body.first().is_some_and(|b| b & 0x08 != 0)
    } else if either(6081) {
        // Geneve version 0.
        body.first().is_some_and(|b| b >> 6 == 0) && body.len() >= 8
    } else {
        is_teredo(body, either(3544))
    };
    tunnel.then_some(SkipReason::TunnelUnsupported)
}

/// Teredo (RFC 4380): optional authentication and origin indications, then an IPv6 packet.
/// Teredo peers use any port, so like Zeek we also accept a datagram on another port when it
/// holds exactly one well-formed IPv6 packet.
fn is_teredo(body: &[u8], teredo_port: bool) -> bool {
    let mut p = body;
    if let Some([0x00, 0x01, id_len, au_len]) = p.first_chunk::<4>().copied() {
        let skip = 4 + usize::from(id_len) + usize::from(au_len) + 8 + 1;
        match p.get(skip..) {
            Some(rest) => p = rest,
            None => return false,
        }
    }
    if p.starts_with(&[0x00, 0x00]) {
        match p.get(8..) {
            Some(rest) => p = rest,
            None => return false,
        }
    }
    let Some(&[version, _, _, _, l0, l1]) = p.first_chunk::<6>() else {
        return false;
    };
    if version >> 4 != 6 {
        return false;
    }
    let declared = 40 + usize::from(u16::from_be_bytes([l0, l1]));
    teredo_port || declared == p.len()
}

// Inlined into each caller, so that the segment is built in the caller's frame rather than
// returned and copied out (about 45 instructions a packet, 1.2 % of a run writing JSON lines).
#[inline(always)]
fn tcp<'a>(
    src: IpAddr,
    dst: IpAddr,
    ip_header: &'a [u8],
    seg: &'a [u8],
    transport_len: u32,
    ip_len: u32,
) -> Result<Segment<'a>, SkipReason> {
    let declared_short = |n: usize| transport_len < len32(n);
    let Some(&offset_byte) = seg.get(12) else {
        return Err(if declared_short(TCP_MIN_HEADER_LEN) {
            SkipReason::BadTcpHeader
        } else {
            SkipReason::TruncatedTcpHeader
        });
    };
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < TCP_MIN_HEADER_LEN || declared_short(header_len) {
        return Err(SkipReason::BadTcpHeader);
    }
    let (raw, rest) = seg
        .split_at_checked(header_len)
        .ok_or(SkipReason::TruncatedTcpHeader)?;
    let h = TcpHeaderSlice::from_slice(raw).map_err(|_| SkipReason::BadTcpHeader)?;
    let payload_len = transport_len.saturating_sub(len32(header_len));
    let captured = usize::try_from(payload_len).map_or(rest.len(), |n| n.min(rest.len()));
    Ok(Segment {
        src,
        dst,
        src_port: h.source_port(),
        dst_port: h.destination_port(),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        flags: TcpFlags(raw.get(13).copied().unwrap_or(0)),
        window: h.window_size(),
        options: parse_options(h.options()),
        payload_len,
        ip_len,
        payload: rest.get(..captured).unwrap_or(&[]),
        ip_header,
        tcp_header: raw,
    })
}

/// Reads MSS, window scale, SACK-permitted and timestamps; stops quietly at the end-of-list
/// option or at the first option whose length does not fit, keeping what was read before.
/// An option of a known kind with the wrong length is skipped.
///
/// Inlined, with `decode` and `decode_frame`, for the reason given at `decode`.
#[inline(always)]
pub(super) fn parse_options(opts: &[u8]) -> TcpOptions {
    // After the handshake, nearly every segment of Linux and the BSDs carries exactly this:
    // NOP, NOP, timestamps, the layout RFC 7323 (Appendix A) recommends so that the values are
    // aligned. Linux reads it on a fast path too (`tcp_parse_aligned_timestamp`); the walk
    // below would give the same.
    if let &[1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3] = opts {
        return TcpOptions {
            timestamp: Some((
                u32::from_be_bytes([v0, v1, v2, v3]),
                u32::from_be_bytes([e0, e1, e2, e3]),
            )),
            ..TcpOptions::default()
        };
    }
    walk_options(opts)
}

/// [`parse_options`] for any layout: option by option.
pub(super) fn walk_options(mut opts: &[u8]) -> TcpOptions {
    let mut out = TcpOptions::default();
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => break,
            1 => {
                opts = rest;
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.first() else { break };
        let Some((opt, rest)) = opts.split_at_checked(usize::from(len)) else {
            break;
        };
        if len < 2 {
            break;
        }
        match (kind, opt) {
            (2, &[_, _, a, b]) => out.mss = Some(u16::from_be_bytes([a, b])),
            (3, &[_, _, shift]) => out.window_scale = Some(shift),
            (4, &[_, _]) => out.sack_permitted = true,
            (8, &[_, _, v0, v1, v2, v3, e0, e1, e2, e3]) => {
                out.timestamp = Some((
                    u32::from_be_bytes([v0, v1, v2, v3]),
                    u32::from_be_bytes([e0, e1, e2, e3]),
                ));
            }
            _ => {}
        }
        opts = rest;
    }
    out
}

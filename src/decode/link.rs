//! The link-layer walk: from the start of a frame to the start of its IP packet.
//!
//! Written by hand (etherparse has no SLL2, FDDI, NULL/LOOP, MPLS or PPPoE), as one loop over
//! "what comes next" so that stacks such as VLAN → MPLS → IPv4 or PPPoE → PPP → MPLS need no
//! recursion. Every read goes through `get`, so a frame cut anywhere yields a reason, never a
//! panic.

use super::SkipReason;

/// LINKTYPE_ numbers (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const FDDI: u32 = 10;
    /// DLT_RAW on most BSDs and Linux.
    pub const DLT_RAW_12: u32 = 12;
    /// DLT_RAW on OpenBSD.
    pub const DLT_RAW_14: u32 = 14;
    pub const PPP_HDLC: u32 = 50;
    pub const PPP_ETHER: u32 = 51;
    pub const RAW: u32 = 101;
    pub const C_HDLC: u32 = 104;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const QINQ: u16 = 0x88a8;
    pub const FABRICPATH: u16 = 0x8903;
    /// Pre-802.1ad QinQ outer tags still seen on some switches.
    pub const QINQ_OLD1: u16 = 0x9100;
    pub const QINQ_OLD2: u16 = 0x9200;
    pub const QINQ_OLD3: u16 = 0x9300;
    /// Largest value of the Ethernet type/length field that is a length (802.3).
    pub const MAX_802_3_LEN: u16 = 1500;
    /// Smallest value that is an Ethertype.
    pub const MIN_ETHERTYPE: u16 = 0x0600;
}

/// Linux `ARPHRD_NETLINK`: SLL frames whose protocol field is a netlink family.
const ARPHRD_NETLINK: u16 = 824;
/// Linux SLL protocol value for frames that start with an 802.2 LLC header.
const SLL_P_802_2: u16 = 0x0004;

/// How many encapsulation steps (tags, labels, shims) one frame may stack before it is judged
/// damaged. Real stacks are 1–4 deep.
const MAX_STEPS: usize = 24;

/// Which IP version the link layer says follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Net {
    Ipv4,
    Ipv6,
    /// No type field (raw IP, MPLS): the version nibble decides.
    Guess,
}

/// The network-layer packet's version and its offset in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct L3 {
    pub net: Net,
    pub offset: usize,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..)?
        .first_chunk::<2>()
        .map(|b| u16::from_be_bytes(*b))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..)?
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b))
}

/// Walks the link layer of a frame of the given LINKTYPE.
pub(super) fn walk(link_type: u32, data: &[u8]) -> Result<L3, SkipReason> {
    use SkipReason::*;
    match link_type {
        linktype::ETHERNET => ethernet(data, 0),
        linktype::RAW | linktype::DLT_RAW_12 | linktype::DLT_RAW_14 => Ok(L3 {
            net: Net::Guess,
            offset: 0,
        }),
        linktype::IPV4 => Ok(L3 {
            net: Net::Ipv4,
            offset: 0,
        }),
        linktype::IPV6 => Ok(L3 {
            net: Net::Ipv6,
            offset: 0,
        }),
        linktype::LINUX_SLL => {
            // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
            let (Some(arphrd), Some(proto)) = (be16(data, 2), be16(data, 14)) else {
                return Err(TruncatedLinkHeader);
            };
            sll_payload(data, arphrd, proto, 16)
        }
        linktype::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
            let (Some(proto), Some(arphrd)) = (be16(data, 0), be16(data, 8)) else {
                return Err(TruncatedLinkHeader);
            };
            if data.len() < 20 {
                return Err(TruncatedLinkHeader);
            }
            sll_payload(data, arphrd, proto, 20)
        }
        linktype::NULL => {
            // The address family in the capturing host's byte order: take whichever reading
            // is a plausible (small) family number.
            let word = be32(data, 0).ok_or(TruncatedLinkHeader)?;
            let family = if word > 0xffff {
                word.swap_bytes()
            } else {
                word
            };
            bsd_family(family)
        }
        linktype::LOOP => bsd_family(be32(data, 0).ok_or(TruncatedLinkHeader)?),
        linktype::FDDI => {
            // frame control(1) dst(6) src(6), then 802.2 LLC
            let fc = *data.first().ok_or(TruncatedLinkHeader)?;
            if data.len() < 13 {
                return Err(TruncatedLinkHeader);
            }
            // Frame control CLFFZZZZ: FF = 01 is an LLC frame; the rest are SMT/MAC frames.
            if fc & 0x30 != 0x10 {
                return Err(OtherLinkProtocol);
            }
            let (et, off) = llc(data, 13)?;
            ether_payload(data, et, off)
        }
        linktype::PPP => {
            // Optional HDLC-like address/control (FF 03), then the PPP protocol field.
            let off = if data.starts_with(&[0xff, 0x03]) {
                2
            } else {
                0
            };
            let (et, off) = ppp(data, off)?;
            ether_payload(data, et, off)
        }
        linktype::PPP_HDLC | linktype::C_HDLC => match data.first() {
            None => Err(TruncatedLinkHeader),
            Some(0xff) if link_type == linktype::PPP_HDLC => {
                let (et, off) = ppp(data, 2)?;
                ether_payload(data, et, off)
            }
            // Cisco HDLC: address (0x0F unicast, 0x8F broadcast), control, Ethertype.
            Some(0x0f | 0x8f) => {
                let et = be16(data, 2).ok_or(TruncatedLinkHeader)?;
                ether_payload(data, et, 4)
            }
            Some(_) => Err(BadLinkHeader),
        },
        linktype::PPP_ETHER => {
            let (et, off) = pppoe_session(data, 0)?;
            ether_payload(data, et, off)
        }
        _ => Err(UnsupportedLinkType),
    }
}

/// An Ethernet II / 802.3 frame starting at `off`.
fn ethernet(data: &[u8], off: usize) -> Result<L3, SkipReason> {
    let et = be16(data, off + 12).ok_or(SkipReason::TruncatedLinkHeader)?;
    ether_payload(data, et, off + 14)
}

/// Linux cooked capture (v1 and v2) payload.
fn sll_payload(data: &[u8], arphrd: u16, proto: u16, off: usize) -> Result<L3, SkipReason> {
    if arphrd == ARPHRD_NETLINK {
        return Err(SkipReason::OtherLinkProtocol);
    }
    if proto == SLL_P_802_2 {
        let (et, off) = llc(data, off)?;
        return ether_payload(data, et, off);
    }
    if proto < ethertype::MIN_ETHERTYPE {
        // Novell 802.3, CAN, and other Linux pseudo-protocols.
        return Err(SkipReason::OtherLinkProtocol);
    }
    ether_payload(data, proto, off)
}

/// BSD loopback address families (NULL, LOOP).
fn bsd_family(family: u32) -> Result<L3, SkipReason> {
    match family {
        2 => Ok(L3 {
            net: Net::Ipv4,
            offset: 4,
        }),
        // AF_INET6 on NetBSD/OpenBSD/BSD-OS (24), FreeBSD/DragonFly (28), Darwin (30).
        24 | 28 | 30 => Ok(L3 {
            net: Net::Ipv6,
            offset: 4,
        }),
        _ => Err(SkipReason::OtherLinkProtocol),
    }
}

/// An 802.2 LLC header at `off`; only SNAP with an Ethertype carries anything for us.
/// Returns the Ethertype and the offset of what follows.
fn llc(data: &[u8], off: usize) -> Result<(u16, usize), SkipReason> {
    use SkipReason::*;
    let hdr = data
        .get(off..)
        .and_then(|d| d.first_chunk::<3>())
        .ok_or(TruncatedLinkHeader)?;
    match *hdr {
        // SNAP: AA AA 03, OUI(3), Ethertype(2)
        [0xaa, 0xaa, 0x03] => {
            let snap = data
                .get(off + 3..)
                .and_then(|d| d.first_chunk::<5>())
                .ok_or(TruncatedLinkHeader)?;
            let [o1, o2, o3, t1, t2] = *snap;
            // OUI 00-00-00 (RFC 1042) and 00-00-F8 (802.1H) carry Ethertypes; other OUIs
            // carry vendor protocols (CDP, ...).
            if o1 != 0 || o2 != 0 || (o3 != 0 && o3 != 0xf8) {
                return Err(OtherLinkProtocol);
            }
            Ok((u16::from_be_bytes([t1, t2]), off + 8))
        }
        // IP straight over LLC (SAP 06), rare but defined.
        [0x06, 0x06, 0x03] => Ok((ethertype::IPV4, off + 3)),
        // STP, NetBIOS, IPX, Novell raw 802.3 (FF FF), ...
        _ => Err(OtherLinkProtocol),
    }
}

/// A PPP protocol field at `off` (1 byte when protocol-field compression is used, which is
/// recognisable by an odd first byte). Maps it to the Ethertype of the same protocol.
fn ppp(data: &[u8], off: usize) -> Result<(u16, usize), SkipReason> {
    let first = *data.get(off).ok_or(SkipReason::TruncatedLinkHeader)?;
    let (proto, off) = if first & 1 == 1 {
        (u16::from(first), off + 1)
    } else {
        (
            be16(data, off).ok_or(SkipReason::TruncatedLinkHeader)?,
            off + 2,
        )
    };
    let et = match proto {
        0x0021 => ethertype::IPV4,
        0x0057 => ethertype::IPV6,
        0x0281 => ethertype::MPLS_UNICAST,
        0x0283 => ethertype::MPLS_MULTICAST,
        // LCP, IPCP, PAP, CHAP, compressed datagrams, ...
        _ => return Err(SkipReason::OtherLinkProtocol),
    };
    Ok((et, off))
}

/// A PPPoE session header (ver/type, code, session id, length) at `off`, then PPP.
fn pppoe_session(data: &[u8], off: usize) -> Result<(u16, usize), SkipReason> {
    if data.len() < off + 6 {
        return Err(SkipReason::TruncatedLinkHeader);
    }
    ppp(data, off + 6)
}

/// An MPLS label stack at `off`; the payload after the bottom of stack is IPv4 or IPv6 by its
/// version nibble.
fn mpls(data: &[u8], mut off: usize) -> Result<L3, SkipReason> {
    use SkipReason::*;
    for _ in 0..MAX_STEPS {
        let entry = be32(data, off).ok_or(TruncatedLinkHeader)?;
        off += 4;
        if entry & 0x100 != 0 {
            return match data.get(off).map(|b| b >> 4) {
                // Nothing captured after the stack: let the IP layer call it truncated.
                None => Ok(L3 {
                    net: Net::Guess,
                    offset: off,
                }),
                Some(4) => Ok(L3 {
                    net: Net::Ipv4,
                    offset: off,
                }),
                Some(6) => Ok(L3 {
                    net: Net::Ipv6,
                    offset: off,
                }),
                // Pseudowires (Ethernet over MPLS with a control word), ...
                Some(_) => Err(OtherLinkProtocol),
            };
        }
    }
    Err(BadLinkHeader)
}

/// Follows Ethertypes from `et` (whose payload starts at `off`) through tags and shims to the
/// IP packet.
fn ether_payload(data: &[u8], mut et: u16, mut off: usize) -> Result<L3, SkipReason> {
    use SkipReason::*;
    use ethertype as t;
    for _ in 0..MAX_STEPS {
        match et {
            t::IPV4 => {
                return Ok(L3 {
                    net: Net::Ipv4,
                    offset: off,
                });
            }
            t::IPV6 => {
                return Ok(L3 {
                    net: Net::Ipv6,
                    offset: off,
                });
            }
            t::ARP | t::RARP => return Err(Arp),
            t::VLAN | t::QINQ | t::QINQ_OLD1 | t::QINQ_OLD2 | t::QINQ_OLD3 => {
                // TCI(2), then the inner type/length.
                et = be16(data, off + 2).ok_or(TruncatedLinkHeader)?;
                off += 4;
            }
            t::MPLS_UNICAST | t::MPLS_MULTICAST => return mpls(data, off),
            t::PPPOE_SESSION => (et, off) = pppoe_session(data, off)?,
            t::PPPOE_DISCOVERY => return Err(OtherLinkProtocol),
            t::FABRICPATH => {
                // Cisco FabricPath: the outer header is an Ethernet header whose type is
                // 0x8903 followed by FTag/TTL (2 bytes); the original Ethernet frame follows
                // (Zeek skips 16 bytes from the frame start the same way).
                et = be16(data, off + 2 + 12).ok_or(TruncatedLinkHeader)?;
                off += 2 + 14;
            }
            0..=t::MAX_802_3_LEN => (et, off) = llc(data, off)?,
            _ => return Err(OtherEthertype),
        }
    }
    Err(BadLinkHeader)
}

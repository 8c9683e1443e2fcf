//! Stage 2: frames → TCP segments.
//!
//! Dispatches on the link type, walks IPv4/IPv6 (with extension headers) and parses the TCP
//! header and the options tcplife cares about. Lengths come from the IP header, not from the
//! captured bytes, so snaplen-truncated packets still count with their true size. Nothing here
//! allocates: a [`Segment`] borrows the frame.

use std::net::IpAddr;

/// The TCP flag bits, as on the wire (the low byte of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// The TCP options that matter for connection tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

/// One TCP segment as seen on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub options: TcpOptions,
    /// Payload length from the IP header (total/payload length minus IP and TCP headers),
    /// whatever was captured.
    pub payload_len: u32,
    /// The IP packet's length from its header (IPv4 total length; IPv6 40 + payload length).
    pub ip_len: u32,
    /// The captured part of the payload (shorter than `payload_len` when truncated).
    pub payload: &'a [u8],
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    Tcp(Segment<'a>),
    /// Not a TCP segment, or not one that can be read; counted by reason, never fatal.
    Skipped(SkipReason),
}

/// Why a frame produced no segment. (Placeholder variants: to be completed.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NotTcp,
}

// TO BE WRITTEN: SkipReason (each with a stable snake_case `as_str()` name and
// `is_undecodable()`: true for damage, false for a well-formed non-TCP packet) and
// `pub fn decode(link_type: u32, data: &[u8], orig_len: u32) -> Decoded<'_>`.

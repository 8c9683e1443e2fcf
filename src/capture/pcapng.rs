//! What a pcapng reader must remember between blocks: the current section's byte order, its
//! interface table (link type, snapshot length, timestamp resolution and offset of each
//! interface), and the last timestamp seen (Simple Packet Blocks carry none).
//!
//! Timestamps are converted to integer nanoseconds here, exactly, rather than with
//! pcap-parser's helper: that helper truncates seconds to 32 bits and drops sub-unit precision,
//! and a timeline that is off by a few nanoseconds can reorder packets of different interfaces.

use pcap_parser::pcapng::{InterfaceDescriptionBlock, OptionCode};

/// Block type of a Section Header Block; the same bytes in either byte order.
pub(crate) const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// Block type of an Enhanced Packet Block.
pub(crate) const EPB_TYPE: u32 = 0x0000_0006;
/// Block type of a Simple Packet Block.
pub(crate) const SPB_TYPE: u32 = 0x0000_0003;
/// Block type of an Interface Description Block.
pub(crate) const IDB_TYPE: u32 = 0x0000_0001;
/// Block type of the Obsolete Packet Block, still written by some old tools; pcap-parser does
/// not know it, so it arrives as an unknown block and is decoded here.
pub(crate) const OPB_TYPE: u32 = 0x0000_0002;
/// The byte-order magic of a section header, as read in the section's own byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const NS_PER_S: u128 = 1_000_000_000;
const NS_PER_S_SIGNED: i128 = 1_000_000_000;

/// How an interface's 64-bit timestamp turns into nanoseconds, worked out once per interface so
/// the per-packet conversion is one multiplication, division or shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsScale {
    /// Units are 10^-k s with k <= 9: multiply by 10^(9-k).
    Multiply(u64),
    /// Units are 10^-k s with k > 9: divide by 10^(k-9), rounding down.
    Divide(u128),
    /// Units are 2^-k s: multiply by 10^9, then shift right by k, rounding down.
    Shift(u32),
    /// Units so small that no 64-bit count reaches one nanosecond (10^-29 s and below).
    Zero,
}

impl TsScale {
    /// The scale for an `if_tsresol` byte: high bit clear means 10^-value seconds, high bit set
    /// means 2^-(value & 0x7f) seconds.
    pub(crate) fn from_tsresol(tsresol: u8) -> TsScale {
        let exponent = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            return TsScale::Shift(exponent);
        }
        if exponent <= 9 {
            // 10^(9-exponent) <= 10^9 always fits.
            return TsScale::Multiply(10u64.pow(9 - exponent));
        }
        match 10u128.checked_pow(exponent - 9) {
            Some(divisor) => TsScale::Divide(divisor),
            None => TsScale::Zero,
        }
    }

    /// Nanoseconds for `units` time units, rounded down. Exact: u64 × 10^9 fits in a u128.
    pub(crate) fn to_ns(self, units: u64) -> u128 {
        let units = u128::from(units);
        match self {
            TsScale::Multiply(factor) => units * u128::from(factor),
            TsScale::Divide(divisor) => units / divisor,
            TsScale::Shift(bits) => (units * NS_PER_S).checked_shr(bits).unwrap_or(0),
            TsScale::Zero => 0,
        }
    }
}

/// One row of a section's interface table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) link_type: u32,
    /// 0 means no limit.
    pub(crate) snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`: seconds to add to every timestamp of this interface.
    offset_s: i64,
}

impl Interface {
    /// Reads the interface's link type, snapshot length, `if_tsresol` and `if_tsoffset`.
    ///
    /// The options are decoded here, in the section's byte order, because pcap-parser reads
    /// `if_tsoffset` as little-endian whatever the section says.
    pub(crate) fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Interface {
        let mut tsresol = None;
        let mut offset_s = None;
        for option in &idb.options {
            let value = option.value();
            if option.code == OptionCode::IfTsresol && tsresol.is_none() {
                tsresol = value.first().copied();
            } else if option.code == OptionCode::IfTsoffset && offset_s.is_none() {
                offset_s = value
                    .get(..8)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map(|bytes| {
                        if big_endian {
                            i64::from_be_bytes(bytes)
                        } else {
                            i64::from_le_bytes(bytes)
                        }
                    });
            }
        }
        Interface::new(
            // The IDB's link type field is 16 bits wide, so this is never negative.
            u32::try_from(idb.linktype.0).unwrap_or(0),
            idb.snaplen,
            tsresol.unwrap_or(6),
            offset_s.unwrap_or(0),
        )
    }

    pub(crate) fn new(link_type: u32, snaplen: u32, tsresol: u8, offset_s: i64) -> Interface {
        Interface {
            link_type,
            snaplen,
            scale: TsScale::from_tsresol(tsresol),
            offset_s,
        }
    }

    /// Nanoseconds since the epoch for a packet timestamp of this interface, or `None` when the
    /// result is before the epoch or after [`MAX_TS_NS`](super::MAX_TS_NS) (the year 2116):
    /// only a damaged record or a wild `if_tsoffset` gets there.
    pub(crate) fn ts_ns(&self, ts_high: u32, ts_low: u32) -> Option<i64> {
        let units = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let since_offset = i128::try_from(self.scale.to_ns(units)).ok()?;
        let offset = i128::from(self.offset_s) * NS_PER_S_SIGNED;
        i64::try_from(since_offset + offset)
            .ok()
            .filter(|ns| (0..=super::MAX_TS_NS).contains(ns))
    }
}

/// The state of the section being read.
#[derive(Debug, Default)]
pub(crate) struct Section {
    pub(crate) big_endian: bool,
    pub(crate) interfaces: Vec<Interface>,
    /// Timestamp of the last packet that had one, for Simple Packet Blocks (0 before any).
    pub(crate) last_ts_ns: i64,
}

impl Section {
    /// Starts a new section: interface numbers restart from 0 and the byte order may change.
    pub(crate) fn restart(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
        self.interfaces.clear();
        self.last_ts_ns = 0;
    }

    /// Reads a u32 in this section's byte order.
    pub(crate) fn u32_at(&self, bytes: &[u8], at: usize) -> Option<u32> {
        read_u32(bytes, at, self.big_endian)
    }

    /// Undoes pcap-parser's habit of reading the type of unknown and custom blocks as
    /// little-endian whatever the section's byte order.
    pub(crate) fn normalise_type(&self, raw_le: u32) -> u32 {
        if self.big_endian {
            raw_le.swap_bytes()
        } else {
            raw_le
        }
    }

    /// The type and total length a block header at the start of `data` claims, `None` when fewer
    /// than 12 bytes are there, `Err` when a section header has no valid byte-order magic.
    ///
    /// A section header carries its own byte order, so its length is read in that order.
    pub(crate) fn block_header(&self, data: &[u8]) -> Option<Result<(u32, u32), String>> {
        let raw_type = read_u32(data, 0, false)?;
        if raw_type == SHB_TYPE {
            let big_endian = match read_u32(data, 8, false)? {
                BYTE_ORDER_MAGIC => false,
                magic if magic == BYTE_ORDER_MAGIC.swap_bytes() => true,
                magic => {
                    return Some(Err(format!(
                        "a pcapng section header has byte-order magic {magic:#010x} \
                         instead of 0x1a2b3c4d"
                    )));
                }
            };
            return read_u32(data, 4, big_endian).map(|len| Ok((SHB_TYPE, len)));
        }
        let block_type = self.u32_at(data, 0)?;
        let len = self.u32_at(data, 4)?;
        // Ask for 12 bytes before answering so that a section header, whose byte order is only
        // known at byte 8, is never judged on its first 8 bytes.
        data.get(8..12)?;
        Some(Ok((block_type, len)))
    }
}

/// An Obsolete Packet Block (type 2), decoded from the block body pcap-parser hands over (the
/// bytes between the block length and the trailing length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObsoletePacket<'a> {
    pub(crate) interface: u16,
    pub(crate) ts_high: u32,
    pub(crate) ts_low: u32,
    pub(crate) orig_len: u32,
    pub(crate) data: &'a [u8],
}

impl ObsoletePacket<'_> {
    /// Decodes the body; `None` when the captured length runs past the block.
    pub(crate) fn parse(body: &[u8], big_endian: bool) -> Option<ObsoletePacket<'_>> {
        let interface = body
            .get(..2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| {
                if big_endian {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                }
            })?;
        let ts_high = read_u32(body, 4, big_endian)?;
        let ts_low = read_u32(body, 8, big_endian)?;
        let caplen = usize::try_from(read_u32(body, 12, big_endian)?).ok()?;
        let orig_len = read_u32(body, 16, big_endian)?;
        let data = body.get(20..)?.get(..caplen)?;
        Some(ObsoletePacket {
            interface,
            ts_high,
            ts_low,
            orig_len,
            data,
        })
    }
}

/// A short name for a pcapng block type, with its article, for messages.
pub(crate) fn block_name(block_type: u32) -> &'static str {
    match block_type {
        SHB_TYPE => "a section header block",
        IDB_TYPE => "an interface description block",
        OPB_TYPE => "an obsolete packet block",
        SPB_TYPE => "a simple packet block",
        0x0000_0004 => "a name resolution block",
        0x0000_0005 => "an interface statistics block",
        EPB_TYPE => "an enhanced packet block",
        0x0000_0009 => "a systemd journal export block",
        0x0000_000A => "a decryption secrets block",
        0x0000_0BAD | 0x4000_0BAD => "a custom block",
        0x8000_0001 => "a process information block",
        _ => "a block of unknown type",
    }
}

/// Reads a u32 at `at` in the given byte order, `None` if `bytes` is too short.
pub(crate) fn read_u32(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let end = at.checked_add(4)?;
    let word = <[u8; 4]>::try_from(bytes.get(at..end)?).ok()?;
    Some(if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_powers_of_ten() {
        // 10^-6 (the default): microseconds.
        assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000), 1_500_000_000);
        // 10^-9: already nanoseconds.
        assert_eq!(
            TsScale::from_tsresol(9).to_ns(u64::MAX),
            u128::from(u64::MAX)
        );
        // 10^0: seconds.
        assert_eq!(TsScale::from_tsresol(0).to_ns(3), 3_000_000_000);
        // 10^-12: picoseconds round down.
        assert_eq!(TsScale::from_tsresol(12).to_ns(1_999), 1);
        // 10^-127: far below a nanosecond.
        assert_eq!(TsScale::from_tsresol(127).to_ns(u64::MAX), 0);
    }

    #[test]
    fn tsresol_powers_of_two() {
        // 2^-20 s units: 2^20 units are one second exactly.
        assert_eq!(
            TsScale::from_tsresol(0x80 | 20).to_ns(1 << 20),
            1_000_000_000
        );
        // One unit of 2^-20 s is 953.67... ns: rounds down.
        assert_eq!(TsScale::from_tsresol(0x80 | 20).to_ns(1), 953);
        // 2^-127 s units.
        assert_eq!(TsScale::from_tsresol(0xff).to_ns(u64::MAX), 0);
        // 2^0: seconds.
        assert_eq!(TsScale::from_tsresol(0x80).to_ns(2), 2_000_000_000);
    }

    #[test]
    fn tsoffset_and_range() {
        let interface = Interface::new(1, 0, 6, -10);
        // 10.5 s after an offset of -10 s.
        assert_eq!(interface.ts_ns(0, 10_500_000), Some(500_000_000));
        // 2^64 - 1 ns is past the year 2262.
        assert_eq!(Interface::new(1, 0, 9, 0).ts_ns(u32::MAX, u32::MAX), None);
        // Before the epoch, and past 2^62 ns (2116): outside what a frame may carry.
        assert_eq!(interface.ts_ns(0, 9_000_000), None);
        let at_limit = super::super::MAX_TS_NS as u64;
        let nanos = Interface::new(1, 0, 9, 0);
        assert_eq!(
            nanos.ts_ns((at_limit >> 32) as u32, at_limit as u32),
            Some(super::super::MAX_TS_NS)
        );
        let past = at_limit + 1;
        assert_eq!(nanos.ts_ns((past >> 32) as u32, past as u32), None);
    }

    #[test]
    fn obsolete_packet_body() {
        // Hand-built OPB body, little-endian: interface 1, drops 0, ts 0/7, caplen 3, len 60.
        let body = [
            1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 60, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0,
        ];
        let packet = ObsoletePacket::parse(&body, false);
        assert_eq!(
            packet,
            Some(ObsoletePacket {
                interface: 1,
                ts_high: 0,
                ts_low: 7,
                orig_len: 60,
                data: &[0xaa, 0xbb, 0xcc],
            })
        );
        assert_eq!(ObsoletePacket::parse(&body[..22], false), None);
    }
}

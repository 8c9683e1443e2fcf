//! Stage 1: bytes → frames.
//!
//! Opens a capture (a file or standard input), recognises compression (gzip, zstd) and the
//! capture format (pcap in its four flavours, pcapng) by magic number, and walks the records,
//! handing out one [`Frame`] at a time with its link type and an integer-nanosecond timestamp.
//! Knows nothing about what is inside a frame.

use std::fmt;
use std::io;

mod ahead;
mod mapped;
mod open;
mod pcapng;
mod reader;
mod records;
#[cfg(test)]
mod tests;

pub use reader::{CaptureReader, MAX_SKIPPED_TYPES, OTHER_BLOCK_TYPES, ReaderStats};

/// One captured frame, borrowed from the reader's buffer until the next call to
/// [`CaptureReader::next_frame`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The captured bytes (possibly cut short by the snapshot length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Capture time in nanoseconds since the Unix epoch, always within `0..=MAX_TS_NS`.
    pub ts_ns: i64,
    /// The LINKTYPE_ number of the interface that captured it.
    pub link_type: u32,
    /// Byte offset of the record (pcap record header or pcapng block) in the decompressed stream.
    pub offset: u64,
}

/// The latest capture time a frame may carry: 2^62 ns after the epoch (in the year 2116; a
/// classic pcap cannot go past 2106). Frames are never dated before the epoch either, so any two
/// timestamps differ by less than `i64::MAX`, and adding a duration of up to `i64::MAX / 4` (the
/// most the command line accepts) to one cannot overflow. A pcapng timestamp outside this range
/// (a damaged record, or a wild `if_tsoffset`) is reported as corrupt.
pub const MAX_TS_NS: i64 = 1 << 62;

/// How a capture file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap; `nanosecond` for the 0xa1b23c4d magic, `big_endian` for the byte order.
    Pcap {
        nanosecond: bool,
        big_endian: bool,
    },
    PcapNg,
}

/// How a capture's bytes reach the parser. By default they are copied into a buffer with
/// `read` calls on the parsing thread, a piece at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadMode {
    /// A regular, uncompressed file is mapped into memory and read in place, on the user's
    /// word (`--mmap`) that it will not change meanwhile: see `mapped.rs`. Anything else is
    /// copied in.
    pub map: bool,
    /// What is copied in is read ahead of the parsing on threads of its own (see `ahead.rs`):
    /// a stream (standard input, a compressed capture) by one, a regular uncompressed file by
    /// two reading at positions, unless its records are small.
    pub ahead: bool,
}

/// How the bytes on disk are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An error reading a capture, with where it happened.
#[derive(Debug)]
pub struct CaptureError {
    /// The file as the user named it (`-` for standard input).
    pub file: String,
    /// Byte offset in the decompressed stream where the damage starts, if known.
    pub offset: Option<u64>,
    pub kind: CaptureErrorKind,
}

#[derive(Debug)]
pub enum CaptureErrorKind {
    /// The file could not be opened.
    Open(io::Error),
    /// Neither pcap nor pcapng (after any decompression); carries the first bytes seen.
    UnknownFormat { magic: Vec<u8> },
    /// The stream ended inside a header or record.
    Truncated,
    /// A header or record is malformed; the message says how.
    Corrupt(String),
    /// Reading failed part way (I/O or decompression error).
    Read(io::Error),
}

impl CaptureError {
    pub(crate) fn new(file: &str, offset: Option<u64>, kind: CaptureErrorKind) -> CaptureError {
        CaptureError {
            file: file.to_owned(),
            offset,
            kind,
        }
    }
}

/// `FILE: byte OFFSET: what went wrong; what it means or what to do`, on one line.
impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file == "-" {
            f.write_str("standard input")?;
        } else {
            f.write_str(&self.file)?;
        }
        if let Some(offset) = self.offset {
            write!(f, ": byte {offset}")?;
        }
        // Whether frames were handed out before the damage.
        let mid_stream = self.offset.is_some_and(|offset| offset > 0);
        let salvage = if mid_stream {
            "; everything before this offset was analysed"
        } else {
            ""
        };
        match &self.kind {
            CaptureErrorKind::Open(error) => write!(
                f,
                ": cannot open the capture: {error}; check the path and that you may read it"
            ),
            CaptureErrorKind::UnknownFormat { magic } if magic.is_empty() => f.write_str(
                ": the capture is empty (no bytes at all, after any decompression); there is \
                 nothing to analyse",
            ),
            CaptureErrorKind::UnknownFormat { magic } => {
                f.write_str(": not a packet capture: it starts with")?;
                for byte in magic.iter().take(8) {
                    write!(f, " {byte:02x}")?;
                }
                if let Some(what) = recognise(magic) {
                    write!(f, " ({what})")?;
                }
                f.write_str(
                    "; tcplife reads pcap and pcapng captures, optionally gzip- or \
                     zstd-compressed",
                )
            }
            CaptureErrorKind::Truncated if mid_stream => write!(
                f,
                ": the capture ends inside a record: it was probably cut short while being \
                 written or copied{salvage}"
            ),
            CaptureErrorKind::Truncated => f.write_str(
                ": the capture ends inside its file header, before any packet: it was \
                 probably cut short while being written or copied (a cut compressed capture \
                 can also lose its last few MiB to the decompressor)",
            ),
            CaptureErrorKind::Corrupt(message) => {
                write!(f, ": {message}: the capture is damaged here{salvage}")
            }
            CaptureErrorKind::Read(error) => write!(f, ": reading failed: {error}{salvage}"),
        }
    }
}

/// Names a few formats people mistake for captures, from their first bytes.
fn recognise(magic: &[u8]) -> Option<&'static str> {
    Some(match magic {
        [b'B', b'Z', b'h', ..] => "bzip2 data: decompress it first",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz data: decompress it first",
        [0x04, 0x22, 0x4d, 0x18, ..] => "lz4 data: decompress it first",
        [b'P', b'K', 0x03, 0x04, ..] => "a zip archive: extract the capture first",
        [b'7', b'z', 0xbc, 0xaf, ..] => "a 7-zip archive: extract the capture first",
        [b's', b'n', b'o', b'o', b'p', 0, 0, 0, ..] => {
            "a snoop capture: convert it with `editcap -F pcap`"
        }
        [b'G', b'M', b'B', b'U', ..] => {
            "a Microsoft Network Monitor capture: convert it with `editcap -F pcap`"
        }
        [b'X', b'C', b'P', 0, ..] => "a NetXRay/Sniffer capture: convert it with `editcap -F pcap`",
        _ if magic
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            "text, perhaps a tcpdump printout rather than a `tcpdump -w` capture"
        }
        _ => return None,
    })
}

impl std::error::Error for CaptureError {}

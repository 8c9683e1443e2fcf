//! Stage 1: bytes → frames.
//!
//! Opens a capture (a file or standard input), recognises compression (gzip, zstd) and the
//! capture format (pcap in its four flavours, pcapng) by magic number, and walks the records,
//! handing out one [`Frame`] at a time with its link type and an integer-nanosecond timestamp.
//! Knows nothing about what is inside a frame.

use std::fmt;
use std::io;

/// One captured frame, borrowed from the reader's buffer until the next call to
/// [`CaptureReader::next_frame`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The captured bytes (possibly cut short by the snapshot length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The LINKTYPE_ number of the interface that captured it.
    pub link_type: u32,
    /// Byte offset of the record (pcap record header or pcapng block) in the decompressed stream.
    pub offset: u64,
}

/// How a capture file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap; `nanosecond` for the 0xa1b23c4d magic, `big_endian` for the byte order.
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
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

// TO BE WRITTEN properly ("FILE: byte OFFSET: what, and what to do").
impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.file, self.kind)
    }
}

impl std::error::Error for CaptureError {}

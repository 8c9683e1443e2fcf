//! Walking the records of a capture with pcap-parser's streaming reader, one frame at a time,
//! or with one of the two that answer the same way over bytes already in memory: a mapped file
//! (`mapped.rs`) or blocks read ahead on a thread of their own (`ahead.rs`).
//!
//! pcap-parser keeps a circular buffer and hands out blocks borrowed from it; a block stays
//! valid until it is consumed. [`CaptureReader::next_frame`] lends the frame out the same way:
//! the record returned by one call is consumed at the start of the next, so no frame is ever
//! copied.
//!
//! The reader adds what pcap-parser leaves to its caller: byte offsets (the sum of what was
//! consumed), sanity checks on record lengths before it tries to buffer them, growing the
//! buffer for large records, telling a cut-short file from a damaged one, and pcapng's
//! interface table and timestamp arithmetic.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::ahead::{self, Ahead, FromStart, Positioned, Sizes};
use super::mapped::{FileMap, Mapped};
use super::open::{self, ErrorSlot, MAX_RECORD, Source};
use super::pcapng::{
    self, EPB_TYPE, IDB_TYPE, Interface, OPB_TYPE, ObsoletePacket, SHB_TYPE, SPB_TYPE, Section,
};
use super::{CaptureError, CaptureErrorKind, Compression, Format, Frame, ReadMode};

/// Initial size of pcap-parser's buffer: room for many ordinary frames, and the size of the
/// requests the file is read in (see `open::FILE_BUFFER`). It grows when a record does not
/// fit. Not larger: the
/// parser zeroes its buffer byte by byte, which in an unoptimised (test) build costs about
/// 20 ms per MiB on every capture opened.
const INITIAL_BUFFER: usize = 64 << 10;

/// Mask for the link type in a pcap file header: the top bits carry the FCS length (as in
/// libpcap's `LT_LINKTYPE`).
const PCAP_LINK_TYPE_MASK: u32 = 0x03FF_FFFF;

/// pcap-parser's streaming reader, over either format.
type Parser = Box<dyn PcapReaderIterator + Send>;

/// Counters only the reader knows, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReaderStats {
    /// pcapng sections started (0 for pcap).
    pub sections: u64,
    /// pcapng interfaces described, over all sections (0 for pcap).
    pub interfaces: u64,
    /// pcapng blocks passed over without yielding a frame, by block type: name resolution,
    /// interface statistics, decryption secrets, custom, unknown and malformed-but-unneeded
    /// blocks. At most [`MAX_SKIPPED_TYPES`] types are told apart; blocks of further types
    /// count under [`OTHER_BLOCK_TYPES`] (a file of nothing but 12-byte blocks of distinct
    /// types would otherwise make this map several times larger than the file).
    pub skipped_blocks: BTreeMap<u32, u64>,
}

/// Most distinct block types counted one by one in [`ReaderStats::skipped_blocks`].
pub const MAX_SKIPPED_TYPES: usize = 256;
/// The key under which [`ReaderStats::skipped_blocks`] counts block types beyond the first
/// [`MAX_SKIPPED_TYPES`] (0xffffffff, a type no block should have).
pub const OTHER_BLOCK_TYPES: u32 = u32::MAX;

/// Most interfaces one pcapng section may describe. Real captures have a handful; without a
/// limit a file of nothing but interface descriptions would hold memory in proportion to its
/// size.
const MAX_INTERFACES: usize = 1 << 16;

impl ReaderStats {
    /// Total of [`ReaderStats::skipped_blocks`].
    pub fn skipped_total(&self) -> u64 {
        self.skipped_blocks.values().sum()
    }

    fn skipped(&mut self, block_type: u32) {
        let key = if self.skipped_blocks.len() < MAX_SKIPPED_TYPES
            || self.skipped_blocks.contains_key(&block_type)
        {
            block_type
        } else {
            OTHER_BLOCK_TYPES
        };
        *self.skipped_blocks.entry(key).or_insert(0) += 1;
    }
}

/// Reads frames from a pcap or pcapng capture, possibly compressed. See the module docs.
pub struct CaptureReader {
    name: String,
    format: Format,
    compression: Compression,
    size: Option<u64>,
    /// Bytes read from the file so far, counted by the stream; `None` for a mapped file, whose
    /// bytes are read where they lie (the offset reached counts them).
    bytes_read: Option<Arc<AtomicU64>>,
    errors: ErrorSlot,
    parser: Parser,
    /// Current size of the parser's buffer.
    capacity: usize,
    /// Offset in the decompressed stream of the parser's first unconsumed byte.
    offset: u64,
    /// Length of the record lent out by the last `next_frame`, consumed by the next call.
    pending: usize,
    /// Set at the end of the stream or after an error: later calls return `Ok(None)`.
    finished: bool,
    layout: Layout,
    stats: ReaderStats,
}

/// Per-format state.
enum Layout {
    Pcap(PcapFile),
    PcapNg(Section),
}

/// What the pcap file header says about every record.
struct PcapFile {
    big_endian: bool,
    nanosecond: bool,
    /// 16, or 24 for the modified (Kuznetzov) format.
    record_header_len: u64,
    /// 0 when the header does not limit it.
    snaplen: u32,
    link_type: u32,
    /// Until the file header is through, the buffer does not start with a record.
    header_seen: bool,
}

impl PcapFile {
    /// A record's time from its header's seconds and fraction (micro- or nanoseconds).
    fn time_ns(&self, seconds: u32, fraction: u32) -> i64 {
        let fraction_ns = if self.nanosecond {
            i64::from(fraction)
        } else {
            i64::from(fraction) * 1_000
        };
        // At most 4.3e18 + 4.3e12: fits in an i64.
        i64::from(seconds) * 1_000_000_000 + fraction_ns
    }
}

/// A frame found in the parser's buffer, described by position so that it does not borrow the
/// parser (see [`CaptureReader::advance`]).
struct Found {
    /// Where the frame's bytes start, counted from the parser's first unconsumed byte.
    start: usize,
    len: usize,
    record_len: usize,
    orig_len: u32,
    ts_ns: i64,
    link_type: u32,
}

/// What to do after asking the parser for a block; owns nothing of the parser's buffer.
enum Step {
    Frame(Found),
    /// A block that yields no frame: consume this many bytes and go on.
    Skip(usize),
    End,
    /// The record is not wholly in the buffer; `at_end` when no more input will come.
    Short {
        at_end: bool,
    },
    ReadFailed,
    /// pcap-parser rejected the block.
    Rejected,
    Corrupt(String),
}

/// The length the record at the start of the buffer claims.
enum Claim {
    /// Not enough bytes yet to know.
    NotYet,
    Len {
        len: u64,
        block_type: Option<u32>,
    },
    Corrupt(String),
}

/// What came of reading a regular file at positions.
pub(crate) enum AtPositions {
    Reading(CaptureReader),
    /// Not read at positions, but streamed from where its recognition left off: it is
    /// compressed (only a stream decompresses), or its records are too small to gain from it.
    Streamed(Source),
}

impl CaptureReader {
    /// Opens a file, or standard input when `path` is "-". Detects gzip (1f 8b) and zstd
    /// (28 b5 2f fd) by magic (never by file name), then pcap/pcapng by magic. An uncompressed
    /// regular file is read in place through a memory map when `read` allows it (see
    /// [`super::mapped`]); everything else is streamed, read ahead on a thread of its own when
    /// `read` says so.
    pub fn open(path: &str, read: ReadMode) -> Result<CaptureReader, CaptureError> {
        let ahead = read.ahead.then_some(Sizes::DEFAULT);
        if path == "-" {
            return CaptureReader::stream(path, Box::new(io::stdin()), None, ahead);
        }
        let open_error = |error| CaptureError::new(path, None, CaptureErrorKind::Open(error));
        let file = std::fs::File::open(path).map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        if metadata.is_dir() {
            return Err(open_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            )));
        }
        // FIFOs and devices have no meaningful length.
        let size = metadata.is_file().then_some(metadata.len());
        if read.map && metadata.is_file() && metadata.len() > 0 {
            // A file that cannot be mapped (some network and virtual file systems) is streamed.
            if let Ok(map) = FileMap::new(&file) {
                if let Some(reader) = CaptureReader::from_bytes(path, map, size)? {
                    return Ok(reader);
                }
            }
        }
        #[cfg(unix)]
        if let Some(sizes) = ahead.filter(|_| metadata.is_file()) {
            return match CaptureReader::positioned(path, Arc::new(file), size, (sizes, false))? {
                AtPositions::Reading(reader) => Ok(reader),
                // Decompressing is read ahead; small records are read on the parsing thread.
                AtPositions::Streamed(source) => {
                    let ahead = ahead.filter(|_| source.compression != Compression::None);
                    CaptureReader::from_source(path, source, size, ahead)
                }
            };
        }
        CaptureReader::stream(path, Box::new(file), size, ahead)
    }

    /// Over a regular file read ahead at positions by several threads (see [`super::ahead`]),
    /// unless it is compressed (only a stream decompresses) or its records are small (see
    /// [`ahead::LARGE_RECORDS`]). Its compression and format are recognised the way a stream's
    /// are, reading at positions from its start, so that a file's own offset does not move.
    /// `any_records` skips that last judgement (for tests, whose captures are small).
    pub(crate) fn positioned(
        name: &str,
        file: Arc<impl Positioned>,
        size: Option<u64>,
        (sizes, any_records): (Sizes, bool),
    ) -> Result<AtPositions, CaptureError> {
        let source = Source::new(name, Box::new(FromStart::new(Arc::clone(&file))))?;
        if source.compression != Compression::None
            || !(any_records || ahead::large_records(&*file, source.format))
        {
            return Ok(AtPositions::Streamed(source));
        }
        let header = (source.format, source.header_len);
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counted = (Arc::clone(&bytes_read), Arc::clone(&source.errors));
        let parser = Ahead::start_at(file, header, sizes, counted)
            .map_err(|error| open::io_error(name, 0, error))?
            .map_err(|error| header_error(name, &source.errors, &error))?;
        Ok(AtPositions::Reading(CaptureReader::with_parser(
            name,
            (source.format, Compression::None, usize::MAX),
            Box::new(parser),
            (size, Some(bytes_read), source.errors),
        )))
    }

    /// Over a whole uncompressed capture held in memory (a mapped file), read in place; `None`
    /// when the bytes are compressed, which only a stream decompresses.
    pub(crate) fn from_bytes<B: AsRef<[u8]> + Send + 'static>(
        name: &str,
        bytes: B,
        size: Option<u64>,
    ) -> Result<Option<CaptureReader>, CaptureError> {
        let mut data = bytes.as_ref();
        if open::detect_compression(data) != Compression::None {
            return Ok(None);
        }
        // The whole capture is the parser's "buffer".
        let capacity = data.len();
        let (format, _) = open::recognise_format(name, &mut data, &mut Vec::new())?;
        let errors = ErrorSlot::default();
        let parser =
            Mapped::new(bytes, format).map_err(|error| header_error(name, &errors, &error))?;
        Ok(Some(CaptureReader::with_parser(
            name,
            (format, Compression::None, capacity),
            Box::new(parser),
            (size, None, errors),
        )))
    }

    /// Same over any reader, read on the caller's thread. `size` = total bytes if known (for
    /// progress).
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
        size: Option<u64>,
    ) -> Result<CaptureReader, CaptureError> {
        CaptureReader::stream(name, reader, size, None)
    }

    /// Over any reader: read ahead on a thread of its own in blocks of `ahead`'s sizes (see
    /// [`super::ahead`]), or with `None` on the caller's thread into pcap-parser's buffer.
    pub(crate) fn stream(
        name: &str,
        reader: Box<dyn Read + Send>,
        size: Option<u64>,
        ahead: Option<Sizes>,
    ) -> Result<CaptureReader, CaptureError> {
        CaptureReader::from_source(name, Source::new(name, reader)?, size, ahead)
    }

    /// Over a stream whose compression and format are recognised, as [`CaptureReader::stream`].
    fn from_source(
        name: &str,
        source: Source,
        size: Option<u64>,
        ahead: Option<Sizes>,
    ) -> Result<CaptureReader, CaptureError> {
        let (parser, capacity): (Parser, usize) = match ahead {
            Some(sizes) => {
                let header = (source.format, source.header_len);
                let parser = Ahead::start(source.stream, header, sizes)
                    .map_err(|error| open::io_error(name, 0, error))?
                    .map_err(|error| header_error(name, &source.errors, &error))?;
                // Its window grows by itself to hold any record.
                (Box::new(parser), usize::MAX)
            }
            None => {
                // The first header must fit in the buffer in one piece, with a byte to spare
                // (see `make_room`).
                let capacity = INITIAL_BUFFER.max(source.header_len.saturating_add(1));
                let parser = start_parser(source.format, source.stream, capacity)
                    .map_err(|error| header_error(name, &source.errors, &error))?;
                (parser, capacity)
            }
        };
        Ok(CaptureReader::with_parser(
            name,
            (source.format, source.compression, capacity),
            parser,
            (size, Some(source.bytes_read), source.errors),
        ))
    }

    /// A reader over `parser`, which has read the first header of a capture in `format`, with
    /// a buffer of `capacity` bytes.
    fn with_parser(
        name: &str,
        (format, compression, capacity): (Format, Compression, usize),
        parser: Parser,
        (size, bytes_read, errors): (Option<u64>, Option<Arc<AtomicU64>>, ErrorSlot),
    ) -> CaptureReader {
        CaptureReader {
            name: name.to_owned(),
            format,
            compression,
            size,
            bytes_read,
            errors,
            parser,
            capacity,
            offset: 0,
            pending: 0,
            finished: false,
            layout: layout_of(format),
            stats: ReaderStats::default(),
        }
    }

    /// Next frame, or Ok(None) at a clean end of file. Frames borrow the reader's buffer.
    ///
    /// After an error, further calls return `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.pending > 0 {
            self.consume(self.pending);
            self.pending = 0;
        }
        if self.finished {
            return Ok(None);
        }
        let found = match self.advance() {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.finished = true;
                return Ok(None);
            }
            Err(error) => {
                self.finished = true;
                return Err(error);
            }
        };
        let Some(data) = found
            .start
            .checked_add(found.len)
            .and_then(|end| self.parser.data().get(found.start..end))
        else {
            self.finished = true;
            return Err(self.corrupt(
                "internal error: the frame lies outside the read buffer; please report this"
                    .to_owned(),
            ));
        };
        self.pending = found.record_len;
        Ok(Some(Frame {
            data,
            orig_len: found.orig_len,
            ts_ns: found.ts_ns,
            link_type: found.link_type,
            offset: self.offset,
        }))
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Bytes read so far from the underlying file (compressed bytes if compressed), for a
    /// progress bar. Runs up to a buffer's worth ahead of the frames handed out.
    pub fn bytes_read(&self) -> u64 {
        match &self.bytes_read {
            Some(counted) => counted.load(Ordering::Relaxed),
            None => self.offset,
        }
    }

    /// Whether the capture is read in place (a mapped file) rather than streamed.
    #[cfg(test)]
    pub(crate) fn reads_in_place(&self) -> bool {
        self.bytes_read.is_none()
    }

    /// File size if known (None for stdin/pipes).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Counters the reader alone knows (pcapng sections, interfaces, skipped blocks).
    pub fn stats(&self) -> &ReaderStats {
        &self.stats
    }

    /// Asks the parser for blocks until one holds a frame, dealing with everything else
    /// (headers, interface descriptions, refills, errors) on the way.
    ///
    /// The frame is returned as a position in the buffer rather than a slice: a borrow taken
    /// inside this loop could not be returned while other iterations consume and refill.
    fn advance(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let step = match self.precheck() {
                Some(step) => step,
                None => self.parse_next(),
            };
            match step {
                Step::Frame(found) => return Ok(Some(found)),
                Step::Skip(len) => self.consume(len),
                Step::End => return Ok(None),
                Step::Short { at_end } => self.on_short(at_end)?,
                Step::ReadFailed => return Err(self.read_failure()),
                Step::Rejected => self.on_rejected()?,
                Step::Corrupt(message) => return Err(self.corrupt(message)),
            }
        }
    }

    /// Checks the length the next record claims before pcap-parser sees it: a damaged length
    /// would have it buffer gigabytes, or (for some pcapng block types shorter than 12 bytes)
    /// underflow. A sound pcap record, or a plain enhanced packet block, already whole in the
    /// buffer is read here and then. `None` when the parser may go ahead.
    // With `claim`, inlined into `advance`: a frame's way through the three is then one
    // function, and the `Claim` and `Step` values between them are never written out
    // (about 45 instructions a frame, 1.2 % of a run writing JSON lines).
    #[inline(always)]
    fn precheck(&mut self) -> Option<Step> {
        let data = self.parser.data();
        match self.claim(data) {
            Claim::Corrupt(message) => Some(Step::Corrupt(message)),
            // Every pcapng block has at least 12 bytes; with fewer, only more input can help.
            Claim::NotYet if matches!(self.layout, Layout::PcapNg(_)) && !data.is_empty() => {
                Some(Step::Short {
                    at_end: self.parser.reader_exhausted(),
                })
            }
            Claim::Len { len, .. } => match &mut self.layout {
                Layout::Pcap(file) => whole_pcap_record(file, data, len),
                Layout::PcapNg(section) => whole_plain_epb(section, data, len),
            },
            Claim::NotYet => None,
        }
    }

    /// Runs the parser once and turns what it returns into a [`Step`].
    fn parse_next(&mut self) -> Step {
        // The parser reads from the start of its buffer, so positions inside the block are
        // counted from here.
        let base = self.parser.data().as_ptr() as usize;
        match self.parser.next() {
            Ok((len, block)) => match &mut self.layout {
                Layout::Pcap(file) => pcap_step(file, block, len, base),
                Layout::PcapNg(section) => match block {
                    PcapBlockOwned::NG(block) => {
                        pcapng_step(section, &mut self.stats, block, len, base)
                    }
                    _ => Step::Corrupt("internal error: pcap record in a pcapng file".to_owned()),
                },
            },
            Err(PcapError::Eof) => Step::End,
            Err(PcapError::Incomplete(_) | PcapError::BufferTooSmall) => {
                Step::Short { at_end: false }
            }
            Err(PcapError::UnexpectedEof) => Step::Short { at_end: true },
            Err(PcapError::ReadError) => Step::ReadFailed,
            Err(_) => Step::Rejected,
        }
    }

    /// The record at the start of `data` is incomplete: fail if it never will be, else make
    /// room for it and read more.
    fn on_short(&mut self, at_end: bool) -> Result<(), CaptureError> {
        let data = self.parser.data();
        let available = data.len();
        let needed = match self.claim(data) {
            Claim::Corrupt(message) => return Err(self.corrupt(message)),
            // The parser wants more than the record claims: the record contradicts itself.
            Claim::Len { len, .. } if available as u64 >= len => return self.on_rejected(),
            Claim::Len { len, .. } => Some(len),
            Claim::NotYet => None,
        };
        if at_end {
            return Err(CaptureError::new(
                &self.name,
                Some(self.offset),
                CaptureErrorKind::Truncated,
            ));
        }
        if let Some(len) = needed {
            self.make_room(len);
        }
        self.refill()
    }

    /// pcap-parser refused the block, or it is inconsistent. Blocks tcplife does not need
    /// (statistics, name resolution...) are skipped if their framing is sound; anything else
    /// is reported.
    fn on_rejected(&mut self) -> Result<(), CaptureError> {
        let data = self.parser.data();
        let available = data.len() as u64;
        if let Claim::Len {
            len,
            block_type: Some(block_type),
        } = self.claim(data)
        {
            if !carries_packets_or_context(block_type) {
                if available >= len {
                    self.stats.skipped(block_type);
                    // `len` <= available, which is a usize.
                    self.consume(usize::try_from(len).unwrap_or(0));
                    return Ok(());
                }
                if self.parser.reader_exhausted() {
                    return Err(CaptureError::new(
                        &self.name,
                        Some(self.offset),
                        CaptureErrorKind::Truncated,
                    ));
                }
                self.make_room(len);
                return self.refill();
            }
        }
        let message = self.describe_rejected();
        Err(self.corrupt(message))
    }

    /// Why the block at the start of the buffer was refused, as precisely as can be said.
    fn describe_rejected(&self) -> String {
        let data = self.parser.data();
        let Layout::PcapNg(section) = &self.layout else {
            return "a pcap record is malformed".to_owned();
        };
        let Some(Ok((block_type, len))) = section.block_header(data) else {
            return "a pcapng block is malformed".to_owned();
        };
        let name = pcapng::block_name(block_type);
        if block_type == EPB_TYPE {
            if let Some(caplen) = section.u32_at(data, 20) {
                if u64::from(caplen) + 32 > u64::from(len) {
                    return format!(
                        "{name} of {len} bytes claims {caplen} captured bytes, more than \
                         it can hold"
                    );
                }
            }
        }
        if let Some(trailer) = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_sub(4))
            .and_then(|at| section.u32_at(data, at))
        {
            if trailer != len {
                return format!(
                    "{name} (type {block_type:#010x}) says it is {len} bytes long at its \
                     start but {trailer} at its end"
                );
            }
        }
        format!("{name} (type {block_type:#010x}, {len} bytes) is malformed")
    }

    /// The length the record at the start of `data` claims, judged for sanity.
    #[inline(always)]
    fn claim(&self, data: &[u8]) -> Claim {
        match &self.layout {
            Layout::Pcap(file) if !file.header_seen => Claim::NotYet,
            Layout::Pcap(file) => {
                let Some(caplen) = pcapng::read_u32(data, 8, file.big_endian) else {
                    return Claim::NotYet;
                };
                let len = file.record_header_len + u64::from(caplen);
                if len > MAX_RECORD {
                    return Claim::Corrupt(format!(
                        "a record claims {caplen} captured bytes, more than the {} MiB any \
                         real frame needs",
                        MAX_RECORD >> 20
                    ));
                }
                if file.snaplen != 0 && caplen > file.snaplen {
                    return Claim::Corrupt(format!(
                        "a record claims {caplen} captured bytes, more than the file's \
                         snapshot length of {}",
                        file.snaplen
                    ));
                }
                Claim::Len {
                    len,
                    block_type: None,
                }
            }
            Layout::PcapNg(section) => match section.block_header(data) {
                None => Claim::NotYet,
                Some(Err(message)) => Claim::Corrupt(message),
                Some(Ok((block_type, len))) => {
                    let name = pcapng::block_name(block_type);
                    if u64::from(len) > MAX_RECORD {
                        Claim::Corrupt(format!(
                            "{name} claims {len} bytes, more than the {} MiB any real \
                             block needs",
                            MAX_RECORD >> 20
                        ))
                    } else if len < 12 || len % 4 != 0 {
                        Claim::Corrupt(format!(
                            "{name} claims a length of {len} bytes, which is not a valid \
                             pcapng block length (a multiple of 4, at least 12)"
                        ))
                    } else {
                        Claim::Len {
                            len: u64::from(len),
                            block_type: Some(block_type),
                        }
                    }
                }
            },
        }
    }

    /// Grows the parser's buffer so a record of `len` bytes fits. pcap-parser reports
    /// `BufferTooSmall` when a record is as large as the buffer, hence the spare byte.
    fn make_room(&mut self, len: u64) {
        let needed = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1);
        if needed > self.capacity {
            let limit = usize::try_from(MAX_RECORD)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let new_capacity = self.capacity.saturating_mul(2).max(needed).min(limit);
            if self.parser.grow(new_capacity) {
                self.capacity = new_capacity;
            }
        }
    }

    /// Reads more input into the parser's buffer.
    fn refill(&mut self) -> Result<(), CaptureError> {
        let before = self.parser.data().len();
        if self.parser.refill().is_err() {
            return Err(self.read_failure());
        }
        if self.parser.data().len() <= before && !self.parser.reader_exhausted() {
            // The buffer is full yet the record is incomplete: make_room should prevent this.
            return Err(self.corrupt(
                "internal error: the read buffer is full but the record is incomplete; please \
                 report this"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Steps past `len` bytes. The buffer is not shifted here: `consume` would move what is left
    /// to the front each time the read position passed the middle (copying half of the input
    /// again); `refill` shifts, when only a part of one record is left to move.
    fn consume(&mut self, len: usize) {
        self.parser.consume_noshift(len);
        self.offset += len as u64;
    }

    fn corrupt(&self, message: String) -> CaptureError {
        CaptureError::new(
            &self.name,
            Some(self.offset),
            CaptureErrorKind::Corrupt(message),
        )
    }

    /// The error behind a failed refill, as kept by the stream.
    fn read_failure(&self) -> CaptureError {
        let error = open::take_error(&self.errors)
            .unwrap_or_else(|| io::Error::other("reading the capture failed"));
        open::io_error(&self.name, self.offset, error)
    }
}

/// pcap-parser's streaming reader for `format`, which reads the first header at once.
fn start_parser(
    format: Format,
    stream: open::Stream,
    capacity: usize,
) -> Result<Parser, PcapError<&'static [u8]>> {
    Ok(match format {
        Format::Pcap { .. } => Box::new(LegacyPcapReader::new(capacity, stream)?),
        Format::PcapNg => Box::new(PcapNGReader::new(capacity, stream)?),
    })
}

/// The per-format state at the start of a capture in `format`.
fn layout_of(format: Format) -> Layout {
    match format {
        Format::Pcap {
            nanosecond,
            big_endian,
        } => Layout::Pcap(PcapFile {
            big_endian,
            nanosecond,
            record_header_len: 16,
            snaplen: 0,
            link_type: 0,
            header_seen: false,
        }),
        Format::PcapNg => Layout::PcapNg(Section::default()),
    }
}

/// The error for a first header pcap-parser would not read. It is handed the whole header (see
/// `Source::new`), so this takes a read error or a header it finds malformed; its own message
/// would dump the buffer, so it is not repeated.
fn header_error(name: &str, errors: &ErrorSlot, error: &PcapError<&[u8]>) -> CaptureError {
    let kind = match error {
        PcapError::ReadError => match open::take_error(errors) {
            Some(error) => return open::io_error(name, 0, error),
            None => CaptureErrorKind::Truncated,
        },
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
            CaptureErrorKind::Truncated
        }
        _ => CaptureErrorKind::Corrupt("the file header is malformed".to_owned()),
    };
    CaptureError::new(name, Some(0), kind)
}

/// Blocks tcplife cannot do without: a malformed one of these is an error, not a skip.
fn carries_packets_or_context(block_type: u32) -> bool {
    matches!(
        block_type,
        SHB_TYPE | IDB_TYPE | EPB_TYPE | SPB_TYPE | OPB_TYPE
    )
}

/// The step for a block of a pcap file.
fn pcap_step(file: &mut PcapFile, block: PcapBlockOwned<'_>, len: usize, base: usize) -> Step {
    match block {
        PcapBlockOwned::LegacyHeader(header) => {
            file.snaplen = header.snaplen;
            // Reinterpret the bits: the field is unsigned in the file format.
            file.link_type = header.network.0 as u32 & PCAP_LINK_TYPE_MASK;
            file.nanosecond = header.is_nanosecond_precision();
            if header.is_modified_format() {
                file.record_header_len = 24;
            }
            file.header_seen = true;
            Step::Skip(len)
        }
        PcapBlockOwned::Legacy(record) => frame_step(
            base,
            record.data,
            len,
            record.origlen,
            file.time_ns(record.ts_sec, record.ts_usec),
            file.link_type,
        ),
        PcapBlockOwned::NG(_) => {
            Step::Corrupt("internal error: pcapng block in a pcap file".to_owned())
        }
    }
}

/// A pcap record that lies whole in the buffer is read here: the four fields of its header
/// are all pcap-parser would read of it, and this saves a parse and a dynamic call per frame.
/// `None` for a record not yet whole (the parser asks for more).
fn whole_pcap_record(file: &PcapFile, data: &[u8], len: u64) -> Option<Step> {
    let record = data.get(..usize::try_from(len).ok()?)?;
    let field = |at| pcapng::read_u32(record, at, file.big_endian);
    // The captured length is in `len` already (`claim` read it): header + captured bytes.
    let (ts_sec, fraction, orig_len) = (field(0)?, field(4)?, field(12)?);
    let start = usize::try_from(file.record_header_len).ok()?;
    Some(Step::Frame(Found {
        start,
        len: record.len().checked_sub(start)?,
        record_len: record.len(),
        orig_len,
        ts_ns: file.time_ns(ts_sec, fraction),
        link_type: file.link_type,
    }))
}

/// Where an enhanced packet block's packet data starts: after type, length, interface,
/// timestamp (two words), captured and original lengths.
const EPB_DATA: usize = 28;

/// An enhanced packet block with no options (what tcpdump and editcap write), whole in the
/// buffer and consistent (its captured bytes fill it, its trailing length repeats the
/// leading one), is read here as [`pcapng_step`] would after pcap-parser: about 450
/// instructions a packet fewer. `None` for any other block, which the parser reads.
fn whole_plain_epb(section: &mut Section, data: &[u8], len: u64) -> Option<Step> {
    let block = data.get(..usize::try_from(len).ok()?)?;
    let field = |at| section.u32_at(block, at);
    let captured = usize::try_from(field(20)?).ok()?;
    let padded = captured.checked_next_multiple_of(4)?;
    let plain = field(0)? == EPB_TYPE
        && EPB_DATA.checked_add(padded)?.checked_add(4)? == block.len()
        && u64::from(field(block.len() - 4)?) == len;
    if !plain {
        return None;
    }
    let packet = Stamped {
        interface: field(8)?,
        ts_high: field(12)?,
        ts_low: field(16)?,
        orig_len: field(24)?,
    };
    let data = block.get(EPB_DATA..EPB_DATA.checked_add(captured)?)?;
    Some(packet_step(
        section,
        EPB_TYPE,
        packet,
        block.as_ptr() as usize,
        data,
        block.len(),
    ))
}

/// What a packet block of either kind (enhanced or obsolete) says besides its data.
struct Stamped {
    interface: u32,
    ts_high: u32,
    ts_low: u32,
    orig_len: u32,
}

/// The frame of a packet block that names its interface and timestamp, or why it cannot be
/// one; `data` is a slice of the parser's buffer starting at address `base`. Inlined: it is
/// on every pcapng packet's path, and as a call it costs 0.6 % of the instructions.
#[inline]
fn packet_step(
    section: &mut Section,
    block_type: u32,
    packet: Stamped,
    base: usize,
    data: &[u8],
    record_len: usize,
) -> Step {
    match interface_time(section, &packet, block_type) {
        Ok((link_type, ts_ns)) => {
            frame_step(base, data, record_len, packet.orig_len, ts_ns, link_type)
        }
        Err(message) => Step::Corrupt(message),
    }
}

/// The step for a block of a pcapng file, keeping the section's state up to date.
fn pcapng_step(
    section: &mut Section,
    stats: &mut ReaderStats,
    block: Block<'_>,
    len: usize,
    base: usize,
) -> Step {
    match block {
        Block::SectionHeader(header) => {
            section.restart(header.big_endian());
            stats.sections += 1;
            Step::Skip(len)
        }
        Block::InterfaceDescription(description) => {
            if section.interfaces.len() >= MAX_INTERFACES {
                return Step::Corrupt(format!(
                    "a section describes more than {MAX_INTERFACES} interfaces, which no \
                     capture needs"
                ));
            }
            let interface = Interface::from_idb(&description, section.big_endian);
            section.interfaces.push(interface);
            stats.interfaces += 1;
            Step::Skip(len)
        }
        Block::EnhancedPacket(packet) => {
            let stamped = Stamped {
                interface: packet.if_id,
                ts_high: packet.ts_high,
                ts_low: packet.ts_low,
                orig_len: packet.origlen,
            };
            packet_step(section, EPB_TYPE, stamped, base, packet.packet_data(), len)
        }
        Block::SimplePacket(packet) => {
            let Some(interface) = section.interfaces.first() else {
                return Step::Corrupt(
                    "a simple packet block comes before any interface description in its \
                     section"
                        .to_owned(),
                );
            };
            let mut data = packet.packet_data();
            if interface.snaplen != 0 {
                let snaplen = usize::try_from(interface.snaplen).unwrap_or(usize::MAX);
                data = data.get(..snaplen).unwrap_or(data);
            }
            let ts_ns = section.last_ts_ns;
            frame_step(base, data, len, packet.origlen, ts_ns, interface.link_type)
        }
        Block::Unknown(unknown) if section.normalise_type(unknown.block_type) == OPB_TYPE => {
            let Some(packet) = ObsoletePacket::parse(unknown.data, section.big_endian) else {
                return Step::Corrupt(
                    "an obsolete packet block claims more captured bytes than it holds".to_owned(),
                );
            };
            let stamped = Stamped {
                interface: u32::from(packet.interface),
                ts_high: packet.ts_high,
                ts_low: packet.ts_low,
                orig_len: packet.orig_len,
            };
            packet_step(section, OPB_TYPE, stamped, base, packet.data, len)
        }
        Block::Unknown(unknown) => {
            stats.skipped(section.normalise_type(unknown.block_type));
            Step::Skip(len)
        }
        Block::Custom(custom) => {
            stats.skipped(section.normalise_type(custom.block_type));
            Step::Skip(len)
        }
        other => {
            stats.skipped(other.magic());
            Step::Skip(len)
        }
    }
}

/// The link type and time in nanoseconds of a packet, which also becomes the section's last
/// timestamp.
fn interface_time(
    section: &mut Section,
    packet: &Stamped,
    block_type: u32,
) -> Result<(u32, i64), String> {
    let what = || pcapng::block_name(block_type);
    let Stamped {
        interface: id,
        ts_high,
        ts_low,
        ..
    } = *packet;
    let Some(interface) = usize::try_from(id)
        .ok()
        .and_then(|index| section.interfaces.get(index))
    else {
        return Err(format!(
            "{} names interface {id}, but its section describes only {} interface(s)",
            what(),
            section.interfaces.len()
        ));
    };
    let Some(ts_ns) = interface.ts_ns(ts_high, ts_low) else {
        return Err(format!(
            "{} has a timestamp outside the years 1970 to 2116 (raw value {:#x}, before \
             the interface's resolution and offset apply)",
            what(),
            (u64::from(ts_high) << 32) | u64::from(ts_low)
        ));
    };
    let link_type = interface.link_type;
    section.last_ts_ns = ts_ns;
    Ok((link_type, ts_ns))
}

/// A frame step for `data`, a slice of the parser's buffer starting at address `base`.
fn frame_step(
    base: usize,
    data: &[u8],
    record_len: usize,
    orig_len: u32,
    ts_ns: i64,
    link_type: u32,
) -> Step {
    Step::Frame(Found {
        start: (data.as_ptr() as usize).wrapping_sub(base),
        len: data.len(),
        record_len,
        orig_len,
        ts_ns,
        link_type,
    })
}

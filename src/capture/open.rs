//! Opening a capture: a file or standard input, with its compression and its format recognised
//! by magic number (never by file name, so `capture.pcap` that is really gzip still reads, and
//! standard input works the same way as a file).
//!
//! The bytes peeked to recognise things are put back in front of the stream with
//! [`Read::chain`], so nothing needs to seek: pipes and standard input work.

use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use super::pcapng::Section;
use super::{CaptureError, CaptureErrorKind, Compression, Format};

/// Buffer between the file and the decompressor or parser. Smaller than the parser's own
/// buffer on purpose: the parser asks for nearly its whole buffer at each refill, and a request
/// at least this large goes straight from the file into the parser's buffer, copied once.
const FILE_BUFFER: usize = 32 << 10;

/// The largest record or block accepted. Real frames are at most a few hundred KiB (libpcap
/// caps snapshot lengths at 256 KiB); a larger length is a damaged header, and believing it
/// would mean buffering up to 4 GiB.
pub(crate) const MAX_RECORD: u64 = 256 << 20;

/// How many bytes of an unrecognised stream are kept to show the user.
const MAGIC_SHOWN: usize = 16;

/// The first I/O error of the stream. pcap-parser turns every read error into a bare
/// `PcapError::ReadError`, so the original (with its message, e.g. "corrupt deflate stream")
/// is kept here to be reported.
pub(crate) type ErrorSlot = Arc<Mutex<Option<io::Error>>>;

/// The decompressed stream handed to pcap-parser.
pub(crate) type Stream = KeepErrors<io::Chain<Cursor<Vec<u8>>, Box<dyn Read + Send>>>;

/// The undecompressed bytes: the peeked magic put back in front of the buffered file.
type Raw = io::Chain<Cursor<Vec<u8>>, BufReader<CountingReader<Box<dyn Read + Send>>>>;

/// A capture whose compression and format are known, positioned at its first byte.
pub(crate) struct Source {
    pub(crate) stream: Stream,
    pub(crate) format: Format,
    pub(crate) compression: Compression,
    /// Length of the file header (pcap) or first section header block (pcapng), which the
    /// parser must be able to hold in one piece.
    pub(crate) header_len: usize,
    /// Bytes read from the underlying file (before decompression).
    pub(crate) bytes_read: Arc<AtomicU64>,
    pub(crate) errors: ErrorSlot,
}

impl Source {
    /// Recognises compression and format and checks the capture's first header is whole.
    pub(crate) fn new(name: &str, reader: Box<dyn Read + Send>) -> Result<Source, CaptureError> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counting = CountingReader {
            inner: reader,
            count: Arc::clone(&bytes_read),
        };
        let mut file = BufReader::with_capacity(FILE_BUFFER, counting);
        let mut magic = Vec::with_capacity(4);
        read_up_to(&mut file, &mut magic, 4).map_err(|e| io_error(name, 0, e))?;
        let compression = detect_compression(&magic);
        let raw: Raw = Cursor::new(magic).chain(file);
        let mut stream: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(ZstdFrames::new(raw)),
        };

        let mut head = Vec::with_capacity(64);
        let (format, header_len) = recognise_format(name, &mut stream, &mut head)?;
        let errors = ErrorSlot::default();
        Ok(Source {
            stream: KeepErrors {
                inner: Cursor::new(head).chain(stream),
                slot: Arc::clone(&errors),
            },
            format,
            compression,
            header_len,
            bytes_read,
            errors,
        })
    }
}

/// The format of an uncompressed stream and the length of its first header, read whole into
/// `head` (the bytes to put back in front of the stream).
pub(crate) fn recognise_format(
    name: &str,
    stream: &mut impl Read,
    head: &mut Vec<u8>,
) -> Result<(Format, usize), CaptureError> {
    read_up_to(stream, head, 4).map_err(|e| io_error(name, 0, e))?;
    let Some(format) = detect_format(head) else {
        // Read a few more bytes so the message can show what the file really is.
        read_up_to(stream, head, MAGIC_SHOWN).map_err(|e| io_error(name, 0, e))?;
        head.truncate(MAGIC_SHOWN);
        return Err(CaptureError::new(
            name,
            Some(0),
            CaptureErrorKind::UnknownFormat {
                magic: std::mem::take(head),
            },
        ));
    };
    let header_len = match format {
        Format::Pcap { .. } => 24,
        Format::PcapNg => first_section_len(name, stream, head)?,
    };
    read_up_to(stream, head, header_len).map_err(|e| io_error(name, 0, e))?;
    if head.len() < header_len {
        return Err(CaptureError::new(
            name,
            Some(0),
            CaptureErrorKind::Truncated,
        ));
    }
    Ok((format, header_len))
}

/// The length the first section header block claims, checked for sanity, after reading the 12
/// bytes that hold it and its byte-order magic.
fn first_section_len(
    name: &str,
    stream: &mut impl Read,
    head: &mut Vec<u8>,
) -> Result<usize, CaptureError> {
    read_up_to(stream, head, 12).map_err(|e| io_error(name, 0, e))?;
    let corrupt =
        |message: String| CaptureError::new(name, Some(0), CaptureErrorKind::Corrupt(message));
    match Section::default().block_header(head) {
        None => Err(CaptureError::new(
            name,
            Some(0),
            CaptureErrorKind::Truncated,
        )),
        Some(Err(message)) => Err(corrupt(message)),
        Some(Ok((_, len))) if len < 28 || len % 4 != 0 || u64::from(len) > MAX_RECORD => {
            Err(corrupt(format!(
                "the pcapng section header block claims a length of {len} bytes, which is \
                 impossible"
            )))
        }
        Some(Ok((_, len))) => usize::try_from(len).map_err(|_| corrupt(format!("{len}"))),
    }
}

/// Compression by magic: gzip `1f 8b`; zstd `28 b5 2f fd`, or a zstd skippable frame
/// (`5? 2a 4d 18`) which pzstd puts first.
pub(crate) fn detect_compression(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [first, 0x2a, 0x4d, 0x18, ..] if first & 0xf0 == 0x50 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Format by magic: the four pcap flavours (microsecond `a1b2c3d4` and nanosecond `a1b23c4d`, in
/// either byte order), Kuznetzov's modified pcap (`a1b2cd34`, little-endian only, as
/// pcap-parser reads it) and pcapng.
pub(crate) fn detect_format(magic: &[u8]) -> Option<Format> {
    let pcap = |nanosecond, big_endian| {
        Some(Format::Pcap {
            nanosecond,
            big_endian,
        })
    };
    match magic.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x34, 0xcd, 0xb2, 0xa1] => pcap(false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => pcap(false, true),
        [0x4d, 0x3c, 0xb2, 0xa1] => pcap(true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => pcap(true, true),
        [0x0a, 0x0d, 0x0d, 0x0a] => Some(Format::PcapNg),
        _ => None,
    }
}

/// Reads until `buf` holds `want` bytes or the stream ends. A pipe may deliver a header in
/// several pieces, so one `read` is not enough.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let missing = want.saturating_sub(buf.len());
    if missing > 0 {
        reader.take(missing as u64).read_to_end(buf)?;
    }
    Ok(())
}

/// An I/O error met at `offset`: an early end of a compressed stream means the capture was
/// cut short, anything else is a read failure.
pub(crate) fn io_error(name: &str, offset: u64, error: io::Error) -> CaptureError {
    let kind = if error.kind() == io::ErrorKind::UnexpectedEof {
        CaptureErrorKind::Truncated
    } else {
        CaptureErrorKind::Read(error)
    };
    CaptureError::new(name, Some(offset), kind)
}

/// Keeps `error` in `slot`, unless an earlier one is there.
pub(crate) fn keep_error(slot: &ErrorSlot, error: io::Error) {
    let mut slot = match slot.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    slot.get_or_insert(error);
}

/// Takes the error kept by [`KeepErrors`], if any.
pub(crate) fn take_error(slot: &ErrorSlot) -> Option<io::Error> {
    match slot.lock() {
        Ok(mut guard) => guard.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

/// Counts the bytes read from the file, for a progress bar: before decompression, so the count
/// can be compared with the file's size.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Keeps the first I/O error in an [`ErrorSlot`] (see there), and retries interrupted reads,
/// which pcap-parser would otherwise treat as fatal.
pub(crate) struct KeepErrors<R> {
    inner: R,
    slot: ErrorSlot,
}

impl<R: Read> Read for KeepErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let kind = error.kind();
                    keep_error(&self.slot, error);
                    return Err(io::Error::from(kind));
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

/// A zstd stream of any number of frames. ruzstd's `StreamingDecoder` stops after the first
/// frame, but pzstd and `cat a.zst b.zst` write several, and pzstd adds skippable frames: this
/// runs the same decoding loop as `StreamingDecoder`, frame after frame, and checks each frame's
/// checksum when it has one.
pub(crate) struct ZstdFrames<R> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    pub(crate) fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Reads the next frame header, skipping skippable frames.
    fn start_frame(&mut self) -> io::Result<()> {
        match self.decoder.reset(&mut self.source) {
            Ok(()) => {
                self.in_frame = true;
                Ok(())
            }
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                let skipped = io::copy(
                    &mut (&mut self.source).take(u64::from(length)),
                    &mut io::sink(),
                )?;
                if skipped < u64::from(length) {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the zstd data ends inside a skippable frame",
                    ));
                }
                Ok(())
            }
            Err(error) => Err(self.decode_error(&error)),
        }
    }

    /// A decoder error: the compressed data ended early, or it is damaged.
    fn decode_error(&mut self, error: &FrameDecoderError) -> io::Error {
        match self.source.fill_buf() {
            Ok([]) => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the zstd data ends inside a frame ({error})"),
            ),
            _ => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged zstd data: {error}"),
            ),
        }
    }

    /// Compares the frame's stored checksum, if any, with the one computed while decoding.
    fn check_frame(&self) -> io::Result<()> {
        match (
            self.decoder.get_checksum_from_data(),
            self.decoder.get_calculated_checksum(),
        ) {
            (Some(stored), Some(computed)) if stored != computed => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "damaged zstd data: frame checksum {stored:#010x}, content gives \
                     {computed:#010x}"
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                self.start_frame()?;
                continue;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                if let Err(error) = self
                    .decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                {
                    return Err(self.decode_error(&error));
                }
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if !self.decoder.is_finished() {
                // ruzstd said bytes were ready but gave none: stop rather than spin.
                return Err(io::Error::other("the zstd decoder made no progress"));
            }
            self.check_frame()?;
            self.in_frame = false;
        }
    }
}

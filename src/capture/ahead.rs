//! Reading ahead: a capture's bytes read (and decompressed) on threads of their own, a few
//! blocks ahead of the parsing, which parses them where they landed.
//!
//! Why: with `read` calls on the parsing thread, the kernel's copy into user memory, and the
//! decompression of a gzip or zstd capture, hold up everything after them. On threads of their
//! own they run beside the parsing and tracking, on whichever core has room. It pays where the
//! copy or the decompression is a large part of the work: measured in turns with two threads
//! on two cores, the benchmark's bulk capture (1.1 GB of large frames, where the copy is half
//! of all the work) took 261 ms read on the parsing thread and 211 ms read ahead at positions
//! (medians of 15; the parse floor 175 ms), its gzip one 2.95 s and 2.73 s (medians of 4). On
//! the many-connection capture, whose cores the tracking already keeps busy, it gained
//! nothing and lost a little (see [`LARGE_RECORDS`]), so a file of small records is read on
//! the parsing thread.
//!
//! A stream (standard input, a pipe, a compressed capture) is read by one thread: one `read`
//! call fills (part of) one block and hands it over at once, so a capture arriving slowly
//! through a pipe is parsed as it comes, not when a block is full. A regular uncompressed file
//! is read by [`READERS`] threads, each filling every other block of it with positioned reads
//! (`pread`), so that the copy itself spreads over two cores: with one thread reading the bulk
//! capture took 238 ms where two took 208 ms (medians of 15 in turns). A block cut short by
//! the end of the file is the last one read, even if the file grows meanwhile.
//!
//! The blocks are parsed in place, as a mapped file is (see [`super::records`]), so nothing is
//! copied a second time but a record that straddles two blocks: its first part is copied in
//! front of the second block, into room kept free there. A record too large for that room (a
//! damaged length the reader's checks let through, up to `open::MAX_RECORD`) makes the window
//! grow instead, the way pcap-parser's buffer grows. An error is handed over after the bytes
//! read before it, so the parser meets it at the same offset as without reading ahead.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::Format;
use super::open::{self, ErrorSlot};
use super::records::Records;

/// The sizes of the blocks and of the room in front of each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Bytes asked for in each `read` call.
    pub(crate) block: usize,
    /// Room kept free in front of each block for the unparsed end of the one before: a whole
    /// record of libpcap's largest snapshot length (256 KiB) with its header, and more.
    pub(crate) room: usize,
}

impl Sizes {
    /// Blocks of 512 KiB: the blocks being copied into and parsed (one a thread, and those
    /// waiting) then fit in the two cores' 1 MiB caches, where blocks of 1 MiB went out to
    /// the shared cache between the copy and the parse. Measured in turns on the benchmark's
    /// bulk capture (medians of 21, two cores): 0.28 s with 1 MiB blocks, 0.22 s with 512 KiB,
    /// 0.23 s with 256 KiB; peak RSS 14 MB and 11 MB. The gzip capture took the same time.
    pub(crate) const DEFAULT: Sizes = Sizes {
        block: 512 << 10,
        room: 512 << 10,
    };
}

/// Blocks read and not yet taken by the parser, over all reading threads (with the one it is
/// parsing and the one each thread is reading, about 7 MiB at the default sizes, most of it the
/// room, which only a record straddling two blocks touches).
const BLOCKS_AHEAD: usize = 4;

/// Threads reading a regular file, each every `READERS`th block.
pub(crate) const READERS: usize = 2;

/// A regular uncompressed file is read ahead when its first records average at least this
/// many bytes (with their headers). With smaller ones, the parsing and tracking of many frames
/// keep both cores busy, and handing the copy to other threads gains nothing: the parsing then
/// reads bytes another core wrote. Measured in turns with two threads on two cores (medians of
/// 11, JSON lines), on captures that `bench/capture.sh many N FILE_BYTES` made with the same
/// server and client, so that only the size of the response (and so of the average record)
/// changes:
///
/// | response | average record | read on the parsing thread | read ahead |
/// |---|--:|--:|--:|
/// | 16 KiB  |   612 bytes | 0.40 s | 0.45 s |
/// | 32 KiB  |   714 bytes | 0.41 s | 0.42 s |
/// | 64 KiB  |   931 bytes | 0.40 s | 0.40 s |
/// | 128 KiB | 1,121 bytes | 0.33 s | 0.31 s |
///
/// Reading ahead pays from about a kilobyte on. The benchmark's captures lie on either side:
/// 278 bytes a record (many connections) and 1,384 (bulk).
pub(crate) const LARGE_RECORDS: usize = 1024;

/// How much of a file's start is looked at to judge its records' size.
const SAMPLE: usize = 256 << 10;

/// Bytes read into a block: `bytes[room..room + len]`.
struct Block {
    bytes: Vec<u8>,
    len: usize,
    /// The file ended inside the block: nothing after it is part of what was read (a file
    /// still being written may have grown by the time the next block was read).
    last: bool,
}

/// What a reading thread hands over: a block, or the news that the next read failed (the
/// error itself is kept in the reader's `ErrorSlot`: by the stream, see `open::KeepErrors`, or
/// by the thread reading at positions). A stream's end is its thread hanging up; a file's is a
/// block marked last.
type Handed = Option<Block>;

/// A capture's bytes read ahead on threads of their own and parsed in place, the way
/// pcap-parser's streaming readers read a stream; see the module docs.
pub(crate) struct Ahead {
    window: Window,
    records: Records,
    /// Bytes consumed since the start of the capture.
    consumed: usize,
}

/// The blocks handed over, as one run of bytes: `bytes[start..end]` is what was read and not
/// yet consumed.
struct Window {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    sizes: Sizes,
    /// The reading threads' blocks: the next block comes from `filled[turn]`, the one after
    /// from the next thread's, round and round.
    filled: Vec<Receiver<Handed>>,
    turn: usize,
    /// Blocks parsed, handed back to the thread that read them, to be read into again.
    spent: Vec<SyncSender<Vec<u8>>>,
    /// The stream has ended (or failed): no more blocks will come.
    exhausted: bool,
}

/// Something read at any offset, by several threads at once: a regular file, or bytes.
pub(crate) trait Positioned: Send + Sync + 'static {
    /// Reads from `offset` into `buf`, as `pread` does: 0 bytes at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

#[cfg(unix)]
impl Positioned for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

/// A [`Positioned`] source read as a stream from its start.
pub(crate) struct FromStart<P> {
    source: Arc<P>,
    at: u64,
}

impl<P> FromStart<P> {
    pub(crate) fn new(source: Arc<P>) -> Self {
        FromStart { source, at: 0 }
    }
}

impl<P: Positioned> Read for FromStart<P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
impl Positioned for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|at| self.get(at..))
            .unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl Ahead {
    /// Starts reading `stream`, a capture in `format` whose first header is `header_len` bytes
    /// long (see `open::recognise_format`), on a thread of its own. Fails as pcap-parser's
    /// readers do when that header is malformed, and with the I/O error when the thread cannot
    /// be started.
    pub(crate) fn start(
        stream: impl Read + Send + 'static,
        header: (Format, usize),
        sizes: Sizes,
    ) -> io::Result<Result<Ahead, PcapError<&'static [u8]>>> {
        let (handing, filled) = sync_channel(BLOCKS_AHEAD);
        let (spent, returned) = sync_channel(BLOCKS_AHEAD + 1);
        spawn_reader(move || read_blocks(stream, sizes, &handing, &returned))?;
        Ahead::begin(Window::new(sizes, vec![filled], vec![spent]), header)
    }

    /// Starts reading `file`, a whole uncompressed capture, on [`READERS`] threads of their
    /// own, each taking every `READERS`th block; `counted` adds up the bytes read, `errors`
    /// keeps the first error. Otherwise as [`Ahead::start`].
    pub(crate) fn start_at(
        file: Arc<impl Positioned>,
        header: (Format, usize),
        sizes: Sizes,
        (counted, errors): (Arc<AtomicU64>, ErrorSlot),
    ) -> io::Result<Result<Ahead, PcapError<&'static [u8]>>> {
        let mut filled = Vec::with_capacity(READERS);
        let mut spent = Vec::with_capacity(READERS);
        for first in 0..READERS {
            let (handing, blocks) = sync_channel(BLOCKS_AHEAD / READERS);
            let (giving_back, returned) = sync_channel(BLOCKS_AHEAD / READERS + 1);
            let (file, counted, errors) =
                (Arc::clone(&file), Arc::clone(&counted), Arc::clone(&errors));
            let read = move || {
                let blocks = (first..).step_by(READERS);
                read_blocks_at(
                    &*file,
                    blocks,
                    sizes,
                    (&handing, &returned),
                    (&counted, &errors),
                );
            };
            spawn_reader(read)?;
            filled.push(blocks);
            spent.push(giving_back);
        }
        Ahead::begin(Window::new(sizes, filled, spent), header)
    }

    /// Waits for the first header (`header_len` bytes of a capture in `format`), and starts
    /// parsing after it.
    fn begin(
        mut window: Window,
        (format, header_len): (Format, usize),
    ) -> io::Result<Result<Ahead, PcapError<&'static [u8]>>> {
        while window.data().len() < header_len && !window.exhausted {
            if window.refill().is_err() {
                return Ok(Err(PcapError::ReadError));
            }
        }
        Ok(Records::new(window.data(), format).map(|records| Ahead {
            window,
            records,
            consumed: 0,
        }))
    }
}

impl Window {
    fn new(sizes: Sizes, filled: Vec<Receiver<Handed>>, spent: Vec<SyncSender<Vec<u8>>>) -> Self {
        Window {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            sizes,
            filled,
            turn: 0,
            spent,
            exhausted: false,
        }
    }

    fn data(&self) -> &[u8] {
        self.bytes.get(self.start..self.end).unwrap_or_default()
    }

    /// Takes the next block read, waiting for it if need be; fails when reading it failed.
    fn refill(&mut self) -> Result<(), ()> {
        if self.exhausted {
            return Ok(());
        }
        let from = self.turn;
        let handed = self.filled.get(from).map(Receiver::recv);
        self.turn = (from + 1) % self.filled.len();
        match handed {
            Some(Ok(Some(block))) => {
                self.exhausted = block.last;
                self.append(block, from);
            }
            Some(Ok(None)) => {
                self.exhausted = true;
                return Err(());
            }
            Some(Err(_)) | None => self.exhausted = true,
        }
        Ok(())
    }

    /// Makes `block`, read by thread `reader`, the window, with what is left of the current
    /// one in front of it.
    fn append(&mut self, block: Block, reader: usize) {
        let Sizes { room, .. } = self.sizes;
        let Block { mut bytes, len, .. } = block;
        let left = self.end - self.start;
        if let Some(front) = room
            .checked_sub(left)
            .and_then(|at| bytes.get_mut(at..room))
        {
            front.copy_from_slice(self.data());
            let parsed = std::mem::replace(&mut self.bytes, bytes);
            self.hand_back(parsed, reader);
            self.start = room - left;
            self.end = room + len;
            return;
        }
        // A record larger than the room: the window grows to hold it, amortised as a `Vec`
        // grows (it is moved to the front once, then only appended to).
        self.bytes.copy_within(self.start..self.end, 0);
        self.bytes.truncate(left);
        self.bytes
            .extend_from_slice(bytes.get(room..room + len).unwrap_or_default());
        self.start = 0;
        self.end = self.bytes.len();
        self.hand_back(bytes, reader);
    }

    /// Gives a parsed block back to thread `reader` to be read into again, if it is one of the
    /// usual size (a window grown for a large record is freed).
    fn hand_back(&self, bytes: Vec<u8>, reader: usize) {
        if let Some(spent) = self.spent.get(reader) {
            if bytes.len() == self.sizes.room + self.sizes.block {
                // When the thread has enough spare blocks, or has ended, this one is freed.
                let _ = spent.try_send(bytes);
            }
        }
    }
}

/// Starts a reading thread.
fn spawn_reader(read: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name("tcplife-read".to_owned())
        .spawn(read)
        .map(drop)
}

/// A block to read into: one the parser handed back, or a new one.
fn spare_block(returned: &Receiver<Vec<u8>>, sizes: Sizes) -> Vec<u8> {
    returned
        .try_recv()
        .unwrap_or_else(|_| vec![0; sizes.room + sizes.block])
}

/// The reading thread: reads `stream` into blocks and hands them over until it ends or fails,
/// or the parser hangs up.
fn read_blocks(
    mut stream: impl Read,
    sizes: Sizes,
    handing: &SyncSender<Handed>,
    returned: &Receiver<Vec<u8>>,
) {
    loop {
        let mut bytes = spare_block(returned, sizes);
        let handed = match stream.read(bytes.get_mut(sizes.room..).unwrap_or_default()) {
            Ok(0) => return,
            Ok(len) => Some(Block {
                bytes,
                len,
                last: false,
            }),
            Err(_) => None,
        };
        let failed = handed.is_none();
        if handing.send(handed).is_err() || failed {
            return;
        }
    }
}

/// A thread reading `file` at positions: fills the blocks numbered `blocks` and hands them
/// over, until one ends with the file (handed over, marked last), a read fails, or the parser
/// hangs up.
fn read_blocks_at(
    file: &impl Positioned,
    blocks: impl Iterator<Item = usize>,
    sizes: Sizes,
    (handing, returned): (&SyncSender<Handed>, &Receiver<Vec<u8>>),
    (counted, errors): (&AtomicU64, &ErrorSlot),
) {
    for number in blocks {
        let mut bytes = spare_block(returned, sizes);
        let start = (number as u64).saturating_mul(sizes.block as u64);
        let into = bytes.get_mut(sizes.room..).unwrap_or_default();
        let handed = match fill_at(file, into, start) {
            Ok(len) => {
                counted.fetch_add(len as u64, Ordering::Relaxed);
                Some(Block {
                    bytes,
                    len,
                    last: len < sizes.block,
                })
            }
            Err(error) => {
                open::keep_error(errors, error);
                None
            }
        };
        let end = handed.as_ref().is_none_or(|block| block.last);
        if handing.send(handed).is_err() || end {
            return;
        }
    }
}

/// Whether the records that begin in the first [`SAMPLE`] bytes of `file`, a capture in
/// `format`, average [`LARGE_RECORDS`] bytes or more, headers included. They are walked with
/// the parsers that will read them, only as far as those accept them: this chooses how to
/// read, and the reader checks everything again.
pub(crate) fn large_records(file: &impl Positioned, format: Format) -> bool {
    let mut sample = vec![0; SAMPLE];
    let Ok(len) = fill_at(file, &mut sample, 0) else {
        return false;
    };
    let sample = sample.get(..len).unwrap_or_default();
    let Ok(mut records) = Records::new(sample, format) else {
        return false;
    };
    let mut at = 0;
    let lengths = std::iter::from_fn(|| {
        let (len, _) = records.next(sample.get(at..)?, at, false).ok()?;
        at += len;
        Some(len).filter(|&len| len > 0)
    });
    // The first block is the file's own header (pcap's, or pcapng's first section header).
    let (count, bytes) = lengths
        .skip(1)
        .fold((0, 0), |(count, bytes), len| (count + 1, bytes + len));
    count > 0 && bytes >= count * LARGE_RECORDS
}

/// Reads `file` from `start` until `buf` is full or the file ends; the bytes read.
fn fill_at(file: &impl Positioned, buf: &mut [u8], start: u64) -> io::Result<usize> {
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
        match file.read_at(rest, start + len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(len)
}

impl PcapReaderIterator for Ahead {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let complete = self.window.exhausted;
        self.records
            .next(self.window.data(), self.consumed, complete)
    }

    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }

    fn consume_noshift(&mut self, offset: usize) {
        let offset = offset.min(self.window.data().len());
        self.window.start += offset;
        self.consumed += offset;
    }

    fn consumed(&self) -> usize {
        self.consumed
    }

    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        self.window.refill().map_err(|()| PcapError::ReadError)
    }

    fn position(&self) -> usize {
        self.consumed
    }

    /// The window grows by itself to hold a record (see [`Window::append`]).
    fn grow(&mut self, _new_size: usize) -> bool {
        true
    }

    fn data(&self) -> &[u8] {
        self.window.data()
    }

    fn reader_exhausted(&self) -> bool {
        self.window.exhausted
    }
}

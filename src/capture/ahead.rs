//! Reading ahead: a streamed capture's bytes read (and decompressed) on a thread of their own,
//! a few blocks ahead of the parsing, which parses them where they landed.
//!
//! Why: with `read` calls on the parsing thread, the kernel's copy into user memory, and the
//! decompression of a gzip or zstd capture, hold up everything after them. On a thread of
//! their own they run beside the parsing and tracking, on whichever core has room. Measured on
//! the benchmark's captures with two threads on two cores, in turns: the bulk capture (1.1 GB
//! of large frames, where the copy is half of all the work) 260 -> 221 ms (medians of 12); the
//! gzip one 3.43 and 3.11 -> 2.95 and 2.96 s (means of 4); the many-connection capture, whose
//! cores are already busy, 1.75 -> 1.71 s as pcap, within the noise, and 1.85 -> 1.95 s as
//! pcapng (medians of 6): the parsing then reads bytes another core wrote.
//!
//! The blocks are parsed in place, as a mapped file is (see [`super::records`]), so nothing is
//! copied a second time but a record that straddles two blocks: its first part is copied in
//! front of the second block, into room kept free there. A record too large for that room (a
//! damaged length the reader's checks let through, up to `open::MAX_RECORD`) makes the window
//! grow instead, the way pcap-parser's buffer grows.
//!
//! One `read` call fills (part of) one block and hands it over at once, so a capture arriving
//! slowly through a pipe is parsed as it comes, not when a block is full. An error is handed
//! over after the bytes read before it, so the parser meets it at the same offset as without
//! reading ahead.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::Format;
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
    pub(crate) const DEFAULT: Sizes = Sizes {
        block: 1 << 20,
        room: 512 << 10,
    };
}

/// Blocks read and not yet taken by the parser (with the one it is parsing and the one being
/// read, about 9 MiB at the default sizes).
const BLOCKS_AHEAD: usize = 4;

/// Bytes read by one `read` call: `bytes[room..room + len]`.
struct Block {
    bytes: Vec<u8>,
    len: usize,
}

/// What the reading thread hands over: a block, or the news that the next read failed (the
/// error itself is kept by the stream, see `open::KeepErrors`). The end of the stream is the
/// thread hanging up.
type Handed = Option<Block>;

/// A capture's bytes read ahead on a thread of their own and parsed in place, the way
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
    filled: Receiver<Handed>,
    /// Blocks parsed, handed back to be read into again.
    spent: SyncSender<Vec<u8>>,
    /// The stream has ended (or failed): no more blocks will come.
    exhausted: bool,
}

impl Ahead {
    /// Starts reading `stream`, a capture in `format` whose first header is `header_len` bytes
    /// long (see `open::recognise_format`), on a thread of its own. Fails as pcap-parser's
    /// readers do when that header is malformed, and with the I/O error when the thread cannot
    /// be started.
    pub(crate) fn start(
        stream: impl Read + Send + 'static,
        (format, header_len): (Format, usize),
        sizes: Sizes,
    ) -> io::Result<Result<Ahead, PcapError<&'static [u8]>>> {
        let (handing, filled) = sync_channel(BLOCKS_AHEAD);
        let (spent, returned) = sync_channel(BLOCKS_AHEAD + 1);
        std::thread::Builder::new()
            .name("tcplife-read".to_owned())
            .spawn(move || read_blocks(stream, sizes, &handing, &returned))?;
        let mut window = Window {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            sizes,
            filled,
            spent,
            exhausted: false,
        };
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
    fn data(&self) -> &[u8] {
        self.bytes.get(self.start..self.end).unwrap_or_default()
    }

    /// Takes the next block read, waiting for it if need be; fails when reading it failed.
    fn refill(&mut self) -> Result<(), ()> {
        if self.exhausted {
            return Ok(());
        }
        match self.filled.recv() {
            Ok(Some(block)) => self.append(block),
            Ok(None) => {
                self.exhausted = true;
                return Err(());
            }
            Err(_) => self.exhausted = true,
        }
        Ok(())
    }

    /// Makes `block` the window, with what is left of the current one in front of it.
    fn append(&mut self, block: Block) {
        let Sizes { room, .. } = self.sizes;
        let Block { mut bytes, len } = block;
        let left = self.end - self.start;
        if let Some(front) = room
            .checked_sub(left)
            .and_then(|at| bytes.get_mut(at..room))
        {
            front.copy_from_slice(self.data());
            let parsed = std::mem::replace(&mut self.bytes, bytes);
            self.hand_back(parsed);
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
        self.hand_back(bytes);
    }

    /// Gives a parsed block back to be read into again, if it is one of the usual size (a
    /// window grown for a large record is freed).
    fn hand_back(&self, bytes: Vec<u8>) {
        if bytes.len() == self.sizes.room + self.sizes.block {
            // When the reading thread has enough spare blocks, or has ended, this one is freed.
            let _ = self.spent.try_send(bytes);
        }
    }
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
        let mut bytes = returned
            .try_recv()
            .unwrap_or_else(|_| vec![0; sizes.room + sizes.block]);
        let handed = match stream.read(bytes.get_mut(sizes.room..).unwrap_or_default()) {
            Ok(0) => return,
            Ok(len) => Some(Block { bytes, len }),
            Err(_) => None,
        };
        let failed = handed.is_none();
        if handing.send(handed).is_err() || failed {
            return;
        }
    }
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

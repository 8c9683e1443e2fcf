//! A capture file read in place through a memory map, instead of copied piece by piece into
//! pcap-parser's buffer; only when the user asks for it (`--mmap`).
//!
//! [`Mapped`] plays the part of pcap-parser's streaming readers for [`super::reader`]: the same
//! trait, the same answers (its "buffer" is the rest of the file, all of it there at once), so
//! the reader's checks, offsets and errors do not depend on how the bytes arrive. Only regular,
//! uncompressed files are mapped; standard input, pipes and compressed captures are streamed.
//!
//! Why: copying the file into the buffer (`read`, the kernel's copy to user memory) is most of
//! the reading. On the benchmark's bulk capture (1.1 GB of large frames) mapping nearly halves
//! the whole run (233 -> 129 ms, medians of eight in turns); on the many-connection one it is
//! within the noise (1.22 s and 1.25 s), the copy's cost moving into the parser's first touch
//! of each frame. Peak RSS then counts the mapped file's pages (page cache, shared, not
//! allocated by tcplife): 1.1 GB on either capture.
//!
//! Why not by default: a mapping is sound only while no other process rewrites or truncates
//! the file, which tcplife cannot check or prevent (see [`FileMap::new`]). The user who asks
//! for it gives that promise; everyone else gets the copy, which nothing outside can disturb.

use std::fs::File;
use std::io;

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::Format;
use super::records::Records;

/// A read-only memory map of a whole regular file.
pub(crate) struct FileMap(memmap2::Mmap);

impl FileMap {
    /// Maps `file`, a regular file, for reading.
    pub(crate) fn new(file: &File) -> io::Result<FileMap> {
        // SAFETY: `Mmap::map` is unsafe because the mapping is shared with the file: what
        // another process writes to the file shows through it, and reading a page that a
        // truncation took away raises SIGBUS. The slice tcplife reads it through is a `&[u8]`,
        // which promises the compiler the bytes do not change while it is borrowed. That
        // promise holds, and the mapping is sound, under these conditions:
        // - tcplife never writes through it: it is mapped read-only (PROT_READ), and only
        //   shared references to its bytes are ever made;
        // - it is made for a regular file only (the caller checks the open file's own
        //   metadata), never a device or FIFO whose "pages" need not behave as memory;
        // - its length is fixed when it is made, every slice of it is bounds-checked against
        //   that length, and the borrow checker ties every frame lent out of it to the reader
        //   that owns it, so nothing reads it after it is unmapped;
        // - no other process rewrites or truncates the file while it is mapped. Nothing in the
        //   program can check or enforce this one, so the mapping is made only when the user
        //   asks for it with `--mmap`, whose help states the promise; without it, the file is
        //   copied in with `read` calls. Appending to the file (tcpdump still writing it)
        //   keeps the promise: it never touches the pages already mapped.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file) }?;
        Ok(FileMap(map))
    }
}

impl AsRef<[u8]> for FileMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A whole capture in memory, read the way pcap-parser's streaming readers read a stream; see
/// the module docs.
pub(crate) struct Mapped<B> {
    bytes: B,
    /// Bytes consumed from the start.
    consumed: usize,
    records: Records,
}

impl<B: AsRef<[u8]>> Mapped<B> {
    /// Starts at the first byte of `bytes`, whose format is `format` and whose first header is
    /// whole (see `open::recognise_format`); fails as pcap-parser's readers do when that header
    /// is malformed.
    pub(crate) fn new(bytes: B, format: Format) -> Result<Self, PcapError<&'static [u8]>> {
        let records = Records::new(bytes.as_ref(), format)?;
        Ok(Mapped {
            bytes,
            consumed: 0,
            records,
        })
    }
}

impl<B: AsRef<[u8]>> PcapReaderIterator for Mapped<B> {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        // All the input there will ever be is already here.
        let data = unconsumed(self.bytes.as_ref(), self.consumed);
        self.records.next(data, self.consumed, true)
    }

    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }

    fn consume_noshift(&mut self, offset: usize) {
        self.consumed = self
            .consumed
            .saturating_add(offset)
            .min(self.bytes.as_ref().len());
    }

    fn consumed(&self) -> usize {
        self.consumed
    }

    /// Nothing more to read: the whole file is already in the "buffer".
    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }

    fn position(&self) -> usize {
        self.consumed
    }

    /// Any record already fits.
    fn grow(&mut self, _new_size: usize) -> bool {
        true
    }

    fn data(&self) -> &[u8] {
        unconsumed(self.bytes.as_ref(), self.consumed)
    }

    fn reader_exhausted(&self) -> bool {
        true
    }
}

/// What is left of `bytes` after the first `consumed`.
fn unconsumed(bytes: &[u8], consumed: usize) -> &[u8] {
    bytes.get(consumed..).unwrap_or_default()
}

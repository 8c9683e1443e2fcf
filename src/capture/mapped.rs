//! A capture file read in place through a memory map, instead of copied piece by piece into
//! pcap-parser's buffer.
//!
//! [`Mapped`] plays the part of pcap-parser's streaming readers for [`super::reader`]: the same
//! trait, the same answers (its "buffer" is the rest of the file, all of it there at once), so
//! the reader's checks, offsets and errors do not depend on how the bytes arrive. Only regular,
//! uncompressed files are mapped; standard input, pipes and compressed captures are streamed.
//!
//! Why: copying the file into the buffer (`read`, the kernel's copy to user memory) is most of
//! the reading. On the benchmark's bulk capture (1.1 GB of large frames) mapping halves the
//! whole run (197 -> 104 ms, medians of eight in turns); on the many-connection one it is
//! within the noise, the copy's cost moving into the parser's first touch of each frame.

use std::fs::File;
use std::io;

use pcap_parser::nom::{self, Offset};
use pcap_parser::pcap::{
    LegacyPcapBlock, PcapHeader, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::Format;

/// A read-only memory map of a whole regular file.
pub(crate) struct FileMap(memmap2::Mmap);

impl FileMap {
    /// Maps `file`, a regular file, for reading.
    pub(crate) fn new(file: &File) -> io::Result<FileMap> {
        // SAFETY: `Mmap::map` is unsafe because a mapping is shared with the file: what other
        // processes write to the file shows through it, and reading a page that a truncation
        // took away raises SIGBUS. What tcplife itself does with it is sound:
        // - the mapping is read-only (PROT_READ) and tcplife never writes through it, so the
        //   only changes it can ever show come from outside the process;
        // - its length is fixed when it is made, every slice of it is bounds-checked against
        //   that length, and it lives as long as the reader that lends frames out of it (the
        //   borrow checker ties every frame to the reader), so no access falls outside it;
        // - it is mapped only for a regular file (never a device or a FIFO, whose "pages" may
        //   not exist), checked by the caller from the open file's own metadata.
        // What Rust cannot check is the one condition left: that no other process rewrites or
        // truncates the capture while it is being analysed. An appended capture (tcpdump still
        // writing) is fine: appending never touches the pages already mapped, and the run reads
        // what the file held when it was opened. Rewriting the file in place would make tcplife
        // read changing bytes, and truncating it would end the run with SIGBUS; `--no-mmap`
        // reads through `read` instead for a capture that may be overwritten while it is read,
        // and the README says so.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file) }?;
        // Read front to back once: ask the kernel for large read-ahead. Only a hint: a refusal
        // changes nothing but speed.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(FileMap(map))
    }
}

impl AsRef<[u8]> for FileMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// How the records of the mapped capture are parsed.
enum Layout {
    /// A pcap file: the file header (handed out first, as pcap-parser's reader does), then
    /// records in the flavour that header names.
    Pcap {
        header: PcapHeader,
        parse_record: PcapRecordParser,
    },
    /// A pcapng file, in the byte order of the current section.
    PcapNg { big_endian: bool },
}

type PcapRecordParser =
    for<'a> fn(&'a [u8]) -> nom::IResult<&'a [u8], LegacyPcapBlock<'a>, PcapError<&'a [u8]>>;

/// A whole capture in memory, read the way pcap-parser's streaming readers read a stream; see
/// the module docs.
pub(crate) struct Mapped<B> {
    bytes: B,
    /// Bytes consumed from the start.
    consumed: usize,
    layout: Layout,
}

impl<B: AsRef<[u8]>> Mapped<B> {
    /// Starts at the first byte of `bytes`, whose format is `format` and whose first header is
    /// whole (see `open::recognise_format`); fails as pcap-parser's readers do when that header
    /// is malformed.
    pub(crate) fn new(bytes: B, format: Format) -> Result<Self, PcapError<&'static [u8]>> {
        let layout = match format {
            Format::Pcap { .. } => {
                let header = match parse_pcap_header(bytes.as_ref()) {
                    Ok((_, header)) => header,
                    Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(e.to_owned_vec()),
                    Err(nom::Err::Incomplete(_)) => return Err(PcapError::UnexpectedEof),
                };
                let parse_record: PcapRecordParser = if header.is_modified_format() {
                    parse_pcap_frame_modified
                } else if header.is_bigendian() {
                    parse_pcap_frame_be
                } else {
                    parse_pcap_frame
                };
                Layout::Pcap {
                    header,
                    parse_record,
                }
            }
            Format::PcapNg => Layout::PcapNg { big_endian: false },
        };
        Ok(Mapped {
            bytes,
            consumed: 0,
            layout,
        })
    }
}

impl<B: AsRef<[u8]>> PcapReaderIterator for Mapped<B> {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let data = self.bytes.as_ref().get(self.consumed..).unwrap_or_default();
        if let Layout::Pcap { header, .. } = &self.layout {
            if self.consumed == 0 {
                return Ok((header.size(), PcapBlockOwned::from(header.clone())));
            }
        }
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        let parsed = match &mut self.layout {
            Layout::Pcap { parse_record, .. } => {
                parse_record(data).map(|(rest, record)| (rest, PcapBlockOwned::from(record)))
            }
            Layout::PcapNg { big_endian } => {
                let parse = if *big_endian {
                    parse_block_be
                } else {
                    parse_block_le
                };
                parse(data).map(|(rest, block)| {
                    if let Block::SectionHeader(section) = &block {
                        *big_endian = section.big_endian();
                    }
                    (rest, PcapBlockOwned::from(block))
                })
            }
        };
        match parsed {
            Ok((rest, block)) => Ok((data.offset(rest), block)),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
            // All the input there will ever be is already here.
            Err(nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
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
        self.bytes.as_ref().get(self.consumed..).unwrap_or_default()
    }

    fn reader_exhausted(&self) -> bool {
        true
    }
}

//! Parsing records out of bytes already in memory, for the readers that hand pcap-parser's
//! parsers their bytes themselves instead of using its streaming readers: the mapped file
//! ([`super::mapped`]) and the blocks read ahead ([`super::ahead`]). Their answers are the
//! streaming readers' answers, so that [`super::reader`]'s checks, offsets and errors do not
//! depend on how the bytes arrived.

use pcap_parser::nom::{self, Offset};
use pcap_parser::pcap::{
    LegacyPcapBlock, PcapHeader, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{PcapBlockOwned, PcapError};

use super::Format;

/// How the records of a capture are parsed.
pub(crate) enum Records {
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

impl Records {
    /// For a capture in `format` that starts with `head`, which holds its whole first header
    /// (see `open::recognise_format`); fails as pcap-parser's readers do when that header is
    /// malformed.
    pub(crate) fn new(head: &[u8], format: Format) -> Result<Self, PcapError<&'static [u8]>> {
        match format {
            Format::Pcap { .. } => {
                let header = match parse_pcap_header(head) {
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
                Ok(Records::Pcap {
                    header,
                    parse_record,
                })
            }
            Format::PcapNg => {
                // pcap-parser's streaming reader parses the first section header when it
                // starts: so does this, so that a header it refuses fails the same way.
                if let Err(nom::Err::Error(e) | nom::Err::Failure(e)) =
                    parse_sectionheaderblock(head)
                {
                    return Err(e.to_owned_vec());
                }
                Ok(Records::PcapNg { big_endian: false })
            }
        }
    }

    /// The next block and its length, parsed from `data`: the capture's bytes from `position`
    /// on, as far as they have been read; `complete` when no more will follow them.
    pub(crate) fn next<'a>(
        &mut self,
        data: &'a [u8],
        position: usize,
        complete: bool,
    ) -> Result<(usize, PcapBlockOwned<'a>), PcapError<&'a [u8]>> {
        if let Records::Pcap { header, .. } = self {
            if position == 0 {
                return Ok((header.size(), PcapBlockOwned::from(header.clone())));
            }
        }
        if data.is_empty() && complete {
            return Err(PcapError::Eof);
        }
        let parsed = match self {
            Records::Pcap { parse_record, .. } => {
                parse_record(data).map(|(rest, record)| (rest, PcapBlockOwned::from(record)))
            }
            Records::PcapNg { big_endian } => {
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
            Err(nom::Err::Incomplete(_)) if complete => Err(PcapError::UnexpectedEof),
            Err(nom::Err::Incomplete(nom::Needed::Size(n))) => Err(PcapError::Incomplete(n.get())),
            Err(nom::Err::Incomplete(nom::Needed::Unknown)) => Err(PcapError::Incomplete(0)),
        }
    }
}

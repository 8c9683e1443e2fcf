//! The parse floor: the least work any tool must do to count TCP connections in a capture.
//!
//! `tcplife-floor FILE` maps the capture (pcap or pcapng) into memory and walks it in place with
//! pcap-parser's slice readers, slices every frame with etherparse's lax slicer, and inserts
//! each TCP packet's 4-tuple (direction-independent) into a hash map. `--stream` reads the file
//! with pcap-parser's streaming reader instead (copied into a buffer with `read` calls, as a
//! pipe must be read); `--read-only` only walks the records. Each prints one line of counts, so
//! the work cannot be optimised away.
//!
//! Mapping is the faster way and the floor tcplife's targets are measured against: in the
//! benchmark's runs it took 0.76-0.99x the streaming time on the many-connection capture and
//! about half on the bulk one, much as the issue that set the targets says of its own floor.
//!
//! Link types: Ethernet (1), raw IP (101, 228, 229, 12 and 14); frames of other link types are
//! counted but not sliced.

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::{
    LegacyPcapSlice, Linktype, PcapBlockOwned, PcapError, PcapNGSlice, create_reader,
};
use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::process::ExitCode;

/// One end of a connection.
type End = (IpAddr, u16);

/// Bytes the streaming reader buffers: large enough for any frame and for few refills.
const BUFFER: usize = 1 << 20;

#[derive(Default)]
struct Counts {
    frames: u64,
    bytes: u64,
    tcp: u64,
    flows: HashMap<(End, End), u64>,
    /// The link type of the pcap file, or of each interface of the pcapng section.
    legacy_linktype: Option<Linktype>,
    linktypes: Vec<Linktype>,
}

impl Counts {
    /// One block of either format, however it was read.
    fn block(&mut self, block: PcapBlockOwned<'_>, read_only: bool) {
        match block {
            PcapBlockOwned::LegacyHeader(header) => self.legacy_linktype = Some(header.network),
            PcapBlockOwned::Legacy(b) => {
                let linktype = self.legacy_linktype.unwrap_or(Linktype::ETHERNET);
                self.frame(linktype, b.data, read_only)
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => self.linktypes.clear(),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.linktypes.push(idb.linktype)
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let linktype = self
                    .linktypes
                    .get(epb.if_id as usize)
                    .copied()
                    .unwrap_or(Linktype::ETHERNET);
                let caplen = (epb.caplen as usize).min(epb.data.len());
                self.frame(linktype, &epb.data[..caplen], read_only);
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let linktype = self
                    .linktypes
                    .first()
                    .copied()
                    .unwrap_or(Linktype::ETHERNET);
                self.frame(linktype, spb.data, read_only);
            }
            PcapBlockOwned::NG(_) => {}
        }
    }

    fn frame(&mut self, linktype: Linktype, data: &[u8], read_only: bool) {
        self.frames += 1;
        self.bytes += data.len() as u64;
        if read_only {
            return;
        }
        let sliced = match linktype {
            Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
            Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
                LaxSlicedPacket::from_ip(data).ok()
            }
            _ => None,
        };
        let Some(packet) = sliced else { return };
        let (src, dst): (IpAddr, IpAddr) = match &packet.net {
            Some(LaxNetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            Some(LaxNetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            _ => return,
        };
        let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
            return;
        };
        self.tcp += 1;
        let a = (src, tcp.source_port());
        let b = (dst, tcp.destination_port());
        let key = if a <= b { (a, b) } else { (b, a) };
        *self.flows.entry(key).or_default() += 1;
    }
}

/// Reads the file with pcap-parser's streaming reader.
fn run_streamed(path: &str, read_only: bool) -> Result<Counts, String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut reader = create_reader(BUFFER, file).map_err(|e| format!("{path}: {e:?}"))?;
    let mut counts = Counts::default();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                counts.block(block, read_only);
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                reader.refill().map_err(|e| format!("{path}: {e:?}"))?;
            }
            Err(e) => return Err(format!("{path}: {e:?}")),
        }
    }
    Ok(counts)
}

/// Maps the file and walks it in place with pcap-parser's slice readers (which read pcap in
/// little-endian byte order only, as the benchmark's captures are).
fn run_mapped(path: &str, read_only: bool) -> Result<Counts, String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: the map is read only and lives until the end of this function, which all the
    // slices of it do not outlive. It stays sound as long as no other process truncates or
    // rewrites the file meanwhile, which this benchmark tool assumes of its captures (it is
    // not part of tcplife; tcplife's own mapping says more).
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{path}: {e}"))?;
    let mut counts = Counts::default();
    let failed = |e| format!("{path}: {e:?}");
    if map.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        for block in PcapNGSlice::from_slice(&map).map_err(failed)? {
            counts.block(block.map_err(failed)?, read_only);
        }
    } else {
        let blocks = LegacyPcapSlice::from_slice(&map).map_err(failed)?;
        counts.legacy_linktype = Some(blocks.header.network);
        for block in blocks {
            counts.block(block.map_err(failed)?, read_only);
        }
    }
    Ok(counts)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, flags)) = args.split_last() else {
        return usage();
    };
    let read_only = flags.iter().any(|f| f == "--read-only");
    let streamed = flags.iter().any(|f| f == "--stream");
    if path.starts_with('-') || flags.iter().any(|f| f != "--read-only" && f != "--stream") {
        return usage();
    }
    let counted = if streamed {
        run_streamed(path, read_only)
    } else {
        run_mapped(path, read_only)
    };
    match counted {
        Ok(c) => {
            println!(
                "frames {} bytes {} tcp {} four_tuples {}",
                c.frames,
                c.bytes,
                c.tcp,
                c.flows.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcplife-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: tcplife-floor [--read-only] [--stream] CAPTURE");
    ExitCode::from(2)
}

//! The parse floor: the least work any tool must do to count TCP connections in a capture.
//!
//! `tcplife-floor FILE` reads the capture (pcap or pcapng) with pcap-parser's streaming reader,
//! slices every frame with etherparse's lax slicer, and inserts each TCP packet's 4-tuple
//! (direction-independent) into a hash map. `tcplife-floor --read-only FILE` only walks the
//! records. Either prints one line of counts, so the work cannot be optimised away.
//!
//! Link types: Ethernet (1), raw IP (101, 228, 229, 12 and 14); frames of other link types are
//! counted but not sliced.

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, create_reader};
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
}

impl Counts {
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

fn run(path: &str, read_only: bool) -> Result<Counts, String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut reader = create_reader(BUFFER, file).map_err(|e| format!("{path}: {e:?}"))?;
    let mut counts = Counts::default();
    let mut linktypes: Vec<Linktype> = Vec::new();
    let mut legacy_linktype = Linktype::ETHERNET;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => legacy_linktype = header.network,
                    PcapBlockOwned::Legacy(b) => counts.frame(legacy_linktype, b.data, read_only),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => linktypes.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        linktypes.push(idb.linktype)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let linktype = linktypes
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or(Linktype::ETHERNET);
                        let caplen = (epb.caplen as usize).min(epb.data.len());
                        counts.frame(linktype, &epb.data[..caplen], read_only);
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let linktype = linktypes.first().copied().unwrap_or(Linktype::ETHERNET);
                        counts.frame(linktype, spb.data, read_only);
                    }
                    PcapBlockOwned::NG(_) => {}
                }
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (read_only, path) = match args.as_slice() {
        [flag, path] if flag == "--read-only" => (true, path),
        [path] if !path.starts_with('-') => (false, path),
        _ => {
            eprintln!("usage: tcplife-floor [--read-only] CAPTURE");
            return ExitCode::from(2);
        }
    };
    match run(path, read_only) {
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

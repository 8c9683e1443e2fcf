//! Hand-built captures for the hostile-input tests (corruption, floods, adversarial TCP):
//! pcap and pcapng writers, raw IPv4 TCP segments, a walker that finds record boundaries in a
//! fixture, and a tiny seeded xorshift so "random" damage is the same on every run.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// xorshift64*: a fixed seed gives the same damage on every run and every machine.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- pcap ----

/// The 24-byte header of a little-endian microsecond pcap.
pub fn pcap_header(link_type: u32, snaplen: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend(0xa1b2_c3d4u32.to_le_bytes());
    h.extend(2u16.to_le_bytes());
    h.extend(4u16.to_le_bytes());
    h.extend(0i32.to_le_bytes());
    h.extend(0u32.to_le_bytes());
    h.extend(snaplen.to_le_bytes());
    h.extend(link_type.to_le_bytes());
    h
}

/// A pcap record header claiming `caplen` captured and `orig_len` wire bytes.
pub fn pcap_record_header(ts_ns: i64, caplen: u32, orig_len: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(16);
    r.extend(((ts_ns / 1_000_000_000) as u32).to_le_bytes());
    r.extend(((ts_ns % 1_000_000_000 / 1_000) as u32).to_le_bytes());
    r.extend(caplen.to_le_bytes());
    r.extend(orig_len.to_le_bytes());
    r
}

/// Appends one whole record.
pub fn pcap_record(out: &mut Vec<u8>, ts_ns: i64, frame: &[u8], orig_len: u32) {
    out.extend(pcap_record_header(ts_ns, frame.len() as u32, orig_len));
    out.extend(frame);
}

/// Streams a pcap to a file without holding it in memory.
pub struct PcapWriter {
    out: std::io::BufWriter<std::fs::File>,
    pub records: u64,
}

impl PcapWriter {
    pub fn create(path: &Path, link_type: u32) -> PcapWriter {
        let file = std::fs::File::create(path).unwrap();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        out.write_all(&pcap_header(link_type, 262_144)).unwrap();
        PcapWriter { out, records: 0 }
    }

    /// One record of `frame` (its captured bytes), `orig_len` long on the wire.
    pub fn record(&mut self, ts_ns: i64, frame: &[u8], orig_len: u32) {
        self.out
            .write_all(&pcap_record_header(ts_ns, frame.len() as u32, orig_len))
            .unwrap();
        self.out.write_all(frame).unwrap();
        self.records += 1;
    }

    pub fn finish(mut self) {
        self.out.flush().unwrap();
    }
}

// ---- pcapng (little-endian) ----

/// A block: type, total length, body (padded to 4), total length again.
pub fn ng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend(block_type.to_le_bytes());
    b.extend(len.to_le_bytes());
    b.extend(body);
    b.resize(8 + padded, 0);
    b.extend(len.to_le_bytes());
    b
}

/// A section header block, section length unknown.
pub fn ng_shb() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0x1a2b_3c4du32.to_le_bytes());
    body.extend(1u16.to_le_bytes());
    body.extend(0u16.to_le_bytes());
    body.extend((-1i64).to_le_bytes());
    ng_block(0x0a0d_0d0a, &body)
}

/// An interface description block; `tsoffset_s` adds an `if_tsoffset` option.
pub fn ng_idb(link_type: u16, tsoffset_s: Option<i64>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(link_type.to_le_bytes());
    body.extend(0u16.to_le_bytes());
    body.extend(0u32.to_le_bytes());
    if let Some(offset) = tsoffset_s {
        body.extend(14u16.to_le_bytes());
        body.extend(8u16.to_le_bytes());
        body.extend(offset.to_le_bytes());
        body.extend(0u32.to_le_bytes()); // opt_endofopt
    }
    ng_block(1, &body)
}

/// An enhanced packet block of interface `if_id`, timestamp in microseconds.
pub fn ng_epb(if_id: u32, ts_us: u64, frame: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(if_id.to_le_bytes());
    body.extend(((ts_us >> 32) as u32).to_le_bytes());
    body.extend((ts_us as u32).to_le_bytes());
    body.extend((frame.len() as u32).to_le_bytes());
    body.extend((frame.len() as u32).to_le_bytes());
    body.extend(frame);
    ng_block(6, &body)
}

// ---- segments ----

/// A raw IPv4 TCP segment (LINKTYPE_RAW): 20-byte IP header, 20-byte TCP header, then only
/// `captured` of the `payload_len` payload octets (the IP length counts them all, as a
/// snaplen-cut capture would).
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub src: [u8; 4],
    pub sport: u16,
    pub dst: [u8; 4],
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload_len: u16,
    /// A window-scale option (SYNs), as a shift count.
    pub wscale: Option<u8>,
}

impl Seg {
    pub fn new(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Seg {
        Seg {
            src,
            sport,
            dst,
            dport,
            seq: 0,
            ack: 0,
            flags: 0,
            window: 65535,
            payload_len: 0,
            wscale: None,
        }
    }

    pub fn wscale(mut self, shift: u8) -> Seg {
        self.wscale = Some(shift);
        self
    }

    pub fn flags(mut self, flags: u8, seq: u32, ack: u32) -> Seg {
        self.flags = flags;
        self.seq = seq;
        self.ack = ack;
        self
    }

    pub fn payload(mut self, len: u16) -> Seg {
        self.payload_len = len;
        self
    }

    pub fn window(mut self, window: u16) -> Seg {
        self.window = window;
        self
    }

    /// The same 4-tuple the other way round, no flags.
    pub fn reply(&self) -> Seg {
        Seg::new(self.dst, self.dport, self.src, self.sport)
    }

    /// Length of the TCP options (a window-scale option padded to 4 bytes, or none).
    fn options_len(&self) -> usize {
        if self.wscale.is_some() { 4 } else { 0 }
    }

    /// The headers (40 bytes, or 44 with an option); the wire length is `self.wire_len()`.
    pub fn bytes(&self) -> Vec<u8> {
        let headers = 40 + self.options_len();
        let mut b = vec![0u8; headers];
        let total = headers as u16 + self.payload_len;
        b[0] = 0x45;
        b[2..4].copy_from_slice(&total.to_be_bytes());
        b[6] = 0x40; // don't fragment
        b[8] = 64;
        b[9] = 6;
        b[12..16].copy_from_slice(&self.src);
        b[16..20].copy_from_slice(&self.dst);
        let sum = ip_checksum(&b[..20]);
        b[10..12].copy_from_slice(&sum.to_be_bytes());
        b[20..22].copy_from_slice(&self.sport.to_be_bytes());
        b[22..24].copy_from_slice(&self.dport.to_be_bytes());
        b[24..28].copy_from_slice(&self.seq.to_be_bytes());
        b[28..32].copy_from_slice(&self.ack.to_be_bytes());
        b[32] = ((20 + self.options_len()) as u8 / 4) << 4;
        b[33] = self.flags;
        b[34..36].copy_from_slice(&self.window.to_be_bytes());
        if let Some(shift) = self.wscale {
            b[40..44].copy_from_slice(&[1, 3, 3, shift]);
        }
        b
    }

    pub fn wire_len(&self) -> u32 {
        (40 + self.options_len()) as u32 + u32::from(self.payload_len)
    }
}

fn ip_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for w in header.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A pcap (LINKTYPE_RAW) of `segs`, each at its time in nanoseconds.
pub fn raw_pcap(segs: &[(i64, Seg)]) -> Vec<u8> {
    let mut out = pcap_header(LINKTYPE_RAW, 262_144);
    for (ts, seg) in segs {
        pcap_record(&mut out, *ts, &seg.bytes(), seg.wire_len());
    }
    out
}

// ---- fixtures ----

/// Where each record (pcap) or block (pcapng) of a capture starts and ends, and whether it
/// carries a packet. Little-endian files only (all the fixtures are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    pub packet: bool,
}

/// The file header's length and the records after it.
pub fn records(bytes: &[u8]) -> (usize, Vec<Record>) {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let header = u32_at(4);
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let (kind, len) = (u32_at(at), u32_at(at + 4));
            if at > 0 {
                out.push(Record {
                    start: at,
                    end: at + len,
                    packet: matches!(kind, 2 | 3 | 6),
                });
            }
            at += len;
        }
        (header, out)
    } else {
        assert_eq!(bytes[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let len = 16 + u32_at(at + 8);
            out.push(Record {
                start: at,
                end: at + len,
                packet: true,
            });
            at += len;
        }
        (24, out)
    }
}

/// The fixture captures of the corruption suite: every kernel pcap and Zeek pcapng (in little-
/// endian byte order, as all of them are), as paths relative to the crate root.
pub fn fixtures() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = Vec::new();
    let kernel = root.join("testdata/kernel");
    for entry in std::fs::read_dir(&kernel).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            files.push(format!(
                "testdata/kernel/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    for dir in std::fs::read_dir(root.join("testdata/zeek")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "pcapng") {
                files.push(format!(
                    "testdata/zeek/{}/{}",
                    dir.file_name().unwrap().to_string_lossy(),
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    // `records` walks little-endian microsecond pcap and little-endian pcapng only.
    files.retain(|f| {
        let head = std::fs::read(root.join(f)).unwrap_or_default();
        matches!(
            head.get(..12),
            Some([0xd4, 0xc3, 0xb2, 0xa1, ..])
                | Some([0x0a, 0x0d, 0x0d, 0x0a, _, _, _, _, 0x4d, 0x3c, 0x2b, 0x1a])
        )
    });
    files.sort();
    files
}

//! Tests of the capture stage. Every capture here is hand-built byte by byte by the helpers
//! below (or, for `testdata/sample.pcap.zst`, hand-built and then compressed with the `zstd`
//! command-line tool), so each test says exactly which bytes it feeds the reader.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::ahead::{LARGE_RECORDS, Sizes, large_records};
use super::reader::AtPositions;
use super::*;

const ETHERNET: u32 = 1;
const RAW_IP: u32 = 101;
const LINUX_SLL: u32 = 113;

/// Mapping asked for (`--mmap`).
const READ_MAP: ReadMode = ReadMode {
    map: true,
    ahead: false,
};

/// 2023-11-14T22:13:20.123456 UTC, in nanoseconds.
const TS_NS: i64 = 1_700_000_000_123_456_000;

// ---------------------------------------------------------------------------------------------
// Byte builders.

fn put16(out: &mut Vec<u8>, value: u16, big_endian: bool) {
    out.extend(if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

fn put32(out: &mut Vec<u8>, value: u32, big_endian: bool) {
    out.extend(if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

fn put64(out: &mut Vec<u8>, value: u64, big_endian: bool) {
    out.extend(if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    });
}

/// A pcap file header. `magic` is the logical value (0xa1b2c3d4 or 0xa1b23c4d), written in the
/// file's byte order like every other field.
fn pcap_header(magic: u32, big_endian: bool, snaplen: u32, link_type: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, magic, big_endian);
    put16(&mut out, 2, big_endian);
    put16(&mut out, 4, big_endian);
    put32(&mut out, 0, big_endian); // thiszone
    put32(&mut out, 0, big_endian); // sigfigs
    put32(&mut out, snaplen, big_endian);
    put32(&mut out, link_type, big_endian);
    out
}

/// A pcap record header (with any caplen, for damaged records) followed by `data`.
fn pcap_record_raw(
    big_endian: bool,
    sec: u32,
    frac: u32,
    caplen: u32,
    orig_len: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, sec, big_endian);
    put32(&mut out, frac, big_endian);
    put32(&mut out, caplen, big_endian);
    put32(&mut out, orig_len, big_endian);
    out.extend_from_slice(data);
    out
}

fn pcap_record(big_endian: bool, sec: u32, frac: u32, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u32;
    pcap_record_raw(big_endian, sec, frac, len, len + 4, data)
}

/// A little-endian microsecond pcap with the given payloads, one second apart.
fn simple_pcap(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = pcap_header(0xa1b2_c3d4, false, 65535, ETHERNET);
    for (i, payload) in payloads.iter().enumerate() {
        out.extend(pcap_record(
            false,
            1_700_000_000 + i as u32,
            123_456,
            payload,
        ));
    }
    out
}

/// A pcapng block: type, total length, body padded to 32 bits, total length again.
fn ng_block(big_endian: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    put32(&mut out, block_type, big_endian);
    put32(&mut out, total, big_endian);
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    put32(&mut out, total, big_endian);
    out
}

fn shb(big_endian: bool) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, 0x1A2B_3C4D, big_endian);
    put16(&mut body, 1, big_endian);
    put16(&mut body, 0, big_endian);
    put64(&mut body, u64::MAX, big_endian); // section length: unknown
    ng_block(big_endian, 0x0A0D_0D0A, &body)
}

/// An interface description block; `options` are (code, value) pairs.
fn idb(big_endian: bool, link_type: u16, snaplen: u32, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    put16(&mut body, link_type, big_endian);
    put16(&mut body, 0, big_endian);
    put32(&mut body, snaplen, big_endian);
    for (code, value) in options {
        put16(&mut body, *code, big_endian);
        put16(&mut body, value.len() as u16, big_endian);
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    if !options.is_empty() {
        body.extend([0, 0, 0, 0]); // opt_endofopt
    }
    ng_block(big_endian, 1, &body)
}

fn tsresol(value: u8) -> (u16, Vec<u8>) {
    (9, vec![value])
}

fn tsoffset(seconds: i64, big_endian: bool) -> (u16, Vec<u8>) {
    let bytes = if big_endian {
        seconds.to_be_bytes()
    } else {
        seconds.to_le_bytes()
    };
    (14, bytes.to_vec())
}

fn epb(big_endian: bool, interface: u32, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
    epb_raw(big_endian, interface, ts, data.len() as u32, data, orig_len)
}

fn epb_raw(
    big_endian: bool,
    interface: u32,
    ts: u64,
    caplen: u32,
    data: &[u8],
    orig_len: u32,
) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, interface, big_endian);
    put32(&mut body, (ts >> 32) as u32, big_endian);
    put32(&mut body, ts as u32, big_endian);
    put32(&mut body, caplen, big_endian);
    put32(&mut body, orig_len, big_endian);
    body.extend_from_slice(data);
    ng_block(big_endian, 6, &body)
}

fn spb(big_endian: bool, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, orig_len, big_endian);
    body.extend_from_slice(data);
    ng_block(big_endian, 3, &body)
}

fn opb(big_endian: bool, interface: u16, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    put16(&mut body, interface, big_endian);
    put16(&mut body, 0, big_endian); // drops
    put32(&mut body, (ts >> 32) as u32, big_endian);
    put32(&mut body, ts as u32, big_endian);
    put32(&mut body, data.len() as u32, big_endian);
    put32(&mut body, orig_len, big_endian);
    body.extend_from_slice(data);
    ng_block(big_endian, 2, &body)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

// ---------------------------------------------------------------------------------------------
// Reading helpers.

/// A frame copied out of the reader's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    data: Vec<u8>,
    orig_len: u32,
    ts_ns: i64,
    link_type: u32,
    offset: u64,
}

fn reader_over(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    let size = bytes.len() as u64;
    CaptureReader::from_reader("test.pcap", Box::new(io::Cursor::new(bytes)), Some(size))
}

/// Reads every frame, then the error that stopped the reader, if any.
fn drain(reader: &mut CaptureReader) -> (Vec<Owned>, Option<CaptureError>) {
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => frames.push(Owned {
                data: frame.data.to_vec(),
                orig_len: frame.orig_len,
                ts_ns: frame.ts_ns,
                link_type: frame.link_type,
                offset: frame.offset,
            }),
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error)),
        }
    }
}

/// The same bytes read in place, as a mapped file is; `None` for compressed bytes, which are
/// always streamed.
fn in_place(bytes: &[u8]) -> Option<Result<CaptureReader, CaptureError>> {
    let size = bytes.len() as u64;
    CaptureReader::from_bytes("test.pcap", bytes.to_vec(), Some(size)).transpose()
}

/// The sizes reading ahead is tried with: blocks so small that records straddle them and
/// outgrow the room in front of them, middling ones, and the default.
const AHEAD_SIZES: [Sizes; 3] = [
    Sizes { block: 7, room: 5 },
    Sizes {
        block: 100,
        room: 40,
    },
    Sizes::DEFAULT,
];

/// The same bytes read ahead on a thread of their own, in blocks of `sizes`.
fn read_ahead(bytes: &[u8], sizes: Sizes) -> Result<CaptureReader, CaptureError> {
    let size = bytes.len() as u64;
    let stream = Box::new(io::Cursor::new(bytes.to_vec()));
    CaptureReader::stream("test.pcap", stream, Some(size), Some(sizes))
}

/// The same bytes read ahead at positions, as a regular file is, by several threads in blocks
/// of `sizes`; `None` for compressed bytes, which are always streamed.
fn read_at_positions(bytes: &[u8], sizes: Sizes) -> Option<Result<CaptureReader, CaptureError>> {
    let size = bytes.len() as u64;
    match CaptureReader::positioned(
        "test.pcap",
        Arc::new(bytes.to_vec()),
        Some(size),
        (sizes, true),
    ) {
        Ok(AtPositions::Reading(reader)) => Some(Ok(reader)),
        Ok(AtPositions::Streamed(source)) if source.compression != Compression::None => None,
        Ok(AtPositions::Streamed(_)) => panic!("every capture is read at positions when asked"),
        Err(error) => Some(Err(error)),
    }
}

/// Every way `bytes` can be read but the streamed one: in place and at positions (unless
/// compressed), and read ahead as a stream, in blocks of each of [`AHEAD_SIZES`].
fn other_ways(bytes: &[u8]) -> Vec<(String, Result<CaptureReader, CaptureError>)> {
    let placed = in_place(bytes).map(|reader| ("read in place".to_owned(), reader));
    let ahead = AHEAD_SIZES.iter().flat_map(|&sizes| {
        let streamed = (format!("read ahead in {sizes:?}"), read_ahead(bytes, sizes));
        let positioned = read_at_positions(bytes, sizes)
            .map(|reader| (format!("read at positions in {sizes:?}"), reader));
        std::iter::once(streamed).chain(positioned)
    });
    placed.into_iter().chain(ahead).collect()
}

/// Reads `bytes` streamed and every other way (see [`other_ways`]): all must give the same
/// frames, at the same offsets, and the same error. The streamed reading is returned.
fn read_every_way(bytes: Vec<u8>) -> (Vec<Owned>, Option<CaptureError>, CaptureReader) {
    let others = other_ways(&bytes);
    let mut reader = reader_over(bytes).unwrap();
    let (frames, error) = drain(&mut reader);
    for (way, other) in others {
        let (other_frames, other_error) = drain(&mut other.unwrap());
        assert_eq!(other_frames, frames, "{way}");
        assert_eq!(
            other_error.as_ref().map(ToString::to_string),
            error.as_ref().map(ToString::to_string),
            "{way}"
        );
        assert_eq!(
            other_error.and_then(|e| e.offset),
            error.as_ref().and_then(|e| e.offset),
            "{way}"
        );
    }
    (frames, error, reader)
}

fn read_ok(bytes: Vec<u8>) -> (Vec<Owned>, CaptureReader) {
    let (frames, error, reader) = read_every_way(bytes);
    assert!(error.is_none(), "unexpected error: {}", error.unwrap());
    (frames, reader)
}

/// Reads until the reader fails, and checks it then stays finished without panicking.
fn read_err(bytes: Vec<u8>) -> (Vec<Owned>, CaptureError) {
    let (frames, error, mut reader) = read_every_way(bytes);
    let error = error.expect("the reader should fail");
    assert!(reader.next_frame().unwrap().is_none());
    assert!(reader.next_frame().unwrap().is_none());
    (frames, error)
}

fn open_err(bytes: Vec<u8>) -> CaptureError {
    let others = other_ways(&bytes);
    let error = match reader_over(bytes) {
        Ok(_) => panic!("opening should fail"),
        Err(error) => error,
    };
    for (way, other) in others {
        let other = other
            .err()
            .unwrap_or_else(|| panic!("opening should fail: {way}"));
        assert_eq!(other.to_string(), error.to_string(), "{way}");
    }
    error
}

/// Hands out its bytes one at a time, like the slowest pipe.
struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

/// Reads `bytes` handed out a byte at a time, on the caller's thread and read ahead (each
/// byte a block of its own): both must read without error and give the same frames.
fn read_trickled(bytes: Vec<u8>) -> Vec<Owned> {
    let trickle = |bytes: &[u8]| Box::new(Trickle(io::Cursor::new(bytes.to_vec())));
    let ahead = Some(Sizes { block: 64, room: 8 });
    let mut ahead = CaptureReader::stream("-", trickle(&bytes), None, ahead).unwrap();
    let mut reader = CaptureReader::from_reader("-", trickle(&bytes), None).unwrap();
    let (frames, error) = drain(&mut reader);
    assert!(error.is_none(), "unexpected error: {}", error.unwrap());
    let (ahead_frames, ahead_error) = drain(&mut ahead);
    assert!(
        ahead_error.is_none(),
        "read ahead: {}",
        ahead_error.unwrap()
    );
    assert_eq!(ahead_frames, frames, "read ahead");
    frames
}

// ---------------------------------------------------------------------------------------------
// pcap.

#[test]
fn pcap_four_flavours_give_the_same_timestamp() {
    let payload = [0xde, 0xad, 0xbe, 0xef, 0x01];
    let flavours = [
        (0xa1b2_c3d4, false, 123_456, false),
        (0xa1b2_c3d4, true, 123_456, false),
        (0xa1b2_3c4d, false, 123_456_000, true),
        (0xa1b2_3c4d, true, 123_456_000, true),
    ];
    for (magic, big_endian, frac, nanosecond) in flavours {
        let mut bytes = pcap_header(magic, big_endian, 65535, LINUX_SLL);
        bytes.extend(pcap_record(big_endian, 1_700_000_000, frac, &payload));
        bytes.extend(pcap_record(big_endian, 1_700_000_001, 0, &payload[..2]));
        let (frames, reader) = read_ok(bytes);
        assert_eq!(
            reader.format(),
            Format::Pcap {
                nanosecond,
                big_endian
            }
        );
        assert_eq!(reader.compression(), Compression::None);
        assert_eq!(
            frames,
            vec![
                Owned {
                    data: payload.to_vec(),
                    orig_len: 9,
                    ts_ns: TS_NS,
                    link_type: LINUX_SLL,
                    offset: 24,
                },
                Owned {
                    data: payload[..2].to_vec(),
                    orig_len: 6,
                    ts_ns: 1_700_000_001_000_000_000,
                    link_type: LINUX_SLL,
                    offset: 24 + 16 + 5,
                },
            ],
            "magic {magic:#x}, big endian {big_endian}"
        );
        assert_eq!(reader.stats(), &ReaderStats::default());
    }
}

#[test]
fn pcap_link_type_drops_fcs_bits() {
    // The top bits of the link type field carry an FCS length (here 4 bytes: 0x1 << 28 | f).
    let mut bytes = pcap_header(0xa1b2_c3d4, false, 65535, 0x1400_0000 | ETHERNET);
    bytes.extend(pcap_record(false, 1, 0, &[1, 2, 3]));
    let (frames, _) = read_ok(bytes);
    assert_eq!(frames[0].link_type, ETHERNET);
}

#[test]
fn pcap_header_only_is_an_empty_capture() {
    let (frames, _) = read_ok(pcap_header(0xa1b2_c3d4, false, 65535, ETHERNET));
    assert!(frames.is_empty());
}

#[test]
fn pcap_record_larger_than_the_buffer_grows_it() {
    // 3 MiB, three times the initial buffer.
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    let mut bytes = pcap_header(0xa1b2_c3d4, false, 0, RAW_IP);
    bytes.extend(pcap_record(false, 5, 0, &[7; 10]));
    bytes.extend(pcap_record(false, 6, 0, &big));
    bytes.extend(pcap_record(false, 7, 0, &[8; 10]));
    let (frames, _) = read_ok(bytes);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1].data, big);
    assert_eq!(frames[2].offset, 24 + 26 + 16 + (3 << 20));
}

#[test]
fn pcap_read_one_byte_at_a_time() {
    let bytes = simple_pcap(&[b"first", b"second", b"third"]);
    let (expected, _) = read_ok(bytes.clone());
    assert_eq!(read_trickled(bytes), expected);
}

#[test]
fn pcap_caplen_absurd() {
    let mut bytes = simple_pcap(&[b"fine"]);
    let offset = bytes.len() as u64;
    bytes.extend(pcap_record_raw(
        false,
        1,
        0,
        0x7fff_ffff,
        0x7fff_ffff,
        b"xx",
    ));
    let (frames, error) = read_err(bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(error.offset, Some(offset));
    let CaptureErrorKind::Corrupt(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("2147483647"), "{message}");
}

#[test]
fn pcap_caplen_above_snaplen() {
    let mut bytes = pcap_header(0xa1b2_c3d4, false, 100, ETHERNET);
    bytes.extend(pcap_record(false, 1, 0, &[0; 100]));
    bytes.extend(pcap_record(false, 1, 0, &[0; 101]));
    let (frames, error) = read_err(bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(error.offset, Some(24 + 116));
    let CaptureErrorKind::Corrupt(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("101") && message.contains("100"),
        "{message}"
    );
}

#[test]
fn pcap_truncated_in_file_header() {
    let bytes = simple_pcap(&[b"x"])[..10].to_vec();
    let error = open_err(bytes);
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    assert_eq!(error.offset, Some(0));
}

#[test]
fn pcap_truncated_in_record_header() {
    let mut bytes = simple_pcap(&[b"one", b"two"]);
    let second = 24 + 16 + 3;
    bytes.truncate(second + 9);
    let (frames, error) = read_err(bytes);
    assert_eq!(frames.len(), 1);
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    assert_eq!(error.offset, Some(second as u64));
}

#[test]
fn pcap_truncated_in_record_body() {
    let mut bytes = simple_pcap(&[b"one", b"two", b"three"]);
    let third = 24 + 2 * (16 + 3);
    bytes.truncate(third + 16 + 2);
    let (frames, error) = read_err(bytes);
    assert_eq!(frames.len(), 2);
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    assert_eq!(error.offset, Some(third as u64));
    assert!(error.to_string().contains("cut short"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// pcapng.

/// Two sections: a little-endian one with an Ethernet interface in nanoseconds and a raw-IP
/// interface in 2^-20 s with an offset, then a big-endian one with a Linux-cooked interface at
/// the default microsecond resolution with its own offset.
#[test]
fn pcapng_two_sections_two_interfaces() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[tsresol(9)]));
    bytes.extend(idb(
        false,
        RAW_IP as u16,
        0,
        &[tsresol(0x80 | 20), tsoffset(1_000_000_000, false)],
    ));
    let first = bytes.len() as u64;
    bytes.extend(epb(false, 0, 1_700_000_000_123_456_789, b"eth", 60));
    let second = bytes.len() as u64;
    // 5.5 s in 2^-20 s units.
    bytes.extend(epb(false, 1, (5 << 20) + (1 << 19), b"raw-ip", 40));
    bytes.extend(ng_block(false, 4, &[0, 0, 0, 0])); // name resolution, empty
    bytes.extend(ng_block(false, 0x0000_0BAE, b"not known")); // unknown type
    bytes.extend(shb(true));
    bytes.extend(idb(true, LINUX_SLL as u16, 0, &[tsoffset(7, true)]));
    let third = bytes.len() as u64;
    bytes.extend(epb(true, 0, 1_500_000, b"cooked", 6));
    bytes.extend(ng_block(true, 0x0000_0BAE, b"x")); // unknown, big-endian
    let (frames, reader) = read_ok(bytes.clone());
    assert_eq!(reader.format(), Format::PcapNg);
    assert_eq!(
        frames,
        vec![
            Owned {
                data: b"eth".to_vec(),
                orig_len: 60,
                ts_ns: 1_700_000_000_123_456_789,
                link_type: ETHERNET,
                offset: first,
            },
            Owned {
                data: b"raw-ip".to_vec(),
                orig_len: 40,
                ts_ns: 1_000_000_005_500_000_000,
                link_type: RAW_IP,
                offset: second,
            },
            Owned {
                data: b"cooked".to_vec(),
                orig_len: 6,
                ts_ns: 8_500_000_000,
                link_type: LINUX_SLL,
                offset: third,
            },
        ]
    );
    let stats = reader.stats();
    assert_eq!(stats.sections, 2);
    assert_eq!(stats.interfaces, 3);
    assert_eq!(stats.skipped_blocks.get(&4), Some(&1));
    assert_eq!(stats.skipped_blocks.get(&0x0BAE), Some(&2));
    assert_eq!(stats.skipped_total(), 3);
    assert_eq!(read_trickled(bytes), frames);
}

#[test]
fn pcapng_packet_with_options() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    // An EPB with an odd-length payload, then epb_flags (code 2) and a comment (code 1).
    let mut body = Vec::new();
    for word in [0u32, 0, 3_000_000, 5, 64] {
        put32(&mut body, word, false);
    }
    body.extend(b"hello\0\0\0");
    body.extend([2, 0, 4, 0, 1, 0, 0, 0]);
    body.extend([1, 0, 3, 0, b'h', b'i', b'!', 0]);
    body.extend([0, 0, 0, 0]);
    bytes.extend(ng_block(false, 6, &body));
    bytes.extend(epb(false, 0, 4_000_000, b"next", 4));
    let (frames, _) = read_ok(bytes);
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0].data.as_slice(), frames[0].orig_len),
        (&b"hello"[..], 64)
    );
    assert_eq!(frames[0].ts_ns, 3_000_000_000);
    assert_eq!(frames[1].data, b"next");
}

/// Enhanced packet blocks without options are read in place, those with options by
/// pcap-parser: both give the same frames, for either byte order and every padding.
#[test]
fn pcapng_plain_packets_read_in_place_match_the_parser() {
    for big_endian in [false, true] {
        let file = |with_option: bool| {
            let mut bytes = shb(big_endian);
            bytes.extend(idb(big_endian, ETHERNET as u16, 0, &[tsresol(9)]));
            for n in 0..9u32 {
                let data: Vec<u8> = (0..n as u8).collect();
                let mut body = Vec::new();
                for word in [0, 1, 2_000_000 + n, n, 100 + n] {
                    put32(&mut body, word, big_endian);
                }
                body.extend(&data);
                body.resize(20 + data.len().div_ceil(4) * 4, 0);
                if with_option {
                    // A comment ("x"), then the end of options.
                    put16(&mut body, 1, big_endian);
                    put16(&mut body, 1, big_endian);
                    body.extend([b'x', 0, 0, 0, 0, 0, 0, 0]);
                }
                bytes.extend(ng_block(big_endian, 6, &body));
            }
            let (frames, _) = read_ok(bytes);
            frames
                .into_iter()
                .map(|f| (f.data, f.orig_len, f.ts_ns, f.link_type))
                .collect::<Vec<_>>()
        };
        let in_place = file(false);
        assert_eq!(in_place.len(), 9);
        assert_eq!(in_place[5].0, vec![0, 1, 2, 3, 4]);
        assert_eq!(in_place, file(true), "big-endian: {big_endian}");
    }
}

#[test]
fn pcapng_interface_numbers_restart_with_each_section() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    bytes.extend(idb(false, RAW_IP as u16, 0, &[]));
    bytes.extend(shb(false));
    bytes.extend(idb(false, LINUX_SLL as u16, 0, &[]));
    let bad = bytes.len() as u64;
    bytes.extend(epb(false, 1, 0, b"x", 1));
    let (frames, error) = read_err(bytes);
    assert!(frames.is_empty());
    assert_eq!(error.offset, Some(bad));
    let CaptureErrorKind::Corrupt(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("interface 1"), "{message}");
}

#[test]
fn pcapng_simple_packet_blocks() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 4, &[]));
    // Before any timestamp: 0. Cut to the snapshot length of 4.
    let first = bytes.len() as u64;
    bytes.extend(spb(false, 60, b"abcdef"));
    bytes.extend(epb(false, 0, 2_000_000, b"ts", 2));
    // Takes the last timestamp; the original length is shorter than the padded data.
    bytes.extend(spb(false, 3, b"xyz"));
    let (frames, _) = read_ok(bytes);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].data, b"abcd");
    assert_eq!(
        (frames[0].orig_len, frames[0].ts_ns, frames[0].offset),
        (60, 0, first)
    );
    assert_eq!(frames[2].data, b"xyz");
    assert_eq!((frames[2].orig_len, frames[2].ts_ns), (3, 2_000_000_000));
    assert_eq!(frames[2].link_type, ETHERNET);
}

#[test]
fn pcapng_simple_packet_block_without_interface() {
    let mut bytes = shb(false);
    bytes.extend(spb(false, 3, b"xyz"));
    let (_, error) = read_err(bytes);
    assert_eq!(error.offset, Some(28));
    assert!(
        matches!(error.kind, CaptureErrorKind::Corrupt(_)),
        "{error:?}"
    );
}

#[test]
fn pcapng_obsolete_packet_block() {
    let mut bytes = shb(true);
    bytes.extend(idb(true, ETHERNET as u16, 0, &[]));
    bytes.extend(idb(true, RAW_IP as u16, 0, &[tsresol(3)]));
    bytes.extend(opb(true, 1, 1_500, b"old", 50));
    let (frames, reader) = read_ok(bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, b"old");
    assert_eq!(
        (frames[0].ts_ns, frames[0].link_type),
        (1_500_000_000, RAW_IP)
    );
    assert_eq!(frames[0].orig_len, 50);
    assert!(reader.stats().skipped_blocks.is_empty());
}

#[test]
fn pcapng_packet_for_unknown_interface() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    bytes.extend(epb(false, 0, 1, b"ok", 2));
    let bad = bytes.len() as u64;
    bytes.extend(epb(false, 3, 1, b"lost", 4));
    let (frames, error) = read_err(bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(error.offset, Some(bad));
    let text = error.to_string();
    assert!(text.contains(&format!("byte {bad}")), "{text}");
    assert!(
        text.contains("interface 3") && text.contains("1 interface"),
        "{text}"
    );
}

#[test]
fn pcapng_caplen_beyond_block() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    let bad = bytes.len() as u64;
    bytes.extend(epb_raw(false, 0, 1, 500, b"short", 500));
    bytes.extend(epb(false, 0, 1, b"never read", 10));
    let (frames, error) = read_err(bytes);
    assert!(frames.is_empty());
    assert_eq!(error.offset, Some(bad));
    let CaptureErrorKind::Corrupt(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("500 captured bytes"), "{message}");
}

#[test]
fn pcapng_block_length_absurd_or_unaligned() {
    for (len, needle) in [
        (0x7fff_fff0_u32, "2147483632"),
        (30, "multiple of 4"),
        (8, "at least 12"),
    ] {
        let mut bytes = shb(false);
        bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
        let bad = bytes.len() as u64;
        let mut block = epb(false, 0, 1, b"data", 4);
        block[4..8].copy_from_slice(&len.to_le_bytes());
        bytes.extend(block);
        let (frames, error) = read_err(bytes);
        assert!(frames.is_empty());
        assert_eq!(error.offset, Some(bad));
        let CaptureErrorKind::Corrupt(message) = &error.kind else {
            panic!("{error:?}")
        };
        assert!(message.contains(needle), "{message}");
    }
}

#[test]
fn pcapng_malformed_statistics_block_is_skipped() {
    // An interface statistics block must be at least 24 bytes; this one has 16.
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    bytes.extend(ng_block(false, 5, &[0, 0, 0, 0]));
    bytes.extend(epb(false, 0, 1, b"after", 5));
    let (frames, reader) = read_ok(bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(reader.stats().skipped_blocks.get(&5), Some(&1));
}

#[test]
fn pcapng_bad_byte_order_magic_in_later_section() {
    let mut bytes = shb(false);
    let bad = bytes.len() as u64;
    let mut second = shb(false);
    second[8..12].copy_from_slice(&[1, 2, 3, 4]);
    bytes.extend(second);
    let (_, error) = read_err(bytes);
    assert_eq!(error.offset, Some(bad));
    let CaptureErrorKind::Corrupt(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("byte-order"), "{message}");
}

#[test]
fn pcapng_timestamp_beyond_2262() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[tsresol(9)]));
    bytes.extend(epb(false, 0, u64::MAX, b"late", 4));
    let (_, error) = read_err(bytes);
    assert!(
        matches!(error.kind, CaptureErrorKind::Corrupt(_)),
        "{error:?}"
    );
}

#[test]
fn pcapng_truncated_in_section_header() {
    let error = open_err(shb(false)[..20].to_vec());
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    assert_eq!(error.offset, Some(0));
    let error = open_err(shb(false)[..6].to_vec());
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
}

#[test]
fn pcapng_truncated_in_block_header_and_body() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, ETHERNET as u16, 0, &[]));
    bytes.extend(epb(false, 0, 1, b"whole", 5));
    let cut = bytes.len();
    bytes.extend(epb(false, 0, 2, b"cut short", 9));
    for keep in [cut + 5, cut + 10, cut + 40] {
        let (frames, error) = read_err(bytes[..keep].to_vec());
        assert_eq!(frames.len(), 1, "keeping {keep} bytes");
        assert!(
            matches!(error.kind, CaptureErrorKind::Truncated),
            "{error:?}"
        );
        assert_eq!(error.offset, Some(cut as u64));
    }
}

// ---------------------------------------------------------------------------------------------
// Compression.

#[test]
fn gzip_input() {
    let plain = simple_pcap(&[b"alpha", b"beta"]);
    let (expected, _) = read_ok(plain.clone());
    let compressed = gzip(&plain);
    let (frames, reader) = read_ok(compressed.clone());
    assert_eq!(reader.compression(), Compression::Gzip);
    assert_eq!(frames, expected);
    assert_eq!(reader.bytes_read(), compressed.len() as u64);
    assert_eq!(reader.size(), Some(compressed.len() as u64));
    assert_eq!(read_trickled(compressed), expected);
}

#[test]
fn gzip_several_members() {
    let plain = simple_pcap(&[b"alpha", b"beta", b"gamma"]);
    let (expected, _) = read_ok(plain.clone());
    let mut compressed = gzip(&plain[..30]);
    compressed.extend(gzip(&plain[30..]));
    let (frames, _) = read_ok(compressed);
    assert_eq!(frames, expected);
}

#[test]
fn gzip_truncated() {
    let payloads: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().repeat(50)).collect();
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let compressed = gzip(&simple_pcap(&payloads));
    let (frames, error) = read_err(compressed[..compressed.len() / 2].to_vec());
    assert!(frames.len() < 200);
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    let expected_offset = 24 + frames.len() as u64 * (16 + 200);
    assert_eq!(error.offset, Some(expected_offset));
}

#[test]
fn gzip_damaged() {
    let mut compressed = gzip(&simple_pcap(&[b"alpha", b"beta"]));
    let middle = compressed.len() / 2;
    compressed[middle] ^= 0xff;
    compressed[middle + 1] ^= 0xff;
    let error = match reader_over(compressed) {
        Err(error) => error,
        Ok(mut reader) => drain(&mut reader).1.expect("damage should be noticed"),
    };
    assert!(
        matches!(
            error.kind,
            CaptureErrorKind::Read(_) | CaptureErrorKind::Corrupt(_)
        ),
        "{error:?}"
    );
}

/// `testdata/sample.pcap.zst` is `simple_pcap(&[b"zstd one", b"zstd two"])` compressed by the
/// `zstd` command-line tool with `--check` (so it carries a content checksum).
#[test]
fn zstd_input_from_the_command_line_tool() {
    let compressed = include_bytes!("testdata/sample.pcap.zst").to_vec();
    let (expected, _) = read_ok(simple_pcap(&[b"zstd one", b"zstd two"]));
    let (frames, reader) = read_ok(compressed.clone());
    assert_eq!(reader.compression(), Compression::Zstd);
    assert_eq!(frames, expected);
    assert_eq!(reader.bytes_read(), compressed.len() as u64);
    assert_eq!(read_trickled(compressed), expected);
}

#[test]
fn zstd_several_frames_and_a_skippable_frame() {
    let plain = simple_pcap(&[b"alpha", b"beta", b"gamma"]);
    let (expected, _) = read_ok(plain.clone());
    // A skippable frame first, as pzstd writes: magic 0x184d2a50, length, content.
    let mut compressed = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
    compressed.extend(zstd(&plain[..30]));
    compressed.extend(zstd(&plain[30..]));
    let (frames, reader) = read_ok(compressed);
    assert_eq!(reader.compression(), Compression::Zstd);
    assert_eq!(frames, expected);
}

#[test]
fn zstd_damaged_checksum() {
    let mut compressed = include_bytes!("testdata/sample.pcap.zst").to_vec();
    let last = compressed.len() - 1;
    compressed[last] ^= 0xff;
    let error = match reader_over(compressed) {
        Err(error) => error,
        Ok(mut reader) => drain(&mut reader).1.expect("damage should be noticed"),
    };
    let CaptureErrorKind::Read(inner) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(inner.to_string().contains("checksum"), "{inner}");
}

#[test]
fn zstd_truncated() {
    let compressed = zstd(&simple_pcap(&[b"alpha", b"beta"]));
    let error = match reader_over(compressed[..compressed.len() - 3].to_vec()) {
        Err(error) => error,
        Ok(mut reader) => drain(&mut reader).1.expect("the cut should be noticed"),
    };
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
}

#[test]
fn compressed_pcapng() {
    let mut plain = shb(false);
    plain.extend(idb(false, ETHERNET as u16, 0, &[]));
    plain.extend(epb(false, 0, 1, b"inside", 6));
    let (expected, _) = read_ok(plain.clone());
    for compressed in [gzip(&plain), zstd(&plain)] {
        let (frames, reader) = read_ok(compressed);
        assert_eq!(reader.format(), Format::PcapNg);
        assert_eq!(frames, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Opening and errors.

#[test]
fn empty_input() {
    let error = open_err(Vec::new());
    let CaptureErrorKind::UnknownFormat { magic } = &error.kind else {
        panic!("{error:?}")
    };
    assert!(magic.is_empty());
    assert!(error.to_string().contains("empty"), "{error}");
    // Compressed nothing is empty too.
    let error = open_err(gzip(&[]));
    assert!(matches!(&error.kind, CaptureErrorKind::UnknownFormat { magic } if magic.is_empty()));
}

#[test]
fn wrong_magic() {
    let error = open_err(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec());
    let CaptureErrorKind::UnknownFormat { magic } = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(magic, b"MZ\x90\x00\x03\x00\x00\x00\x04\x00");
    let text = error.to_string();
    assert!(text.starts_with("test.pcap: byte 0: "), "{text}");
    assert!(text.contains("4d 5a 90 00"), "{text}");
    assert!(text.contains("pcap and pcapng"), "{text}");
    // Text, and bzip2, are named.
    assert!(
        open_err(b"12:00:01.000 IP a > b".to_vec())
            .to_string()
            .contains("text")
    );
    assert!(
        open_err(b"BZh91AY&SY".to_vec())
            .to_string()
            .contains("bzip2")
    );
}

#[test]
fn open_files_and_errors() {
    let plain = simple_pcap(&[b"on disk"]);
    let path =
        std::env::temp_dir().join(format!("tcplife-capture-test-{}.pcap", std::process::id()));
    std::fs::write(&path, gzip(&plain)).unwrap();
    let name = path.to_str().unwrap();
    // Compressed: streamed even when mapping is asked for.
    let mut reader = CaptureReader::open(name, READ_MAP).unwrap();
    assert!(!reader.reads_in_place());
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(reader.size(), Some(size));
    assert_eq!(reader.compression(), Compression::Gzip);
    let (frames, error) = drain(&mut reader);
    assert!(error.is_none());
    assert_eq!(frames.len(), 1);
    assert_eq!(reader.bytes_read(), size);
    std::fs::remove_file(&path).unwrap();

    let Err(error) = CaptureReader::open(name, READ_MAP) else {
        panic!("the file is gone")
    };
    assert!(matches!(error.kind, CaptureErrorKind::Open(_)), "{error:?}");
    assert_eq!(error.offset, None);
    assert!(
        error
            .to_string()
            .starts_with(&format!("{name}: cannot open")),
        "{error}"
    );

    let directory = std::env::temp_dir();
    let Err(error) = CaptureReader::open(directory.to_str().unwrap(), READ_MAP) else {
        panic!()
    };
    assert!(matches!(error.kind, CaptureErrorKind::Open(_)), "{error:?}");
}

/// A regular uncompressed file is mapped and read in place when asked, with the same frames,
/// offsets and end as when streamed; an empty one is streamed (there is nothing to map) and
/// fails the same way.
#[test]
fn plain_files_are_mapped_when_asked() {
    let mut bytes = simple_pcap(&[b"first", b"second"]);
    bytes.extend_from_slice(&pcap_record(false, 3, 0, b"cut")[..10]);
    let path =
        std::env::temp_dir().join(format!("tcplife-mapped-test-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let name = path.to_str().unwrap();
    let mut mapped = CaptureReader::open(name, READ_MAP).unwrap();
    let mut streamed = CaptureReader::open(name, ReadMode::default()).unwrap();
    assert!(mapped.reads_in_place());
    assert!(!streamed.reads_in_place());
    let (frames, error) = drain(&mut mapped);
    assert_eq!(frames.len(), 2);
    let error = error.expect("the last record is cut short");
    assert!(
        matches!(error.kind, CaptureErrorKind::Truncated),
        "{error:?}"
    );
    let (streamed_frames, streamed_error) = drain(&mut streamed);
    assert_eq!(frames, streamed_frames);
    assert_eq!(
        Some(error.to_string()),
        streamed_error.map(|e| e.to_string())
    );
    assert_eq!(mapped.bytes_read(), frames[1].offset + 16 + 6);

    std::fs::write(&path, b"").unwrap();
    let mapped = CaptureReader::open(name, READ_MAP).map(|_| ()).unwrap_err();
    let streamed = CaptureReader::open(name, ReadMode::default())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(mapped.to_string(), streamed.to_string());
    std::fs::remove_file(&path).unwrap();
}

/// A reader that fails part way, as a disk or network file system can.
struct Failing(io::Cursor<Vec<u8>>);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("the disk caught fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn read_errors_keep_their_message() {
    let mut bytes = simple_pcap(&[b"one"]);
    bytes.extend(&pcap_record(false, 1, 0, b"two")[..10]);
    for ahead in [
        None,
        Some(Sizes::DEFAULT),
        Some(Sizes { block: 5, room: 3 }),
    ] {
        let failing = Box::new(Failing(io::Cursor::new(bytes.clone())));
        let mut reader = CaptureReader::stream("flaky", failing, None, ahead).unwrap();
        let (frames, error) = drain(&mut reader);
        assert_eq!(frames.len(), 1, "{ahead:?}");
        let error = error.unwrap();
        assert!(matches!(error.kind, CaptureErrorKind::Read(_)), "{error:?}");
        assert_eq!(error.offset, Some(24 + 19), "{ahead:?}");
        assert!(
            error.to_string().contains("the disk caught fire"),
            "{error}"
        );
    }
}

/// Hands out, at each read, the next part sent to it, like a pipe from a slow writer. When
/// nothing is sent for 10 s it says so (`starved`) and ends the stream.
struct Gated {
    parts: std::sync::mpsc::Receiver<Vec<u8>>,
    starved: Arc<std::sync::atomic::AtomicBool>,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::mpsc::RecvTimeoutError;
        match self.parts.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(part) => {
                buf[..part.len()].copy_from_slice(&part);
                Ok(part.len())
            }
            Err(RecvTimeoutError::Disconnected) => Ok(0),
            Err(RecvTimeoutError::Timeout) => {
                self.starved
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(0)
            }
        }
    }
}

/// Read ahead, a frame is handed out once the read that brought it returns, not when a block
/// is full: a capture arriving slowly through a pipe is analysed as it comes.
#[test]
fn reading_ahead_hands_out_each_read_at_once() {
    let bytes = simple_pcap(&[b"first", b"second"]);
    let first_end = 24 + 16 + 5;
    let (send, parts) = std::sync::mpsc::channel();
    let starved = Arc::default();
    send.send(bytes[..first_end].to_vec()).unwrap();
    let gated = Box::new(Gated {
        parts,
        starved: Arc::clone(&starved),
    });
    let mut reader = CaptureReader::stream("-", gated, None, Some(Sizes::DEFAULT)).unwrap();
    let first = reader.next_frame().unwrap().unwrap();
    assert_eq!(first.data, b"first");
    // Had the first frame waited for more bytes, it would have come only once the wait for
    // them gave up.
    assert!(!starved.load(std::sync::atomic::Ordering::Relaxed));
    send.send(bytes[first_end..].to_vec()).unwrap();
    drop(send);
    let second = reader.next_frame().unwrap().unwrap();
    assert_eq!(second.data, b"second");
    assert!(reader.next_frame().unwrap().is_none());
}

/// A file still being written: until a read past its start meets its end at `visible` bytes,
/// that is all there is of it; after, all of `bytes` is. (Recognising the capture reads from
/// the start, and must not make it grow.)
struct Growing {
    bytes: Vec<u8>,
    visible: usize,
    grown: std::sync::atomic::AtomicBool,
}

impl super::ahead::Positioned for Growing {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        let end = if self.grown.load(SeqCst) {
            self.bytes.len()
        } else {
            self.visible
        };
        let rest = self.bytes[..end].get(offset as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        if n < buf.len() && offset > 0 {
            self.grown.store(true, SeqCst);
        }
        Ok(n)
    }
}

/// Read at positions, a block cut short by the end of the file ends the reading, even when the
/// file has grown by the time a later block is read: what is read is the file as it was at
/// some moment (at least up to the end first met), never with a gap. Which moment depends on
/// how the reading threads interleave.
#[test]
fn reading_at_positions_stops_at_the_first_end_met() {
    let records: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
    let bytes = simple_pcap(&records.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let (all, _, _) = read_every_way(bytes.clone());
    for visible in [24, 24 + 16 + 10, 300, 301, 555, bytes.len() - 1] {
        let (at_least, _, _) = read_every_way(bytes[..visible].to_vec());
        for sizes in AHEAD_SIZES {
            let growing = Arc::new(Growing {
                bytes: bytes.clone(),
                visible,
                grown: Default::default(),
            });
            let Ok(AtPositions::Reading(mut reader)) =
                CaptureReader::positioned("growing.pcap", growing, None, (sizes, true))
            else {
                panic!("{visible} bytes visible: not read at positions")
            };
            let (frames, error) = drain(&mut reader);
            let case = format!("{visible} bytes visible, {sizes:?}");
            assert!(frames.len() >= at_least.len(), "{case}");
            assert_eq!(frames, all[..frames.len()], "{case}");
            if let Some(error) = error {
                assert!(
                    matches!(error.kind, CaptureErrorKind::Truncated),
                    "{case}: {error}"
                );
            }
        }
    }
}

/// A regular file is read ahead when its first records are large (see `ahead::LARGE_RECORDS`):
/// judged from their lengths in pcap of either byte order and pcapng of either, and not at all
/// from a file too short to hold a record.
#[test]
fn records_are_judged_large_or_small_from_their_lengths() {
    let judge = |bytes: Vec<u8>, format| large_records(&bytes, format);
    for big_endian in [false, true] {
        let pcap = |len: usize| {
            let mut bytes = pcap_header(0xa1b2_c3d4, big_endian, 65535, ETHERNET);
            for _ in 0..10 {
                bytes.extend(pcap_record(big_endian, 1, 0, &vec![0; len]));
            }
            bytes
        };
        let format = Format::Pcap {
            nanosecond: false,
            big_endian,
        };
        assert!(judge(pcap(LARGE_RECORDS - 16), format));
        assert!(!judge(pcap(LARGE_RECORDS - 17), format));
        assert!(!judge(pcap(1500)[..24 + 15].to_vec(), format));
        let pcapng = |len: usize| {
            let mut bytes = shb(big_endian);
            bytes.extend(idb(big_endian, ETHERNET as u16, 65535, &[]));
            for _ in 0..10 {
                bytes.extend(epb(big_endian, 0, 1, &vec![0; len], len as u32));
            }
            bytes
        };
        let judge_ng = |bytes: Vec<u8>| large_records(&bytes, Format::PcapNg);
        assert!(judge_ng(pcapng(1500)), "big-endian: {big_endian}");
        assert!(!judge_ng(pcapng(200)), "big-endian: {big_endian}");
    }
}

#[test]
fn display_formats() {
    let error = |offset, kind| CaptureError::new("cap.pcap", offset, kind);
    assert_eq!(
        error(Some(4096), CaptureErrorKind::Truncated).to_string(),
        "cap.pcap: byte 4096: the capture ends inside a record: it was probably cut short while \
         being written or copied; everything before this offset was analysed"
    );
    assert_eq!(
        error(
            Some(40),
            CaptureErrorKind::Corrupt("a record claims 9 bytes".into())
        )
        .to_string(),
        "cap.pcap: byte 40: a record claims 9 bytes: the capture is damaged here; everything \
         before this offset was analysed"
    );
    assert!(
        CaptureError::new("-", None, CaptureErrorKind::Read(io::Error::other("boom")))
            .to_string()
            .starts_with("standard input: reading failed: boom")
    );
}

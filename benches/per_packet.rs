//! Micro-benchmark of the per-packet path: `decode` then `FlowTable`, on frames held in memory.
//!
//! `cargo bench --bench per_packet` runs it on testdata/kernel/many-connections.pcap (2,500
//! kernel packets, 250 short HTTP-like connections). Its frames are laid end to end
//! `REPEAT` times, each copy 10 minutes after the one before (past TIME-WAIT, linger and the
//! idle timeout), so the table sees 2,000 connections open, close, expire and be swept, as on a
//! long capture. `TCPLIFE_BENCH_CAPTURE=FILE` benchmarks another capture the same way (keep it
//! small: it is held in memory `REPEAT` times over).
//!
//! - `decode`: link, IP and TCP header parsing alone;
//! - `decode_track`: the same plus both endpoints' state machines in a fresh `FlowTable`, every
//!   finished connection taken (what `analyze` does per packet before detection and output);
//! - `analyze_jsonl`: the whole pipeline on the file, JSON lines written to `io::sink()`.
//!
//! Throughput is reported per frame; compare runs of the same build on a quiet machine, or use
//! bench/README.md's callgrind recipe for counts that do not depend on the load.

#![allow(
    clippy::expect_used,
    reason = "a benchmark whose capture cannot be read has nothing to measure: stop at once"
)]

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use std::io;
use tcplife::analyze::{NoProgress, Settings, analyze};
use tcplife::capture::{CaptureReader, ReadMode};
use tcplife::decode::{Decoded, decode};
use tcplife::report::json::JsonLines;
use tcplife::track::{At, Config, FlowTable};

/// Copies of the capture laid end to end.
const REPEAT: i64 = 8;
/// Capture time between the starts of two copies.
const COPY_GAP_NS: i64 = 600 * 1_000_000_000;

fn main() {
    divan::main();
}

fn capture_path() -> String {
    std::env::var("TCPLIFE_BENCH_CAPTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/kernel/many-connections.pcap"
        )
        .to_owned()
    })
}

/// One frame of the in-memory sequence; its bytes are `data[start..end]` of [`Frames::data`].
struct FrameAt {
    link_type: u32,
    orig_len: u32,
    ts_ns: i64,
    start: usize,
    end: usize,
}

/// The capture's frames, read once, repeated `REPEAT` times with shifted timestamps.
struct Frames {
    data: Vec<u8>,
    frames: Vec<FrameAt>,
}

impl Frames {
    fn load() -> Frames {
        let path = capture_path();
        let mut reader =
            CaptureReader::open(&path, ReadMode::default()).expect("open the benchmark capture");
        let mut data = Vec::new();
        let mut once = Vec::new();
        let mut first_ts = None;
        while let Some(frame) = reader.next_frame().expect("read the benchmark capture") {
            let start = data.len();
            data.extend_from_slice(frame.data);
            first_ts.get_or_insert(frame.ts_ns);
            once.push(FrameAt {
                link_type: frame.link_type,
                orig_len: frame.orig_len,
                ts_ns: frame.ts_ns,
                start,
                end: data.len(),
            });
        }
        let span = once
            .last()
            .map_or(0, |f| f.ts_ns - first_ts.unwrap_or(f.ts_ns));
        let gap = COPY_GAP_NS.max(span + COPY_GAP_NS);
        let frames = (0..REPEAT)
            .flat_map(|copy| {
                once.iter().map(move |f| FrameAt {
                    ts_ns: f.ts_ns + copy * gap,
                    ..*f
                })
            })
            .collect();
        Frames { data, frames }
    }

    fn iter(&self) -> impl Iterator<Item = (&FrameAt, &[u8])> {
        self.frames
            .iter()
            .map(|f| (f, self.data.get(f.start..f.end).unwrap_or(&[])))
    }

    fn bytes(&self) -> usize {
        self.frames.iter().map(|f| f.end - f.start).sum()
    }
}

fn frames() -> &'static Frames {
    static FRAMES: std::sync::OnceLock<Frames> = std::sync::OnceLock::new();
    FRAMES.get_or_init(Frames::load)
}

#[divan::bench]
fn decode_only(bencher: Bencher) {
    let frames = frames();
    bencher
        .counter(ItemsCount::new(frames.frames.len()))
        .bench(|| {
            let mut tcp = 0u64;
            for (f, bytes) in frames.iter() {
                if let Decoded::Tcp(seg) = decode(f.link_type, bytes, f.orig_len) {
                    tcp += u64::from(black_box(&seg).payload_len > 0);
                }
            }
            tcp
        });
}

#[divan::bench]
fn decode_track(bencher: Bencher) {
    let frames = frames();
    bencher
        .counter(ItemsCount::new(frames.frames.len()))
        .bench(|| {
            let mut table = FlowTable::new(Config::default());
            let mut finished = 0usize;
            for (packet, (f, bytes)) in (1u64..).zip(frames.iter()) {
                if let Decoded::Tcp(seg) = decode(f.link_type, bytes, f.orig_len) {
                    table.on_segment(&seg, At::packet(f.ts_ns, packet));
                    finished += table.take_finished().map(black_box).count();
                }
            }
            table.finish_all();
            finished += table.take_finished().map(black_box).count();
            (finished, table.stats().connections)
        });
}

#[divan::bench]
fn analyze_jsonl(bencher: Bencher) {
    let path = capture_path();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let paths = [path];
    bencher.counter(BytesCount::new(bytes)).bench(|| {
        let mut sink = JsonLines::new(io::sink());
        analyze(&paths, Settings::default(), &mut sink, &mut NoProgress)
            .expect("io::sink never fails")
            .summary
            .connections
    });
}

#[divan::bench]
fn frame_bytes_held(bencher: Bencher) {
    // Not a measurement of tcplife: how long walking the in-memory frames takes, to subtract.
    let frames = frames();
    bencher
        .counter(BytesCount::new(frames.bytes()))
        .bench(|| frames.iter().map(|(_, b)| b.len()).sum::<usize>());
}

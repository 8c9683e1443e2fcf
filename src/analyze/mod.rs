//! The pipeline: captures → frames → segments → connections → records → a sink, in one pass.
//!
//! The reader (this module) decodes every frame and deals the segments out to shares of the
//! tracking by their 4-tuple ([`shard`]), inline or on worker threads ([`pool`]); it takes the
//! finished records back in a fixed order and keeps the run-wide views (summary, state peaks,
//! SYN-flood episodes) itself.

mod peaks;
mod pool;
mod shard;

use crate::capture::{
    CaptureError, CaptureErrorKind, CaptureReader, Compression, Format, Frame, ReadMode,
};
use crate::decode::{Decoded, Segment, SkipReason, decode};
use crate::detect::{Anomaly, Details, DetectConfig, FloodDetector, Kind, capture_anomalies};
use crate::report::record::{ConnectionRecord, Moment};
use crate::report::summary::Summary;
use crate::report::text::{Digest, Digester};
use crate::track::table::{LateReset, SweepSchedule};
use crate::track::{At, Config};
use peaks::PeakCounter;
use pool::Pool;
use shard::{Batch, Header, Item, Shard, Split, Taken};

/// Everything that tunes an analysis.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub track: Config,
    pub detect: DetectConfig,
    /// Check IPv4 header and TCP checksums as Zeek does without `-C`: a packet with a bad IP
    /// checksum is dropped before anything sees it; one with a bad TCP checksum reaches only
    /// the Zeek view (as `C`/`c` in its history). Off by default: captures taken on a sending
    /// host carry unfinished checksums on every outgoing packet (checksum offload).
    pub verify_checksums: bool,
    /// Threads tracking connections, the reading thread one of them (0 or 1: all on the
    /// reading thread); see [`Split`]. The output is the same for any number, unless the flow
    /// table fills up: each thread then holds its part of `track.max_connections` and evicts
    /// on its own.
    pub threads: usize,
    /// How capture files are read: mapped in place, or streamed.
    pub read: ReadMode,
}
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IoSlice};
use std::ops::Range;

/// Turns a record into the bytes a sink writes for it; run on the tracking threads.
pub type Encoder = fn(&mut ConnectionRecord, &mut Vec<u8>) -> io::Result<()>;

/// What a sink takes of each finished connection. What is made of a record on the tracking
/// threads is made on the thread that finished it, where the record was made and is dropped:
/// a record handed whole to the reading thread is freed there, away from the allocator's cache
/// of the thread that made it, and read there once more.
#[derive(Clone)]
pub enum Takes {
    /// The record, handed to [`Sink::connection`].
    Records,
    /// Its bytes, made by the encoder and handed to [`Sink::encoded`].
    Bytes(Encoder),
    /// Its digest, made by one copy of the digester per tracking thread and handed to
    /// [`Sink::digest`].
    Digests(Digester),
}

/// Where finished records go.
pub trait Sink {
    /// One finished connection, in the order connections finish (ties in id order).
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()>;
    /// How the sink takes the records: whole (the default, to [`Sink::connection`]), or as
    /// what the tracking threads make of them.
    fn takes(&self) -> Takes {
        Takes::Records
    }
    /// The bytes [`Takes::Bytes`]' encoder made of one or more finished connections, in order,
    /// in pieces (as they lie in the buffers the records were encoded in, so that they can be
    /// written without being copied together first; the sink may advance the slices). A sink
    /// that gives an encoder must take them: by default they are refused, never dropped.
    fn encoded(&mut self, _pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        Err(io::Error::other(
            "encoded records for a sink that has no encoder",
        ))
    }
    /// The digest of one finished connection, in the order connections finish, for a sink that
    /// takes [`Takes::Digests`]: by default refused, never dropped.
    fn digest(&mut self, _digest: Digest) -> io::Result<()> {
        Err(io::Error::other("a digest for a sink that takes none"))
    }
    /// The run is over.
    fn finish(&mut self, report: &RunReport) -> io::Result<()>;
    /// Told each packet's capture time before it is analysed (the first call gives the
    /// capture's start); returning false ends the current input there, as if it ended.
    fn frame(&mut self, _ts_ns: i64) -> bool {
        true
    }
}

/// Told how far reading has got, for a progress bar.
pub trait Progress {
    fn start_file(&mut self, name: &str, size: Option<u64>);
    /// Bytes of the current file read so far.
    fn advance(&mut self, bytes_read: u64);
    fn finish(&mut self);
}

/// No progress reporting.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start_file(&mut self, _: &str, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// How often (in frames) the progress bar hears from the reader.
const PROGRESS_EVERY: u64 = 4096;

/// What the run found: per input and overall.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub inputs: Vec<InputStats>,
    pub summary: Summary,
}

impl RunReport {
    /// The first input error, if any input could not be read to its end.
    pub fn first_error(&self) -> Option<&InputError> {
        self.inputs.iter().find_map(|i| i.error.as_ref())
    }
}

/// Statistics of one input file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputStats {
    /// The file as named on the command line (`-` for standard input).
    pub file: String,
    /// "pcap" or "pcapng"; null when the file could not be recognised.
    pub format: Option<&'static str>,
    /// For pcap: "microsecond" or "nanosecond".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_resolution: Option<&'static str>,
    /// For pcap: "little" or "big".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_order: Option<&'static str>,
    pub compression: Option<&'static str>,
    pub link_types: BTreeSet<u32>,
    /// Number of this input's first packet in the run's numbering (packets are numbered from 1
    /// across all inputs, in order).
    pub first_packet_number: u64,
    pub packets: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    pub tcp_packets: u64,
    /// With `--verify-checksums`: TCP packets dropped for a bad checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_checksums: Option<BadChecksums>,
    /// Packets cut short by the snapshot length.
    pub truncated_packets: u64,
    /// Well-formed packets that are not TCP, by reason.
    pub not_tcp: BTreeMap<&'static str, u64>,
    /// Packets that could not be decoded, by reason.
    pub undecodable: BTreeMap<&'static str, u64>,
    pub first: Option<Moment>,
    pub last: Option<Moment>,
    /// Packets whose timestamp is earlier than the packet before them (in this run).
    pub timestamps_backwards: u64,
    pub first_backwards_packet: Option<u64>,
    #[serde(skip)]
    first_backwards: Option<At>,
    #[serde(skip)]
    first_truncated: Option<At>,
    /// pcapng sections and interfaces seen, and blocks passed over by type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcapng: Option<crate::capture::ReaderStats>,
    pub error: Option<InputError>,
}

/// Packets dropped for a bad checksum (`--verify-checksums`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BadChecksums {
    /// Bad IPv4 header checksum: dropped before any connection saw them.
    pub ip: u64,
    /// Bad TCP checksum: seen only as `C`/`c` in the Zeek history.
    pub tcp: u64,
}

/// Why an input stopped before its end.
#[derive(Debug, Clone, Serialize)]
pub struct InputError {
    /// "open", "unknown_format", "truncated", "corrupt" or "read".
    pub kind: &'static str,
    /// Byte offset (in the decompressed stream) where the damage starts.
    pub offset: Option<u64>,
    pub message: String,
}

impl From<&CaptureError> for InputError {
    fn from(e: &CaptureError) -> Self {
        InputError {
            kind: match e.kind {
                CaptureErrorKind::Open(_) => "open",
                CaptureErrorKind::UnknownFormat { .. } => "unknown_format",
                CaptureErrorKind::Truncated => "truncated",
                CaptureErrorKind::Corrupt(_) => "corrupt",
                CaptureErrorKind::Read(_) => "read",
            },
            offset: e.offset,
            message: e.to_string(),
        }
    }
}

impl InputStats {
    fn new(file: &str, first_packet_number: u64) -> Self {
        InputStats {
            file: file.to_owned(),
            first_packet_number,
            ..InputStats::default()
        }
    }

    fn describe(&mut self, reader: &CaptureReader) {
        match reader.format() {
            Format::Pcap {
                nanosecond,
                big_endian,
            } => {
                self.format = Some("pcap");
                self.timestamp_resolution = Some(if nanosecond {
                    "nanosecond"
                } else {
                    "microsecond"
                });
                self.byte_order = Some(if big_endian { "big" } else { "little" });
            }
            Format::PcapNg => self.format = Some("pcapng"),
        }
        self.compression = Some(match reader.compression() {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        });
    }

    fn count_frame(&mut self, frame: &Frame<'_>, at: At) {
        self.packets += 1;
        self.captured_bytes += frame.data.len() as u64;
        self.wire_bytes += u64::from(frame.orig_len);
        if (frame.data.len() as u64) < u64::from(frame.orig_len) {
            self.truncated_packets += 1;
            self.first_truncated.get_or_insert(at);
        }
        // A capture nearly always has one link type: when it is the highest held, the tree
        // search per frame is skipped.
        if self.link_types.last() != Some(&frame.link_type) {
            self.link_types.insert(frame.link_type);
        }
        self.first.get_or_insert(at.into());
        self.last = Some(at.into());
    }

    fn count_skip(&mut self, reason: SkipReason) {
        let map = if reason.is_undecodable() {
            &mut self.undecodable
        } else {
            &mut self.not_tcp
        };
        *map.entry(reason.as_str()).or_default() += 1;
    }
}

/// Runs the whole analysis over `paths` in order, as one timeline. An input that cannot be read
/// to its end is recorded in its [`InputStats::error`] and the run goes on with what was read;
/// only a failing sink stops it.
pub fn analyze(
    paths: &[String],
    settings: Settings,
    sink: &mut dyn Sink,
    progress: &mut dyn Progress,
) -> io::Result<RunReport> {
    let shares = settings.threads.max(1);
    let takes = sink.takes();
    std::thread::scope(|scope| {
        let pool = Pool::start(scope, shares, move |split: Split, i| {
            let config = Config {
                max_connections: split.part_of(i, settings.track.max_connections).max(1),
                ..settings.track
            };
            Shard::new(config, settings.detect, takes.clone())
        });
        let mut run = Run {
            pool,
            sweeps: SweepSchedule::default(),
            now: None,
            verify_checksums: settings.verify_checksums,
            read: settings.read,
            floods: FloodDetector::default(),
            state_peaks: PeakCounter::start(scope, shares > 1)?,
            batch: Batch::default(),
            pieces: Vec::new(),
            peak_held: 0,
            packets: 0,
            last_ts: None,
        };
        let inputs = run.read_all(paths, sink, progress)?;
        run.finish(inputs, &settings.detect, sink)
    })
}

struct Run<'scope> {
    pool: Pool<'scope>,
    sweeps: SweepSchedule,
    /// The capture clock: the latest TCP segment's time.
    now: Option<i64>,
    verify_checksums: bool,
    read: ReadMode,
    floods: FloodDetector,
    state_peaks: PeakCounter<'scope>,
    /// Finished connections on their way out (kept to use its room again).
    batch: Batch,
    /// Where a batch's encoded records lie (buffer, bytes), runs joined: kept between batches.
    pieces: Vec<(usize, Range<usize>)>,
    /// Most connections held at a sweep or at the end.
    peak_held: usize,
    packets: u64,
    last_ts: Option<i64>,
}

impl Run<'_> {
    fn read_all(
        &mut self,
        paths: &[String],
        sink: &mut dyn Sink,
        progress: &mut dyn Progress,
    ) -> io::Result<Vec<InputStats>> {
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            let mut stats = InputStats::new(path, self.packets + 1);
            match CaptureReader::open(path, self.read) {
                Ok(mut reader) => {
                    stats.describe(&reader);
                    progress.start_file(path, reader.size());
                    let result = self.read_file(&mut reader, &mut stats, sink, progress);
                    if reader.format() == Format::PcapNg {
                        stats.pcapng = Some(reader.stats().clone());
                    }
                    if let Err(e) = result? {
                        stats.error = Some(InputError::from(&e));
                    }
                }
                Err(e) => stats.error = Some(InputError::from(&e)),
            }
            inputs.push(stats);
        }
        progress.finish();
        Ok(inputs)
    }

    /// Everything still held finishes; the run-wide views are completed and the sink told.
    fn finish(
        mut self,
        inputs: Vec<InputStats>,
        detect: &DetectConfig,
        sink: &mut dyn Sink,
    ) -> io::Result<RunReport> {
        self.start_threads(sink)?;
        self.pool.finish(self.now.unwrap_or(i64::MIN))?;
        let mut batch = std::mem::take(&mut self.batch);
        while self.pool.take(&mut batch)? {
            self.deliver(&mut batch, sink)?;
        }
        let mut table = self.pool.end()?;
        self.peak_held = self.peak_held.max(table.held_at_end);
        let mut episodes = self.floods.episodes(detect)?;
        for i in &inputs {
            episodes.extend(capture_anomalies(
                &i.file,
                i.timestamps_backwards,
                i.first_backwards,
                i.truncated_packets,
                i.first_truncated,
            ));
        }
        episodes.extend(table.late_resets.iter().map(late_reset_anomaly));
        episodes.sort_by_key(|a| (a.time_ns, a.kind));
        let mut summary = table
            .summary
            .build(self.peak_held, table.stats.evicted, episodes);
        summary.late_packets = table.stats.late_packets;
        let peaks = self.state_peaks.finish()?;
        if let Some((first, last)) = crate::states::capture_span(&inputs) {
            summary.state_peaks = peaks.summary(first, last);
        }
        let report = RunReport { inputs, summary };
        sink.finish(&report)?;
        Ok(report)
    }

    /// Reads one file to its end or its first damage. The outer result is the sink's; the
    /// inner one the capture's.
    fn read_file(
        &mut self,
        reader: &mut CaptureReader,
        stats: &mut InputStats,
        sink: &mut dyn Sink,
        progress: &mut dyn Progress,
    ) -> io::Result<Result<(), CaptureError>> {
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(Ok(())),
                Err(e) => return Ok(Err(e)),
            };
            if !sink.frame(frame.ts_ns) {
                return Ok(Ok(()));
            }
            self.packets += 1;
            let at = At::packet(frame.ts_ns, self.packets);
            stats.count_frame(&frame, at);
            self.pool.frame(frame.data.len());
            self.check_order(stats, at);
            match decode(frame.link_type, frame.data, frame.orig_len) {
                Decoded::Tcp(seg) => {
                    stats.tcp_packets += 1;
                    self.segment(&seg, at, stats)?;
                    self.catch_up(sink)?;
                }
                Decoded::Skipped(reason) => stats.count_skip(reason),
            }
            if self.packets % PROGRESS_EVERY == 0 {
                progress.advance(reader.bytes_read());
            }
        }
    }

    /// Hands a segment to its share, after a sweep of every share when one is due.
    ///
    /// `--verify-checksums`: Zeek drops a bad IPv4 header before looking the connection up,
    /// and a bad TCP checksum after (so the connection still notes it). A payload cut short
    /// by the snapshot length cannot be checked and passes, as in Zeek.
    fn segment(&mut self, seg: &Segment<'_>, at: At, stats: &mut InputStats) -> io::Result<()> {
        let mut checksum_ok = true;
        if self.verify_checksums {
            let bad = stats
                .bad_checksums
                .get_or_insert_with(BadChecksums::default);
            if !seg.ip_checksum_ok() {
                bad.ip += 1;
                return Ok(());
            }
            if seg.tcp_checksum_ok() == Some(false) {
                bad.tcp += 1;
                checksum_ok = false;
            }
        }
        let now = self.now.map_or(at.ns, |now| now.max(at.ns));
        self.now = Some(now);
        // A segment's frame always has its number.
        let packet = at.packet.unwrap_or_default();
        if self.sweeps.due(at.ns, now) {
            self.pool.give(Item::Sweep { now, point: packet })?;
        }
        self.pool.give(Item::Segment {
            seg: Header::of(seg),
            ns: at.ns,
            packet,
            now,
            checksum_ok,
        })
    }

    fn check_order(&mut self, stats: &mut InputStats, at: At) {
        if self.last_ts.is_some_and(|last| at.ns < last) {
            stats.timestamps_backwards += 1;
            stats.first_backwards_packet.get_or_insert(self.packets);
            stats.first_backwards.get_or_insert(at);
        }
        self.last_ts = Some(self.last_ts.map_or(at.ns, |last| last.max(at.ns)));
    }

    /// Takes what the shares have finished, as long as they are ahead of it, to the run-wide
    /// views and the sink.
    fn catch_up(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        // Called for every segment, and seldom behind: the batch is moved out only when used.
        if !self.pool.behind() {
            return Ok(());
        }
        if matches!(self.pool, Pool::Probing(_)) {
            return self.start_threads(sink);
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut result = Ok(());
        while result.is_ok() && self.pool.behind() {
            result = self
                .pool
                .take(&mut batch)
                .and_then(|_| self.deliver(&mut batch, sink));
        }
        self.batch = batch;
        result
    }

    /// Starts the tracking threads, if they wait for the split, and deals them what was held
    /// back.
    fn start_threads(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        for item in self.pool.start_threads()? {
            self.pool.give(item)?;
            self.catch_up(sink)?;
        }
        Ok(())
    }

    /// Finished connections, in output order, to the run-wide views and the sink. Encoded
    /// records that lie back to back in one buffer are written in one piece.
    fn deliver(&mut self, batch: &mut Batch, sink: &mut dyn Sink) -> io::Result<()> {
        for held in batch.held_at_sweeps.drain(..) {
            self.peak_held = self.peak_held.max(held);
        }
        let mut pieces = std::mem::take(&mut self.pieces);
        let mut finished = std::mem::take(&mut batch.finished);
        let mut result = Ok(());
        for f in finished.drain(..) {
            if let Some(h) = f.flood {
                result = self.floods.add(h.server, h.client, h.syn, h.failed);
            }
            result = result.and_then(|()| self.state_peaks.add(f.peaks, &batch.stays, f.now));
            match f.taken {
                Taken::Encoded(Ok((buffer, range))) => match pieces.last_mut() {
                    Some((b, r)) if *b == buffer && r.end == range.start => r.end = range.end,
                    _ => pieces.push((buffer, range)),
                },
                Taken::Encoded(Err(e)) => result = Err(e),
                Taken::Record(record) => result = result.and_then(|()| sink.connection(*record)),
                Taken::Digest(digest) => result = result.and_then(|()| sink.digest(digest)),
            }
            if result.is_err() {
                break;
            }
        }
        // What was encoded before any failure is written all the same.
        if !pieces.is_empty() {
            let mut slices: Vec<IoSlice<'_>> = pieces
                .drain(..)
                .map(|(b, r)| IoSlice::new(batch.bytes(b, r)))
                .collect();
            let written = sink.encoded(&mut slices);
            result = result.and(written);
        }
        finished.clear();
        batch.finished = finished;
        self.pieces = pieces;
        result
    }
}

/// A RST that hit a side in TIME-WAIT after its connection's record was out: reported on its
/// own, naming the connection.
fn late_reset_anomaly(r: &LateReset) -> Anomaly {
    Anomaly::new(
        Kind::TimeWaitAssassination,
        Some(r.sender.peer()),
        r.at,
        Details::LateReset {
            connection: r.connection,
            rst_sender: r.sender.name(),
        },
    )
}

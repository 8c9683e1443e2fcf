//! Records put back in key order with bounded memory: an external merge sort.
//!
//! Records arrive in the order connections finish, but the JSON document lists them by first
//! packet, and the SYN-flood detector reads handshakes by server and time. Up to a limit of
//! bytes they are held in memory; beyond it the records held are sorted and written to an
//! anonymous temporary file (a *run*), and at the end the runs are merged. Memory is the limit
//! plus one read buffer per run, whatever the capture's size; the disk holds every record
//! once. Temporary files go where `TMPDIR` says (or the system's default) and vanish when
//! closed, even if the process is killed.
//!
//! A key is `N` bytes compared as bytes: numbers in it are big-endian, signed ones through
//! [`signed`], so that byte order is number order. A record travels as a *frame*
//! ([`push_frame`]): its key, its length, its bytes; it is held in memory, written to runs and
//! read back as one, so a frame made elsewhere (on another thread) is taken as it is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, IoSlice, Read, Seek, Write};
use std::ops::Range;

/// Runs merged at once. Runs are merged in tiers: this many of one size make one of the next,
/// so that every record is written about log₁₂₈ (runs) + 1 times and the files open at a time
/// stay few however large the capture.
const FAN_IN: usize = 128;

/// Each run's read and write buffer.
const RUN_BUFFER: usize = 64 << 10;

/// Records written from memory in one `writev`: one piece each, within the kernel's limit of
/// 1,024 pieces a call.
const RECORDS_PER_WRITE: usize = 1024;

/// Appends the frame of the record that `encode` writes, under `key`: the key (`N` bytes), the
/// record's length (8 bytes, little-endian), the record.
pub fn push_frame<const N: usize>(
    key: &[u8; N],
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    out.extend_from_slice(key);
    let length_at = out.len();
    out.extend_from_slice(&[0; 8]);
    encode(out)?;
    let length = (out.len() - length_at - 8) as u64;
    if let Some(slot) = out.get_mut(length_at..length_at + 8) {
        slot.copy_from_slice(&length.to_le_bytes());
    }
    Ok(())
}

/// The key of the frame that `bytes` begin with, and the frame's whole length, once its key
/// and length are there.
fn frame_head<const N: usize>(bytes: &[u8]) -> Option<([u8; N], usize)> {
    let key = *bytes.first_chunk::<N>()?;
    let length = bytes.get(N..)?.first_chunk::<8>()?;
    let length = usize::try_from(u64::from_le_bytes(*length)).ok()?;
    Some((key, length.checked_add(N + 8)?))
}

/// The frame that `bytes` begin with, whole, and the bytes after it; `None` when it is cut short.
pub fn split_frame<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8], &[u8])> {
    let (key, whole) = frame_head::<N>(bytes)?;
    let (frame, rest) = bytes.split_at_checked(whole)?;
    Some((key, frame, rest))
}

/// The record in a frame.
pub fn record_of<const N: usize>(frame: &[u8]) -> &[u8] {
    frame.get(N + 8..).unwrap_or_default()
}

/// The bytes of a signed number that sort as the number does (the sign bit flipped).
pub fn signed(n: i64) -> [u8; 8] {
    (n ^ i64::MIN).to_be_bytes()
}

/// The number that [`signed`] made `bytes` of.
pub fn from_signed(bytes: [u8; 8]) -> i64 {
    i64::from_be_bytes(bytes) ^ i64::MIN
}

/// A key of `N` bytes: `parts` one after the other (what does not fit is dropped; the rest is
/// zero).
pub fn key<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut key = [0u8; N];
    let mut room = &mut key[..];
    for part in parts {
        let n = part.len().min(room.len());
        let (here, rest) = room.split_at_mut(n);
        here.copy_from_slice(part.get(..n).unwrap_or_default());
        room = rest;
    }
    key
}

/// Records by key, in memory and in sorted runs on disk.
pub struct SortedRecords<const N: usize> {
    limit: usize,
    /// The frames held, back to back, and each one's key and place.
    bytes: Vec<u8>,
    held: Vec<([u8; N], Range<usize>)>,
    /// Sorted runs with their tier (0: written from memory; n + 1: merged from tier n), tiers
    /// never rising along the list.
    runs: Vec<(u32, File)>,
}

impl<const N: usize> SortedRecords<N> {
    /// Holds up to `limit` bytes of records and keys in memory (at least one record, whatever
    /// its size).
    pub fn new(limit: usize) -> Self {
        SortedRecords {
            limit,
            bytes: Vec::new(),
            held: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Adds the record that `encode` writes, under `key`.
    pub fn push(
        &mut self,
        key: [u8; N],
        encode: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let start = self.bytes.len();
        push_frame(&key, &mut self.bytes, encode)?;
        self.held_one(key, start)
    }

    /// Adds the frames that `bytes` hold back to back ([`push_frame`] made them); an error
    /// when the last is cut short.
    pub fn push_frames(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let (key, frame, rest) = split_frame::<N>(bytes).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "a framed record is cut short")
            })?;
            let start = self.bytes.len();
            self.bytes.extend_from_slice(frame);
            self.held_one(key, start)?;
            bytes = rest;
        }
        Ok(())
    }

    /// The frame from `start` to the end of the bytes held is held under `key`; spills past
    /// the limit.
    fn held_one(&mut self, key: [u8; N], start: usize) -> io::Result<()> {
        self.held.push((key, start..self.bytes.len()));
        let held = self.bytes.len() + self.held.len() * size_of::<([u8; N], Range<usize>)>();
        if held >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs written to disk so far.
    #[cfg(test)]
    fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Hands every record to `each` with its key, in key order (records of equal keys in no
    /// set order).
    pub fn drain(
        mut self,
        mut each: impl FnMut(&[u8; N], &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.runs.is_empty() {
            self.sort_held();
            for (key, range) in &self.held {
                each(
                    key,
                    record_of::<N>(self.bytes.get(range.clone()).unwrap_or_default()),
                )?;
            }
            return Ok(());
        }
        self.spill()?;
        let runs = std::mem::take(&mut self.runs).into_iter();
        merge(runs.map(|(_, run)| run), |key: &[u8; N], frame| {
            each(key, record_of::<N>(frame))
        })
    }

    fn sort_held(&mut self) {
        self.held.sort_unstable_by_key(|(key, _)| *key);
    }

    /// Writes the records held as one sorted run and forgets them.
    fn spill(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.sort_held();
        let mut file = temp_file()?;
        // Straight from where the frames are held to the file: no copy into a buffer first.
        for frames in self.held.chunks(RECORDS_PER_WRITE) {
            let mut pieces: Vec<IoSlice<'_>> = frames
                .iter()
                .map(|(_, range)| IoSlice::new(self.bytes.get(range.clone()).unwrap_or_default()))
                .collect();
            crate::write_all_vectored(&mut file, &mut pieces)
                .map_err(|e| temp_error("write", &e))?;
        }
        file.rewind().map_err(|e| temp_error("rewind", &e))?;
        self.runs.push((0, file));
        self.held.clear();
        self.bytes.clear();
        self.merge_full_tiers()
    }

    /// While the last [`FAN_IN`] runs are of one tier, merges them into one of the next.
    fn merge_full_tiers(&mut self) -> io::Result<()> {
        while let Some(start) = self.runs.len().checked_sub(FAN_IN) {
            let tier = self.runs.get(start).map_or(0, |(tier, _)| *tier);
            if self.runs.last().is_none_or(|(last, _)| *last != tier) {
                return Ok(());
            }
            let runs = self.runs.split_off(start).into_iter();
            let mut out = RunWriter::new()?;
            merge(runs.map(|(_, run)| run), |_: &[u8; N], frame| {
                out.put(frame)
            })?;
            self.runs.push((tier + 1, out.finish()?));
        }
        Ok(())
    }
}

/// Merges sorted runs, handing each frame to `each` with its key, in key order.
fn merge<const N: usize>(
    runs: impl Iterator<Item = File>,
    mut each: impl FnMut(&[u8; N], &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut readers: Vec<RunReader<N>> = runs.map(RunReader::new).collect();
    let mut next = BinaryHeap::with_capacity(readers.len());
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(key) = reader.advance()? {
            next.push(Reverse((key, i)));
        }
    }
    while let Some(Reverse((key, i))) = next.pop() {
        let Some(reader) = readers.get_mut(i) else {
            continue;
        };
        each(&key, reader.frame())?;
        if let Some(key) = reader.advance()? {
            next.push(Reverse((key, i)));
        }
    }
    Ok(())
}

/// A run on disk: frames back to back.
struct RunWriter {
    out: BufWriter<File>,
}

/// A new anonymous temporary file.
fn temp_file() -> io::Result<File> {
    tempfile::tempfile().map_err(|e| temp_error("create", &e))
}

impl RunWriter {
    fn new() -> io::Result<Self> {
        Ok(RunWriter {
            out: BufWriter::with_capacity(RUN_BUFFER, temp_file()?),
        })
    }

    fn put(&mut self, frame: &[u8]) -> io::Result<()> {
        self.out
            .write_all(frame)
            .map_err(|e| temp_error("write", &e))
    }

    /// The run, rewound for reading.
    fn finish(self) -> io::Result<File> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| temp_error("write", e.error()))?;
        file.rewind().map_err(|e| temp_error("rewind", &e))?;
        Ok(file)
    }
}

/// Reads a run in blocks and hands out its frames where they lie in the block, uncopied.
struct RunReader<const N: usize> {
    input: File,
    /// Bytes read and not yet handed out are `block[start..end]`.
    block: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the frame read last lies in `block`.
    frame: Range<usize>,
}

impl<const N: usize> RunReader<N> {
    fn new(file: File) -> Self {
        RunReader {
            input: file,
            block: vec![0; RUN_BUFFER],
            start: 0,
            end: 0,
            frame: 0..0,
        }
    }

    /// The frame read last.
    fn frame(&self) -> &[u8] {
        self.block.get(self.frame.clone()).unwrap_or_default()
    }

    /// Reads the next frame; its key, or `None` at the end of the run.
    fn advance(&mut self) -> io::Result<Option<[u8; N]>> {
        if !self.fill(N + 8)? {
            return Ok(None);
        }
        let head = self.block.get(self.start..self.end).unwrap_or_default();
        let (key, whole) = frame_head::<N>(head).ok_or_else(cut_run)?;
        if !self.fill(whole)? {
            return Err(cut_run());
        }
        self.frame = self.start..self.start + whole;
        self.start += whole;
        Ok(Some(key))
    }

    /// Makes `need` bytes past `start` lie in the block, reading more (the bytes left moved to
    /// its front first, and the block grown for a record larger than it); false when the run
    /// ends with none left, an error when it ends with fewer.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.block.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.block.len() < need {
            self.block.resize(need.max(RUN_BUFFER), 0);
        }
        while self.end < need {
            let room = self.block.get_mut(self.end..).unwrap_or_default();
            match self.input.read(room) {
                Ok(0) if self.end == 0 => return Ok(false),
                Ok(0) => return Err(cut_run()),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(temp_error("read", &e)),
            }
        }
        Ok(true)
    }
}

/// A run that ends inside a record.
fn cut_run() -> io::Error {
    temp_error("read", &io::ErrorKind::UnexpectedEof.into())
}

/// An error of the temporary files, saying where they are and what to do.
fn temp_error(doing: &str, e: &io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot {doing} a temporary file of sorted records in {} ({e}); set TMPDIR to a \
             writable directory with room",
            std::env::temp_dir().display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Key = (i64, u64);

    fn key_bytes((t, id): Key) -> [u8; 16] {
        key(&[&signed(t), &id.to_be_bytes()])
    }

    /// Keys in a scrambled order (a permutation of 0..n by a multiplier prime to n), with
    /// repeated times, negative ones among them, so that the id decides between them.
    fn scrambled(n: u64) -> Vec<Key> {
        (0..n)
            .map(|i| (i * 7919) % n)
            .map(|k| (i64::try_from(k / 3).unwrap_or(0) - 100, k))
            .collect()
    }

    fn text((t, id): Key) -> String {
        format!("{t}/{id}{}", "x".repeat((id % 5) as usize))
    }

    /// Pushes `keys` (each record the text of its key, of varying length) with `limit`, and
    /// returns what comes out and how many runs were written.
    fn round_trip(keys: &[Key], limit: usize) -> (Vec<String>, usize) {
        let mut records = SortedRecords::new(limit);
        for &key in keys {
            records
                .push(key_bytes(key), |out| {
                    out.extend_from_slice(text(key).as_bytes());
                    Ok(())
                })
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        let runs = records.runs();
        let mut out = Vec::new();
        records
            .drain(|key, bytes| {
                let time = from_signed(*key.first_chunk().unwrap_or(&[0; 8]));
                let record = String::from_utf8_lossy(bytes).into_owned();
                assert!(record.starts_with(&format!("{time}/")), "{record}");
                out.push(record);
                Ok(())
            })
            .unwrap_or_else(|e| unreachable!("{e}"));
        (out, runs)
    }

    fn expected(keys: &[Key]) -> Vec<String> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.into_iter().map(text).collect()
    }

    #[test]
    fn signed_numbers_sort_as_bytes() {
        let numbers = [i64::MIN, -1_000, -1, 0, 1, 255, 256, i64::MAX];
        for pair in numbers.windows(2) {
            if let [a, b] = *pair {
                assert!(signed(a) < signed(b), "{a} {b}");
                assert_eq!(from_signed(signed(a)), a);
            }
        }
    }

    #[test]
    fn records_held_in_memory_come_out_in_key_order() {
        let keys = scrambled(1000);
        let (out, runs) = round_trip(&keys, 32 << 20);
        assert_eq!(runs, 0);
        assert_eq!(out, expected(&keys));
    }

    #[test]
    fn records_spilled_to_runs_come_out_in_key_order() {
        let keys = scrambled(1000);
        let (out, runs) = round_trip(&keys, 5000);
        assert!((2..FAN_IN).contains(&runs), "{runs} runs");
        assert_eq!(out, expected(&keys));
    }

    #[test]
    fn keys_count_against_the_limit_too() {
        let mut records = SortedRecords::new(1000);
        for i in 0..100u8 {
            records
                .push([i], |_| Ok(()))
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        assert!(records.runs() > 0);
    }

    #[test]
    fn more_runs_than_are_merged_at_once_are_merged_in_tiers() {
        let keys = scrambled(40_000);
        // A few records a run, thousands of runs: runs of tier 1 are made on the way, and
        // fewer than FAN_IN of each tier are left.
        let (out, runs) = round_trip(&keys, 200);
        assert!(runs <= 3 * (FAN_IN - 1), "{runs} runs open");
        assert_eq!(out, expected(&keys));
    }

    #[test]
    fn a_record_larger_than_the_limit_is_one_run() {
        let keys = [(2, 2), (1, 1)];
        let (out, runs) = round_trip(&keys, 1);
        assert_eq!(runs, 2);
        assert_eq!(out, expected(&keys));
    }

    #[test]
    fn records_larger_than_a_read_block_come_back_whole() {
        // Records from a few bytes to over twice a block, in runs of a few each: they straddle
        // the blocks they are read in, and some need a block of their own.
        let sizes = |i: u64| (i * 37_003) as usize % (2 * RUN_BUFFER + 5000);
        let mut records = SortedRecords::new(3 * RUN_BUFFER);
        for i in 0..60u64 {
            let byte = b'a' + (i % 26) as u8;
            records
                .push(key_bytes((-(i as i64), i)), |out| {
                    out.resize(out.len() + sizes(i), byte);
                    Ok(())
                })
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        assert!(records.runs() > 10, "{} runs", records.runs());
        let mut seen = Vec::new();
        records
            .drain(|key, bytes| {
                let id = u64::from_be_bytes(
                    *key.get(8..)
                        .and_then(<[u8]>::first_chunk)
                        .unwrap_or(&[0; 8]),
                );
                let byte = b'a' + (id % 26) as u8;
                assert_eq!(bytes.len(), sizes(id), "record {id}");
                assert!(bytes.iter().all(|&b| b == byte), "record {id}");
                seen.push(id);
                Ok(())
            })
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(seen, (0..60).rev().collect::<Vec<_>>());
    }

    #[test]
    fn a_run_cut_inside_a_record_is_an_error_naming_the_temporary_files() {
        for cut in [3, 16 + 4, 16 + 8 + 50] {
            let mut file = temp_file().unwrap_or_else(|e| unreachable!("{e}"));
            let mut run = key_bytes((1, 1)).to_vec();
            run.extend_from_slice(&100u64.to_le_bytes());
            run.resize(16 + 8 + 100, b'x');
            run.truncate(cut);
            file.write_all(&run)
                .and_then(|()| file.rewind())
                .unwrap_or_else(|e| unreachable!("{e}"));
            let mut reader = RunReader::<16>::new(file);
            let Err(e) = reader.advance() else {
                panic!("a run cut at {cut} read whole")
            };
            assert!(e.to_string().contains("temporary file"), "{e}");
        }
    }

    #[test]
    fn no_records_is_nothing() {
        let (out, runs) = round_trip(&[], 1);
        assert_eq!((out.len(), runs), (0, 0));
    }
}

//! The shares of the tracking, run inline or on worker threads.
//!
//! With threads, the reader deals segments out in rounds: every share gets its part of each
//! round (sweeps go to all), works through it on its own thread, and sends back what finished
//! in chunks of at most [`CHUNK`] records, in order. The reader merges the shares' chunks of
//! the oldest round by `(point, id)`, a chunk at a time: the order a single table gives, so
//! the output does not depend on the number of threads. A few rounds are in flight, and a
//! share waits when the chunks it has sent are not taken, which bounds the memory however many
//! connections finish at once (after a pause in the capture, or at its end).

use super::shard::{Batch, Finished, Item, Shard, ShareEnd, share_of};
use crate::states::Stay;
use crate::track::table::MAX_LATE_RESETS;
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

/// Segments per round, over all shares.
const ROUND_ITEMS: usize = 1024;
/// Rounds handed out and not yet taken back.
const ROUNDS_IN_FLIGHT: usize = 4;
/// Records per chunk, sent from a share or taken by the reader (about 300 KB encoded).
const CHUNK: usize = 64;
/// Chunks a share may have sent and not yet seen taken.
const CHUNKS_QUEUED: usize = ROUNDS_IN_FLIGHT + 1;
/// Spare encode buffers kept per share: enough for the rounds in flight (a round's part takes
/// three or four); more, made while many records finished at once, are freed.
const SPARE_BUFFERS: usize = 12;

pub enum Pool<'scope> {
    Inline(Box<Inline>),
    Threads(Threads<'scope>),
}

impl<'scope> Pool<'scope> {
    /// `shares` shares, built by `make`; one share runs on the reader's thread, more run one
    /// per thread.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        shares: usize,
        make: impl Fn(usize) -> Shard,
    ) -> io::Result<Self> {
        if shares <= 1 {
            return Ok(Pool::Inline(Box::new(Inline {
                shard: make(0),
                held_at_sweeps: Vec::new(),
            })));
        }
        let shards = (0..shares).map(make).collect();
        Threads::start(scope, shards).map(Pool::Threads)
    }

    /// Hands a segment to the share its 4-tuple falls to, a sweep to every share.
    pub fn give(&mut self, item: Item) -> io::Result<()> {
        match self {
            Pool::Inline(i) => {
                i.held_at_sweeps.extend(i.shard.take(&item));
                Ok(())
            }
            Pool::Threads(t) => t.give(item),
        }
    }

    /// Whether finished records must be taken before more is given.
    pub fn behind(&self) -> bool {
        match self {
            Pool::Inline(i) => i.shard.waiting() || !i.held_at_sweeps.is_empty(),
            Pool::Threads(t) => t.in_flight > ROUNDS_IN_FLIGHT,
        }
    }

    /// The next records finished (up to a chunk's worth), in output order, into `into`
    /// (emptied first: its buffers become spare, but for those holding records still to come
    /// out); false when none were waiting.
    pub fn take(&mut self, into: &mut Batch) -> io::Result<bool> {
        match self {
            Pool::Inline(i) => {
                into.clear();
                into.held_at_sweeps.append(&mut i.held_at_sweeps);
                i.shard.produce(into, CHUNK);
                Ok(!into.finished.is_empty() || !into.held_at_sweeps.is_empty())
            }
            Pool::Threads(t) => t.take(into),
        }
    }

    /// The capture is over at `now`: every share finishes. Then [`Pool::take`] gives the rest
    /// of the records, and [`Pool::end`] what the shares say about themselves.
    pub fn finish(&mut self, now: i64) -> io::Result<()> {
        match self {
            Pool::Inline(i) => {
                i.shard.finish(now);
                Ok(())
            }
            Pool::Threads(t) => t.finish(now),
        }
    }

    /// Once every record is taken: the shares' ends, summed.
    pub fn end(self) -> io::Result<ShareEnd> {
        match self {
            Pool::Inline(mut i) => Ok(i.shard.end()),
            Pool::Threads(t) => t.end(),
        }
    }
}

pub struct Inline {
    shard: Shard,
    held_at_sweeps: Vec<usize>,
}

enum Job {
    /// A round's items, and an empty batch (with spare buffers) to answer in.
    Round(Vec<Item>, Batch),
    /// The capture is over at this time.
    Finish(i64),
}

/// A chunk of one share's answer to a job: records in order, the sweeps it passed, and with
/// the last chunk the round's emptied items, or at the end the share's end.
struct Chunk {
    batch: Batch,
    last: bool,
    items: Vec<Item>,
    end: Option<ShareEnd>,
}

struct Worker<'scope> {
    jobs: SyncSender<Job>,
    chunks: Receiver<Chunk>,
    round: Vec<Item>,
    handle: ScopedJoinHandle<'scope, ()>,
    /// Records of the oldest round received and not yet merged, and where their chunk's
    /// bytes and stays are in the batch being filled.
    queue: VecDeque<Finished>,
    place: Place,
    /// The last chunk of the oldest round has come.
    round_done: bool,
    /// Sweeps of the oldest round passed so far.
    sweeps: usize,
    end: Option<ShareEnd>,
}

pub struct Threads<'scope> {
    workers: Vec<Worker<'scope>>,
    items: usize,
    /// Rounds sent and not yet merged (the end counts as one).
    in_flight: usize,
    /// Connections held at each sweep of the oldest round, summed over the shares.
    held: Vec<usize>,
    spare: Spares,
    /// The list of stays of the batch before last, to fill again.
    spare_stays: Vec<Stay>,
}

/// Where one chunk's encoded bytes and stays lie in the batch being filled: they came with the
/// chunk and go out with its records, no byte copied.
#[derive(Debug, Clone, Default)]
struct Place {
    buffers: Range<usize>,
    stays: Range<usize>,
}

impl Place {
    /// Appends `buffers` and `stays` to `into`'s; where they went.
    fn append(into: &mut Batch, buffers: impl Iterator<Item = Vec<u8>>, stays: &[Stay]) -> Place {
        let start = (into.buffers.len(), into.stays.len());
        into.buffers.extend(buffers);
        into.stays.extend_from_slice(stays);
        Place {
            buffers: start.0..into.buffers.len(),
            stays: start.1..into.stays.len(),
        }
    }

    /// Points a record of the chunk at its bytes and stays here.
    fn rebase(&self, f: &mut Finished) {
        if let Some(Ok((buffer, _))) = &mut f.encoded {
            *buffer += self.buffers.start;
        }
        f.peaks.moved_by(self.stays.start);
    }
}

/// Emptied buffers, batches and item lists, to send again.
#[derive(Default)]
struct Spares {
    buffers: Vec<Vec<u8>>,
    batches: Vec<Batch>,
    items: Vec<Vec<Item>>,
}

impl Spares {
    /// A chunk's batch, emptied, to answer a round in again; kept only as many as can be in
    /// flight.
    fn keep_batch(&mut self, mut batch: Batch, shares: usize) {
        batch.clear();
        self.keep_buffers(batch.spare.drain(..), shares);
        if self.batches.len() < (ROUNDS_IN_FLIGHT + 1) * shares {
            self.batches.push(batch);
        }
    }

    /// Buffers whose bytes are written, emptied, up to [`SPARE_BUFFERS`] per share.
    fn keep_buffers(&mut self, buffers: impl Iterator<Item = Vec<u8>>, shares: usize) {
        for mut b in buffers {
            if self.buffers.len() >= SPARE_BUFFERS * shares {
                return;
            }
            b.clear();
            self.buffers.push(b);
        }
    }
}

impl<'scope> Threads<'scope> {
    fn start<'env>(scope: &'scope Scope<'scope, 'env>, shards: Vec<Shard>) -> io::Result<Self> {
        let workers = shards
            .into_iter()
            .enumerate()
            .map(|(i, shard)| {
                // Room for every round in flight and the end: the reader never waits to send.
                let (jobs, job_rx) = sync_channel(ROUNDS_IN_FLIGHT + 2);
                let (chunk_tx, chunks) = sync_channel(CHUNKS_QUEUED);
                let handle = std::thread::Builder::new()
                    .name(format!("tcplife-track-{i}"))
                    .spawn_scoped(scope, move || work(shard, &job_rx, &chunk_tx))?;
                Ok(Worker {
                    jobs,
                    chunks,
                    round: Vec::new(),
                    handle,
                    queue: VecDeque::new(),
                    place: Place::default(),
                    round_done: false,
                    sweeps: 0,
                    end: None,
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Threads {
            workers,
            items: 0,
            in_flight: 0,
            held: Vec::new(),
            spare: Spares::default(),
            spare_stays: Vec::new(),
        })
    }

    fn give(&mut self, item: Item) -> io::Result<()> {
        match &item {
            Item::Sweep { .. } => {
                for w in &mut self.workers {
                    w.round.push(item);
                }
            }
            Item::Segment { seg, .. } => {
                let share = share_of(seg, self.workers.len());
                if let Some(w) = self.workers.get_mut(share) {
                    w.round.push(item);
                }
            }
        }
        self.items += 1;
        if self.items >= ROUND_ITEMS {
            self.send_round()?;
        }
        Ok(())
    }

    /// Sends every share its part of the round, with an even share of the spare buffers (all
    /// of them go round, so they never pile up here).
    fn send_round(&mut self) -> io::Result<()> {
        let shares = self.workers.len();
        for (i, w) in self.workers.iter_mut().enumerate() {
            let next = self.spare.items.pop().unwrap_or_default();
            let round = std::mem::replace(&mut w.round, next);
            let mut batch = self.spare.batches.pop().unwrap_or_default();
            let buffers = &mut self.spare.buffers;
            let keep = buffers.len() - buffers.len() / (shares - i);
            batch.spare.extend(buffers.drain(keep..));
            w.jobs
                .send(Job::Round(round, batch))
                .map_err(|_| stopped())?;
        }
        self.items = 0;
        self.in_flight += 1;
        Ok(())
    }

    fn finish(&mut self, now: i64) -> io::Result<()> {
        self.send_round()?;
        for w in &self.workers {
            w.jobs.send(Job::Finish(now)).map_err(|_| stopped())?;
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Merges the oldest round's records from every share, up to a chunk.
    fn take(&mut self, into: &mut Batch) -> io::Result<bool> {
        let shares = self.workers.len();
        self.carry_over(into);
        if self.in_flight == 0 {
            return Ok(false);
        }
        while into.finished.len() < CHUNK {
            for w in &mut self.workers {
                w.refill(&mut self.held, &mut self.spare, into, shares)?;
            }
            let first = self
                .workers
                .iter_mut()
                .filter_map(|w| Some((w.queue.front()?.order(), w)))
                .min_by_key(|(order, _)| *order);
            let Some((_, w)) = first else {
                self.round_over(into);
                break;
            };
            w.move_first(into);
        }
        Ok(true)
    }

    /// Empties `into` for the next records: the buffers and stays of chunks with records
    /// still to merge stay (renumbered), the other buffers become spare.
    fn carry_over(&mut self, into: &mut Batch) {
        let shares = self.workers.len();
        let mut old = std::mem::take(&mut into.buffers);
        let old_stays = std::mem::replace(&mut into.stays, std::mem::take(&mut self.spare_stays));
        into.clear();
        self.spare.keep_buffers(into.spare.drain(..), shares);
        for w in &mut self.workers {
            let (buffers, stays) = if w.queue.is_empty() {
                (&mut [][..], &[][..])
            } else {
                let buffers = old.get_mut(w.place.buffers.clone()).unwrap_or_default();
                (
                    buffers,
                    old_stays.get(w.place.stays.clone()).unwrap_or_default(),
                )
            };
            w.place = Place::append(into, buffers.iter_mut().map(std::mem::take), stays);
        }
        self.spare_stays = old_stays;
        let used = old.into_iter().filter(|b| b.capacity() > 0);
        self.spare.keep_buffers(used, shares);
    }

    /// Every share has sent all of the oldest round, and it is all merged.
    fn round_over(&mut self, into: &mut Batch) {
        into.held_at_sweeps.append(&mut self.held);
        for w in &mut self.workers {
            w.round_done = false;
            w.sweeps = 0;
        }
        self.in_flight -= 1;
    }

    fn end(self) -> io::Result<ShareEnd> {
        let mut all = ShareEnd::default();
        for w in self.workers {
            merge_end(&mut all, w.end.ok_or_else(stopped)?);
            drop(w.jobs);
            w.handle.join().map_err(|_| stopped())?;
        }
        Ok(all)
    }
}

impl Worker<'_> {
    /// Receives this share's next chunk of the oldest round once the last one is merged; its
    /// buffers join `into`'s. The sweeps it passed add to `held`.
    fn refill(
        &mut self,
        held: &mut Vec<usize>,
        spare: &mut Spares,
        into: &mut Batch,
        shares: usize,
    ) -> io::Result<()> {
        while self.queue.is_empty() && !self.round_done {
            let mut chunk = self.chunks.recv().map_err(|_| stopped())?;
            for n in chunk.batch.held_at_sweeps.drain(..) {
                match held.get_mut(self.sweeps) {
                    Some(sum) => *sum += n,
                    None => held.push(n),
                }
                self.sweeps += 1;
            }
            self.queue.extend(chunk.batch.finished.drain(..));
            let buffers = chunk.batch.buffers.drain(..);
            self.place = Place::append(into, buffers, &chunk.batch.stays);
            spare.keep_batch(chunk.batch, shares);
            self.round_done = chunk.last;
            if chunk.last {
                spare.items.push(chunk.items);
            }
            self.end = self.end.take().or(chunk.end);
        }
        Ok(())
    }

    /// Moves the next record into `into`, pointing into its chunk's buffers there.
    fn move_first(&mut self, into: &mut Batch) {
        let Some(mut f) = self.queue.pop_front() else {
            return;
        };
        self.place.rebase(&mut f);
        into.finished.push(f);
    }
}

/// Adds one share's end to the others', keeping the first late RSTs in packet order (as a
/// single table keeps them).
fn merge_end(all: &mut ShareEnd, one: ShareEnd) {
    all.held_at_end += one.held_at_end;
    all.stats.connections += one.stats.connections;
    all.stats.evicted += one.stats.evicted;
    all.stats.late_packets += one.stats.late_packets;
    all.late_resets.extend(one.late_resets);
    all.late_resets.sort_by_key(|r| r.at.packet);
    all.late_resets.truncate(MAX_LATE_RESETS);
    all.summary.merge(&one.summary);
}

/// A worker: takes rounds until told to finish (or until the reader goes away).
fn work(mut shard: Shard, jobs: &Receiver<Job>, chunks: &SyncSender<Chunk>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Round(items, batch) => {
                if round(&mut shard, items, batch, chunks).is_none() {
                    return;
                }
            }
            Job::Finish(now) => {
                shard.finish(now);
                let mut batch = Batch::default();
                if send_full(&mut shard, &mut batch, chunks).is_some() {
                    let end = shard.end();
                    send_last(chunks, batch, Vec::new(), Some(end));
                }
                return;
            }
        }
    }
}

/// One round's items, and what finished in them sent back; None when the reader has gone.
fn round(
    shard: &mut Shard,
    mut items: Vec<Item>,
    mut batch: Batch,
    chunks: &SyncSender<Chunk>,
) -> Option<()> {
    // Borrowed where the reader wrote them; the emptied list goes back to be filled again.
    for item in &items {
        batch.held_at_sweeps.extend(shard.take(item));
        send_full(shard, &mut batch, chunks)?;
    }
    items.clear();
    send_last(chunks, batch, items, None)
}

/// Makes records of what the share has finished, sending each full chunk on (and waiting
/// while the reader has enough of them); None when the reader has gone.
fn send_full(shard: &mut Shard, batch: &mut Batch, chunks: &SyncSender<Chunk>) -> Option<()> {
    while shard.produce(batch, CHUNK) {
        // Sized like the full one, so that filling it does not grow it step by step.
        let next = Batch {
            finished: Vec::with_capacity(batch.finished.len()),
            stays: Vec::with_capacity(batch.stays.len()),
            spare: std::mem::take(&mut batch.spare),
            ..Batch::default()
        };
        let chunk = Chunk {
            batch: std::mem::replace(batch, next),
            last: false,
            items: Vec::new(),
            end: None,
        };
        chunks.send(chunk).ok()?;
    }
    Some(())
}

fn send_last(
    chunks: &SyncSender<Chunk>,
    batch: Batch,
    items: Vec<Item>,
    end: Option<ShareEnd>,
) -> Option<()> {
    let chunk = Chunk {
        batch,
        last: true,
        items,
        end,
    };
    chunks.send(chunk).ok()
}

fn stopped() -> io::Error {
    io::Error::other("a tracking thread stopped unexpectedly")
}

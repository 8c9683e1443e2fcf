//! The shares of the tracking, run inline or on worker threads.
//!
//! With threads, the reader deals segments out in rounds: every share gets its part of each
//! round (sweeps go to all), works through it on its own thread, and sends back what finished.
//! The reader takes the rounds back in order, all shares at once, and merges their records by
//! `(point, id)`: the order a single table gives, so the output does not depend on the number of
//! threads. A few rounds are in flight at a time, which bounds the memory.

use super::shard::{Batch, Finished, Item, Shard, ShareEnd, encoded, share_of};
use crate::track::table::MAX_LATE_RESETS;
use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

/// Segments per round, over all shares: a share's part stays under 128 KiB (see
/// `shard::BUFFER_BYTES`).
const ROUND_ITEMS: usize = 1024;
/// Rounds handed out and not yet taken back.
const ROUNDS_IN_FLIGHT: usize = 4;
/// Final records come back in chunks of this many per share.
const FINAL_CHUNK: usize = 256;

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
                taken: Batch::default(),
            })));
        }
        let shards = (0..shares).map(make).collect();
        Threads::start(scope, shards).map(Pool::Threads)
    }

    /// Hands a segment to the share its 4-tuple falls to, a sweep to every share.
    pub fn give(&mut self, item: Item) -> io::Result<()> {
        match self {
            Pool::Inline(i) => {
                i.shard.take(item, &mut i.taken);
                Ok(())
            }
            Pool::Threads(t) => t.give(item),
        }
    }

    /// Swaps what has come back so far, in output order, with `into` (emptied first: its
    /// buffers stay here as spares).
    pub fn take(&mut self, into: &mut Batch) {
        into.clear();
        let taken = match self {
            Pool::Inline(i) => &mut i.taken,
            Pool::Threads(t) => &mut t.taken,
        };
        std::mem::swap(taken, into);
        taken.spare.append(&mut into.spare);
        into.finished.sort_by_key(Finished::order);
    }

    /// The capture is over at `now`: every share finishes. Then [`Pool::take`] gives what
    /// finished before the end, and [`Pool::take_finals`] the rest.
    pub fn finish(&mut self, now: i64) -> io::Result<()> {
        match self {
            Pool::Inline(i) => {
                i.shard.finish(now);
                Ok(())
            }
            Pool::Threads(t) => t.finish(now),
        }
    }

    /// More of the connections that finished at the end (in id order over all shares) into
    /// `into` (emptied first); when there are none left, what the shares say about themselves.
    pub fn take_finals(&mut self, into: &mut Batch) -> io::Result<Option<ShareEnd>> {
        into.clear();
        match self {
            Pool::Inline(i) => {
                let more = i.shard.next_finals(FINAL_CHUNK, into);
                Ok((!more && into.finished.is_empty()).then(|| i.shard.end()))
            }
            Pool::Threads(t) => t.take_finals(into),
        }
    }
}

pub struct Inline {
    shard: Shard,
    taken: Batch,
}

enum Job {
    /// A round's items, and an empty batch (with spare buffers) to answer in.
    Round(Vec<Item>, Batch),
    /// The capture is over at this time.
    Finish(i64),
    /// The next chunk of final records, please, in this batch.
    Finals(Batch),
}

/// One share's answer to a job: a round's batch and its emptied items, or at the end a chunk
/// of its final records (the last chunk with the share's end).
struct Done {
    batch: Batch,
    items: Vec<Item>,
    end: Option<ShareEnd>,
}

struct Worker<'scope> {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
    round: Vec<Item>,
    handle: ScopedJoinHandle<'scope, ()>,
    /// At the end: this share's final records not yet merged, the buffers of their bytes, and
    /// the share's end once sent.
    finals: VecDeque<Finished>,
    final_bytes: Vec<Vec<u8>>,
    end: Option<ShareEnd>,
}

pub struct Threads<'scope> {
    workers: Vec<Worker<'scope>>,
    items: usize,
    in_flight: usize,
    taken: Batch,
    /// Emptied batches and item lists, to send again.
    spare_batches: Vec<Batch>,
    spare_items: Vec<Vec<Item>>,
}

impl<'scope> Threads<'scope> {
    fn start<'env>(scope: &'scope Scope<'scope, 'env>, shards: Vec<Shard>) -> io::Result<Self> {
        let workers = shards
            .into_iter()
            .enumerate()
            .map(|(i, shard)| {
                let (jobs, job_rx) = sync_channel(ROUNDS_IN_FLIGHT + 1);
                let (done_tx, done) = sync_channel(ROUNDS_IN_FLIGHT + 1);
                let handle = std::thread::Builder::new()
                    .name(format!("tcplife-track-{i}"))
                    .spawn_scoped(scope, move || work(shard, &job_rx, &done_tx))?;
                Ok(Worker {
                    jobs,
                    done,
                    round: Vec::new(),
                    handle,
                    finals: VecDeque::new(),
                    final_bytes: Vec::new(),
                    end: None,
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Threads {
            workers,
            items: 0,
            in_flight: 0,
            taken: Batch::default(),
            spare_batches: Vec::new(),
            spare_items: Vec::new(),
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
            let next = self.spare_items.pop().unwrap_or_default();
            let round = std::mem::replace(&mut w.round, next);
            let mut batch = self.spare_batches.pop().unwrap_or_default();
            let spare = self.taken.spare.len();
            let keep = spare - spare / (shares - i);
            batch.spare.extend(self.taken.spare.drain(keep..));
            w.jobs
                .send(Job::Round(round, batch))
                .map_err(|_| stopped())?;
        }
        self.items = 0;
        self.in_flight += 1;
        while self.in_flight > ROUNDS_IN_FLIGHT {
            self.take_round()?;
        }
        Ok(())
    }

    /// Takes the oldest round in flight back from every share; the connections held at each
    /// sweep are summed over the shares.
    fn take_round(&mut self) -> io::Result<()> {
        let mut held: Vec<usize> = Vec::new();
        for w in &self.workers {
            let mut done = w.done.recv().map_err(|_| stopped())?;
            let sweeps = std::mem::take(&mut done.batch.held_at_sweeps);
            if held.is_empty() {
                held = sweeps;
            } else {
                for (sum, n) in held.iter_mut().zip(sweeps) {
                    *sum += n;
                }
            }
            self.taken.append(&mut done.batch);
            self.spare_batches.push(done.batch);
            self.spare_items.push(done.items);
        }
        self.taken.held_at_sweeps.extend(held);
        self.in_flight = self.in_flight.saturating_sub(1);
        Ok(())
    }

    fn finish(&mut self, now: i64) -> io::Result<()> {
        self.send_round()?;
        while self.in_flight > 0 {
            self.take_round()?;
        }
        for w in &self.workers {
            w.jobs.send(Job::Finish(now)).map_err(|_| stopped())?;
        }
        Ok(())
    }

    /// Merges the shares' final records (each share's in id order) a chunk at a time.
    fn take_finals(&mut self, into: &mut Batch) -> io::Result<Option<ShareEnd>> {
        let buffer = into.spare.pop().unwrap_or_default();
        into.buffers.push(buffer);
        while into.finished.len() < FINAL_CHUNK {
            for w in &mut self.workers {
                w.refill(&mut into.spare)?;
            }
            let first = self
                .workers
                .iter_mut()
                .filter_map(|w| w.peek_final().map(|order| (order, w)))
                .min_by_key(|(order, _)| *order);
            let Some((_, w)) = first else {
                break;
            };
            w.move_final(into);
        }
        if !into.finished.is_empty() {
            return Ok(None);
        }
        let mut all = ShareEnd::default();
        for w in std::mem::take(&mut self.workers) {
            merge_end(&mut all, w.end.ok_or_else(stopped)?);
            drop(w.jobs);
            w.handle.join().map_err(|_| stopped())?;
        }
        Ok(Some(all))
    }
}

impl Worker<'_> {
    /// Receives this share's next chunk of final records once the last one is used up.
    /// Asks for one chunk at a time (so the shares cannot run ahead of the writing), handing
    /// back the buffers of the last.
    fn refill(&mut self, spare: &mut Vec<Vec<u8>>) -> io::Result<()> {
        while self.finals.is_empty() && self.end.is_none() {
            let mut batch = Batch::default();
            batch.spare.append(spare);
            for mut b in self.final_bytes.drain(..) {
                b.clear();
                batch.spare.push(b);
            }
            self.jobs.send(Job::Finals(batch)).map_err(|_| stopped())?;
            let mut done = self.done.recv().map_err(|_| stopped())?;
            self.finals = std::mem::take(&mut done.batch.finished).into();
            self.final_bytes = std::mem::take(&mut done.batch.buffers);
            spare.append(&mut done.batch.spare);
            self.end = done.end;
        }
        Ok(())
    }

    fn peek_final(&self) -> Option<(u64, u64)> {
        self.finals.front().map(Finished::order)
    }

    /// Moves the next final record into `into`, its bytes into `into`'s (one) buffer.
    fn move_final(&mut self, into: &mut Batch) {
        let Some(mut f) = self.finals.pop_front() else {
            return;
        };
        if let Some(Ok((buffer, range))) = &mut f.encoded {
            let bytes = encoded(&self.final_bytes, *buffer, range.clone());
            if let Some(out) = into.buffers.first_mut() {
                let start = out.len();
                out.extend_from_slice(bytes);
                *buffer = 0;
                *range = start..out.len();
            }
        }
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
fn work(mut shard: Shard, jobs: &Receiver<Job>, done: &SyncSender<Done>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Round(mut items, mut batch) => {
                for item in items.drain(..) {
                    shard.take(item, &mut batch);
                }
                let answer = Done {
                    batch,
                    items,
                    end: None,
                };
                if done.send(answer).is_err() {
                    return;
                }
            }
            Job::Finish(now) => {
                send_finals(&mut shard, now, jobs, done);
                return;
            }
            Job::Finals(_) => return,
        }
    }
}

/// After the end: one chunk of final records per request, the share's end with the last.
fn send_finals(shard: &mut Shard, now: i64, jobs: &Receiver<Job>, done: &SyncSender<Done>) {
    shard.finish(now);
    while let Ok(Job::Finals(mut batch)) = jobs.recv() {
        let more = shard.next_finals(FINAL_CHUNK, &mut batch);
        let last = !more || batch.finished.is_empty();
        let end = last.then(|| shard.end());
        let answer = Done {
            batch,
            items: Vec::new(),
            end,
        };
        if done.send(answer).is_err() || last {
            return;
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("a tracking thread stopped unexpectedly")
}

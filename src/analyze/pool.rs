//! The shares of the tracking, run inline or on worker threads.
//!
//! With threads, the reader deals segments out in rounds: every share gets its part of each
//! round (sweeps go to all). The first share is the reader's own: it takes its segments as
//! they are dealt, and its records are made when its round is merged, so that its part never
//! crosses to another core (the split gives it less, see [`Split`]). Each other share works
//! through its part on its own thread, and sends back what finished in chunks of at most
//! [`CHUNK`] records, in order. The reader merges the shares' chunks of the oldest round by
//! `(point, id)`, a chunk at a time: the order a single table gives, so the output does not
//! depend on the number of threads. A few rounds are in flight, and a share waits when the
//! chunks it has sent are not taken, which bounds the memory however many connections finish
//! at once (after a pause in the capture, or at its end): the reader's own share makes its
//! records a chunk at a time too.
//!
//! How much of the tracking the reader's own share takes depends on the capture, so the
//! threads start only once the first segments have been seen ([`Probe`]); those wait here.

use super::shard::{Batch, Finished, Item, Probe, Shard, ShareEnd, Split, Taken};
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
/// Spare encode buffers a chunk of the reader's own share starts with: about a chunk's worth
/// of 64 KiB buffers.
const CHUNK_BUFFERS: usize = 5;
/// Chunks a share may have sent and not yet seen taken.
const CHUNKS_QUEUED: usize = ROUNDS_IN_FLIGHT + 1;
/// Spare encode buffers kept per share: enough for the rounds in flight (a round's part takes
/// three or four); more, made while many records finished at once, are freed.
const SPARE_BUFFERS: usize = 12;

pub enum Pool<'scope> {
    Inline(Box<Inline>),
    Probing(Box<Probing<'scope>>),
    Threads(Threads<'scope>),
}

/// Starts the threads once the split is known.
type Starter<'scope> = Box<dyn FnOnce(Split) -> io::Result<Threads<'scope>> + 'scope>;

/// Threads not started yet: what the first items say about the capture, and the items.
pub struct Probing<'scope> {
    shares: usize,
    probe: Probe,
    items: Vec<Item>,
    start: Option<Starter<'scope>>,
}

impl<'scope> Pool<'scope> {
    /// `shares` shares, built by `make` with the split: the first on the reader's thread, each
    /// other on its own, once the first segments have chosen the split.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        shares: usize,
        make: impl Fn(Split, usize) -> Shard + 'scope,
    ) -> Self {
        if shares <= 1 {
            return Pool::Inline(Box::new(Inline {
                shard: make(Split::new(1, 0), 0),
                held_at_sweeps: Vec::new(),
            }));
        }
        Pool::Probing(Box::new(Probing {
            shares,
            probe: Probe::default(),
            items: Vec::new(),
            start: Some(Box::new(move |split| {
                Threads::start(scope, split, |i| make(split, i))
            })),
        }))
    }

    /// A frame of `captured` bytes was read.
    pub fn frame(&mut self, captured: usize) {
        if let Pool::Probing(p) = self {
            p.probe.frame(captured);
        }
    }

    /// Hands a segment to the share its 4-tuple falls to, a sweep to every share.
    pub fn give(&mut self, item: Item) -> io::Result<()> {
        match self {
            Pool::Inline(i) => {
                i.held_at_sweeps.extend(i.shard.take(&item));
                Ok(())
            }
            Pool::Probing(p) => {
                if let Item::Segment { seg, .. } = &item {
                    p.probe.segment(seg);
                }
                p.items.push(item);
                Ok(())
            }
            Pool::Threads(t) => t.give(item),
        }
    }

    /// Whether finished records must be taken before more is given (or, still probing, the
    /// threads started: see [`Pool::start_threads`]).
    pub fn behind(&self) -> bool {
        match self {
            Pool::Inline(i) => i.shard.waiting() || !i.held_at_sweeps.is_empty(),
            Pool::Probing(p) => p.probe.done(),
            Pool::Threads(t) => t.in_flight > ROUNDS_IN_FLIGHT,
        }
    }

    /// Starts the threads with the split the probe chose, if they are not running; the items
    /// held back meanwhile, to be given again (with records taken between, as always).
    pub fn start_threads(&mut self) -> io::Result<Vec<Item>> {
        let Pool::Probing(p) = self else {
            return Ok(Vec::new());
        };
        let start = p.start.take().ok_or_else(never_started)?;
        let items = std::mem::take(&mut p.items);
        let threads = start(Split::new(p.shares, p.probe.reading()))?;
        *self = Pool::Threads(threads);
        Ok(items)
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
            Pool::Probing(_) => {
                into.clear();
                Ok(false)
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
            Pool::Probing(_) => Err(never_started()),
            Pool::Threads(t) => t.finish(now),
        }
    }

    /// Once every record is taken: the shares' ends, summed.
    pub fn end(self) -> io::Result<ShareEnd> {
        match self {
            Pool::Inline(mut i) => Ok(i.shard.end()),
            Pool::Probing(_) => Err(never_started()),
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
/// the last chunk of a thread's round the round's emptied item list, or at the end the share's
/// end.
struct Chunk {
    batch: Batch,
    last: bool,
    items: Option<Vec<Item>>,
    end: Option<ShareEnd>,
}

/// A share, as the reader sees it.
struct Worker<'scope> {
    link: Link<'scope>,
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

/// Where a share is tracked.
enum Link<'scope> {
    /// On its own thread: its part of the round being dealt, the way its rounds go and its
    /// chunks come back.
    Thread {
        round: Vec<Item>,
        jobs: SyncSender<Job>,
        chunks: Receiver<Chunk>,
        handle: ScopedJoinHandle<'scope, ()>,
    },
    /// On the reader's thread.
    Local(Box<Local>),
}

/// The reader's own share: it takes its segments as they are dealt, and keeps count of what
/// finished in each round, to make records of them when the round is merged.
struct Local {
    shard: Shard,
    /// Rounds dealt and not yet all made into records, oldest first.
    rounds: VecDeque<LocalRound>,
    /// Connections held at the sweeps of the round being dealt.
    held_at_sweeps: Vec<usize>,
}

struct LocalRound {
    /// Finished connections of the round not yet made into records.
    waiting: usize,
    held_at_sweeps: Vec<usize>,
    /// The capture's end: the share's end goes with the round's last chunk.
    end: bool,
}

pub struct Threads<'scope> {
    split: Split,
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
        if let Taken::Encoded(Ok((buffer, _))) = &mut f.taken {
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
    /// An empty batch to fill, with the last `buffers` spare buffers to encode into.
    fn batch(&mut self, buffers: usize) -> Batch {
        let mut batch = self.batches.pop().unwrap_or_default();
        let keep = self.buffers.len().saturating_sub(buffers);
        batch.spare.extend(self.buffers.drain(keep..));
        batch
    }

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
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        split: Split,
        make: impl Fn(usize) -> Shard,
    ) -> io::Result<Self> {
        let workers = (0..split.shares())
            .map(|i| {
                let link = if i == 0 {
                    Link::Local(Box::new(Local::new(make(i))))
                } else {
                    Link::thread(scope, i, make(i))?
                };
                Ok(Worker {
                    link,
                    queue: VecDeque::new(),
                    place: Place::default(),
                    round_done: false,
                    sweeps: 0,
                    end: None,
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Threads {
            split,
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
                    w.link.give(item);
                }
            }
            Item::Segment { seg, .. } => {
                if let Some(w) = self.workers.get_mut(self.split.share(seg)) {
                    w.link.give(item);
                }
            }
        }
        self.items += 1;
        if self.items >= ROUND_ITEMS {
            self.send_round()?;
        }
        Ok(())
    }

    /// Closes the round: every share on a thread is sent its part, with an even share of the
    /// spare buffers (all of them go round, so they never pile up here).
    fn send_round(&mut self) -> io::Result<()> {
        let threads = self.workers.len() - 1;
        let mut sent = 0;
        for w in &mut self.workers {
            match &mut w.link {
                Link::Local(local) => local.close_round(false),
                Link::Thread { round, jobs, .. } => {
                    let next = self.spare.items.pop().unwrap_or_default();
                    let round = std::mem::replace(round, next);
                    let batch = self
                        .spare
                        .batch(self.spare.buffers.len() / (threads - sent));
                    sent += 1;
                    jobs.send(Job::Round(round, batch)).map_err(|_| stopped())?;
                }
            }
        }
        self.items = 0;
        self.in_flight += 1;
        Ok(())
    }

    fn finish(&mut self, now: i64) -> io::Result<()> {
        self.send_round()?;
        for w in &mut self.workers {
            match &mut w.link {
                Link::Local(local) => {
                    local.shard.finish(now);
                    local.close_round(true);
                }
                Link::Thread { jobs, .. } => jobs.send(Job::Finish(now)).map_err(|_| stopped())?,
            }
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
            if let Link::Thread { jobs, handle, .. } = w.link {
                drop(jobs);
                handle.join().map_err(|_| stopped())?;
            }
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
            let mut chunk = self.link.next_chunk(spare)?;
            for n in chunk.batch.held_at_sweeps.drain(..) {
                match held.get_mut(self.sweeps) {
                    Some(sum) => *sum += n,
                    None => held.push(n),
                }
                self.sweeps += 1;
            }
            // The chunk's list becomes the queue (an empty one, as it is here) and the queue's
            // goes back with the batch: the records, a few hundred bytes each, stay in place.
            let records = VecDeque::from(std::mem::take(&mut chunk.batch.finished));
            chunk.batch.finished = Vec::from(std::mem::replace(&mut self.queue, records));
            let buffers = chunk.batch.buffers.drain(..);
            self.place = Place::append(into, buffers, &chunk.batch.stays);
            spare.keep_batch(chunk.batch, shares);
            self.round_done = chunk.last;
            if let Some(items) = chunk.items {
                spare.items.push(items);
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

impl<'scope> Link<'scope> {
    /// Share `i` on a thread of its own.
    fn thread<'env>(
        scope: &'scope Scope<'scope, 'env>,
        i: usize,
        shard: Shard,
    ) -> io::Result<Self> {
        // Room for every round in flight and the end: the reader never waits to send.
        let (jobs, job_rx) = sync_channel(ROUNDS_IN_FLIGHT + 2);
        let (chunk_tx, chunks) = sync_channel(CHUNKS_QUEUED);
        let handle = std::thread::Builder::new()
            .name(format!("tcplife-track-{i}"))
            .spawn_scoped(scope, move || work(shard, &job_rx, &chunk_tx))?;
        Ok(Link::Thread {
            round: Vec::new(),
            jobs,
            chunks,
            handle,
        })
    }

    fn give(&mut self, item: Item) {
        match self {
            Link::Thread { round, .. } => round.push(item),
            Link::Local(local) => local.held_at_sweeps.extend(local.shard.take(&item)),
        }
    }

    /// The share's next chunk of the oldest round: received from its thread, or made here.
    fn next_chunk(&mut self, spare: &mut Spares) -> io::Result<Chunk> {
        match self {
            Link::Thread { chunks, .. } => chunks.recv().map_err(|_| stopped()),
            Link::Local(local) => local.next_chunk(spare.batch(CHUNK_BUFFERS)),
        }
    }
}

impl Local {
    fn new(shard: Shard) -> Self {
        Local {
            shard,
            rounds: VecDeque::new(),
            held_at_sweeps: Vec::new(),
        }
    }

    /// The round being dealt is over (the capture's end, if `end`): what finished in it waits
    /// to be merged.
    fn close_round(&mut self, end: bool) {
        // The shard's waiting connections are those of the rounds before, then this one's.
        let before: usize = self.rounds.iter().map(|r| r.waiting).sum();
        let waiting = self.shard.waiting_count().saturating_sub(before);
        self.rounds.push_back(LocalRound {
            waiting,
            held_at_sweeps: std::mem::take(&mut self.held_at_sweeps),
            end,
        });
    }

    /// Up to a chunk of the oldest round's records, made in `batch`.
    fn next_chunk(&mut self, mut batch: Batch) -> io::Result<Chunk> {
        let round = self.rounds.front_mut().ok_or_else(stopped)?;
        let n = round.waiting.min(CHUNK);
        self.shard.produce(&mut batch, n);
        round.waiting -= n;
        if round.waiting > 0 {
            return Ok(Chunk {
                batch,
                last: false,
                items: None,
                end: None,
            });
        }
        let round = self.rounds.pop_front().ok_or_else(stopped)?;
        batch.held_at_sweeps = round.held_at_sweeps;
        Ok(Chunk {
            batch,
            last: true,
            items: None,
            end: round.end.then(|| self.shard.end()),
        })
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
                    send_last(chunks, batch, None, Some(end));
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
    send_last(chunks, batch, Some(items), None)
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
            items: None,
            end: None,
        };
        chunks.send(chunk).ok()?;
    }
    Some(())
}

fn send_last(
    chunks: &SyncSender<Chunk>,
    batch: Batch,
    items: Option<Vec<Item>>,
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

fn never_started() -> io::Error {
    io::Error::other("internal error: the tracking threads were not started; please report this")
}

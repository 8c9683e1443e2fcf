//! The state peaks of the summary, counted on a thread of their own when the tracking has
//! threads (they were a third of the reader's work, and the reader fed the tracking threads
//! late). The reader hands over what each record says of its states, in output order, a batch
//! at a time; the count is the same as on the reader's thread.

use crate::states::{PeakInput, StatePeaks, Stay};
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

/// Records per batch handed over.
const BATCH: usize = 256;
/// Batches handed over and not yet counted.
const BATCHES_QUEUED: usize = 4;

/// Records' inputs with the capture clock when each was read, and their stays.
#[derive(Default)]
struct Batch {
    inputs: Vec<(PeakInput, i64)>,
    stays: Vec<Stay>,
}

pub enum PeakCounter<'scope> {
    Inline(Box<StatePeaks>),
    Thread(Counter<'scope>),
}

pub struct Counter<'scope> {
    batch: Batch,
    to: SyncSender<Batch>,
    /// Counted batches, emptied, to fill again.
    back: Receiver<Batch>,
    handle: ScopedJoinHandle<'scope, StatePeaks>,
}

impl<'scope> PeakCounter<'scope> {
    /// On a thread of its own when `threaded`.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>, threaded: bool) -> io::Result<Self> {
        if !threaded {
            return Ok(PeakCounter::Inline(Box::default()));
        }
        let (to, batches) = sync_channel(BATCHES_QUEUED);
        let (emptied, back) = sync_channel(BATCHES_QUEUED + 1);
        let handle = std::thread::Builder::new()
            .name("tcplife-peaks".to_owned())
            .spawn_scoped(scope, move || count(&batches, &emptied))?;
        Ok(PeakCounter::Thread(Counter {
            batch: Batch::default(),
            to,
            back,
            handle,
        }))
    }

    /// One record's states (its stays in `list`), read when the capture had been read up to
    /// `now_ns`.
    pub fn add(&mut self, mut input: PeakInput, list: &[Stay], now_ns: i64) -> io::Result<()> {
        match self {
            PeakCounter::Inline(peaks) => {
                peaks.add(&input, list, now_ns);
                Ok(())
            }
            PeakCounter::Thread(c) => {
                input.copy_stays(list, &mut c.batch.stays);
                c.batch.inputs.push((input, now_ns));
                if c.batch.inputs.len() < BATCH {
                    return Ok(());
                }
                let next = c.back.try_recv().unwrap_or_default();
                let full = std::mem::replace(&mut c.batch, next);
                c.to.send(full).map_err(|_| stopped())
            }
        }
    }

    /// Every record has been added: the peaks.
    pub fn finish(self) -> io::Result<StatePeaks> {
        match self {
            PeakCounter::Inline(peaks) => Ok(*peaks),
            PeakCounter::Thread(c) => {
                c.to.send(c.batch).map_err(|_| stopped())?;
                drop(c.to);
                c.handle.join().map_err(|_| stopped())
            }
        }
    }
}

fn count(batches: &Receiver<Batch>, emptied: &SyncSender<Batch>) -> StatePeaks {
    let mut peaks = StatePeaks::new();
    while let Ok(mut batch) = batches.recv() {
        for (input, now_ns) in batch.inputs.drain(..) {
            peaks.add(&input, &batch.stays, now_ns);
        }
        batch.stays.clear();
        // The reader takes one back before each batch it sends, so there is room; if not,
        // the batch is simply dropped.
        let _ = emptied.try_send(batch);
    }
    peaks
}

fn stopped() -> io::Error {
    io::Error::other("the thread counting state peaks stopped unexpectedly")
}

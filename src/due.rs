//! Things falling due at a time, taken all at once when the clock passes them.
//!
//! The flow table's timers are pushed at "now plus a fixed delay" (a linger time, a TIME-WAIT)
//! and a sweep takes every one that has come up, whatever their order among themselves (each
//! is looked at on its own; what is finished is then put in id order). A binary heap keeps an
//! order nobody reads: each pop sifts through the whole depth of the heap, a cache miss a level
//! once it outgrows the cache (perf put 3 % of the CPU time on the benchmark's
//! many-connection capture on those pops). Here the entries are kept in buckets by a coarse
//! slot of their time: a push appends to its slot's bucket, and a sweep takes the buckets that
//! have passed whole, and picks through the one the clock is in.

use std::collections::BTreeMap;

/// A slot spans 2^26 ns (about 67 ms): a sweep comes every 100 ms of capture, and a linger
/// time is seconds, so a few dozen buckets are open and each is picked through about once.
const SLOT_BITS: u32 = 26;

#[derive(Debug, Clone)]
pub struct DueQueue<K> {
    /// Entries `(time, key)` by the slot of their time.
    buckets: BTreeMap<i64, Vec<(i64, K)>>,
    len: usize,
}

impl<K> Default for DueQueue<K> {
    fn default() -> Self {
        DueQueue {
            buckets: BTreeMap::new(),
            len: 0,
        }
    }
}

fn slot(t: i64) -> i64 {
    t >> SLOT_BITS
}

impl<K: Copy> DueQueue<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key` falls due at `t`.
    pub fn push(&mut self, t: i64, key: K) {
        self.buckets.entry(slot(t)).or_default().push((t, key));
        self.len += 1;
    }

    /// Takes every entry due at or before `now`, in no particular order (the same on every
    /// run).
    pub fn take_due(&mut self, now: i64) -> Vec<(i64, K)> {
        let mut due = Vec::new();
        while let Some(mut bucket) = self.buckets.first_entry() {
            let s = *bucket.key();
            if s > slot(now) {
                break;
            }
            if s < slot(now) {
                let passed = bucket.remove();
                if due.is_empty() {
                    due = passed;
                } else {
                    due.extend(passed);
                }
                continue;
            }
            // The clock is inside this slot: what is not due yet stays.
            let entries = bucket.get_mut();
            due.extend(entries.iter().filter(|&&(t, _)| t <= now));
            entries.retain(|&(t, _)| t > now);
            if entries.is_empty() {
                bucket.remove();
            }
            break;
        }
        self.len -= due.len();
        due
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(i64, &K) -> bool) {
        self.buckets.retain(|_, entries| {
            entries.retain(|(t, key)| keep(*t, key));
            !entries.is_empty()
        });
        self.len = self.buckets.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(mut v: Vec<(i64, u32)>) -> Vec<(i64, u32)> {
        v.sort_unstable();
        v
    }

    #[test]
    fn a_sweep_takes_what_has_come_up_and_leaves_the_rest_of_its_slot() {
        let mut q = DueQueue::new();
        let slot = 1i64 << SLOT_BITS;
        for (i, t) in [5 * slot + 3, slot, 2 * slot - 1, 5 * slot + 1, 9 * slot]
            .into_iter()
            .enumerate()
        {
            q.push(t, i);
        }
        assert_eq!(q.take_due(slot - 1), vec![]);
        let mut first = q.take_due(5 * slot + 2);
        first.sort_unstable();
        assert_eq!(first, vec![(slot, 1), (2 * slot - 1, 2), (5 * slot + 1, 3)]);
        assert_eq!(q.len(), 2);
        q.retain(|t, _| t != 9 * slot);
        assert_eq!(q.take_due(i64::MAX), vec![(5 * slot + 3, 0)]);
        assert_eq!(q.len(), 0);
    }

    proptest! {
        /// Pushes (mostly rising, as timers are, some in the past) and sweeps in any mix: each
        /// sweep takes exactly the entries held that are due by then.
        #[test]
        fn a_sweep_takes_exactly_what_is_due(
            steps in prop::collection::vec((any::<bool>(), 0i64..1 << 28, 0u8..8), 0..300)
        ) {
            let mut queue = DueQueue::new();
            let mut held: Vec<(i64, u32)> = Vec::new();
            let mut clock = 0i64;
            for (i, (sweep, step, back)) in (0u32..).zip(steps) {
                clock += step;
                if sweep {
                    let (due, rest) = held.iter().partition(|&&(t, _)| t <= clock);
                    held = rest;
                    prop_assert_eq!(sorted(queue.take_due(clock)), sorted(due));
                } else {
                    // One push in eight lands in the past.
                    let t = if back == 0 { clock - 3 * step } else { clock + step };
                    queue.push(t, i);
                    held.push((t, i));
                }
                prop_assert_eq!(queue.len(), held.len());
            }
        }
    }
}

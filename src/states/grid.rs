//! Per-state counts kept as deltas on a time grid: +1 where an endpoint enters a state, −1
//! where it leaves, each at the first grid instant at or after the change. A running sum over
//! the grid gives the count at every instant, so nothing is recomputed per sample and memory is
//! the number of grid cells touched (at most instants × groups), never the number of
//! connections.

use super::presence::{Reuse, Stay, Until};
use crate::track::State;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// A number per state, in RFC order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([i64; 11]);

impl Counts {
    pub fn get(&self, state: State) -> i64 {
        self.0.get(state as usize).copied().unwrap_or(0)
    }

    fn add(&mut self, state: State, delta: i64) {
        if let Some(n) = self.0.get_mut(state as usize) {
            *n += delta;
        }
    }

    fn add_all(&mut self, other: &Counts) {
        for s in State::ALL {
            self.add(s, other.get(s));
        }
    }

    /// Raises each count to `other`'s where that is higher.
    pub fn raise_to(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = (*mine).max(theirs);
        }
    }

    /// Every state's count.
    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }

    /// True when every count of `states` is zero.
    pub fn none_in(&self, states: &[State]) -> bool {
        states.iter().all(|&s| self.get(s) == 0)
    }
}

/// Deltas of one group (all endpoints, one server, one host) on a grid of instants
/// `origin + k × width`.
#[derive(Debug, Clone, Default)]
pub struct DeltaGrid {
    cells: BTreeMap<i64, Counts>,
}

impl DeltaGrid {
    /// The running counts at each grid index that saw a change, in time order.
    pub fn running(&self) -> impl Iterator<Item = (i64, Counts)> + '_ {
        self.cells
            .iter()
            .scan(Counts::default(), |sum, (&k, delta)| {
                sum.add_all(delta);
                Some((k, *sum))
            })
    }

    /// Adds `delta` at grid index `k`; true when that made a new cell.
    fn add(&mut self, k: i64, state: State, delta: i64) -> bool {
        let mut created = false;
        self.cells
            .entry(k)
            .or_insert_with(|| {
                created = true;
                Counts::default()
            })
            .add(state, delta);
        created
    }

    /// Regroups the cells for a grid `factor` times coarser.
    fn coarsen(&mut self, factor: i64) {
        let old = std::mem::take(&mut self.cells);
        for (k, delta) in old {
            self.cells
                .entry(ceil_div(k, factor))
                .or_default()
                .add_all(&delta);
        }
    }

    fn len(&self) -> usize {
        self.cells.len()
    }
}

/// `a / b` rounded up (`b` > 0).
fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// `Grids::time_waits` is never swept below this size.
const SWEEP_MIN: usize = 1024;

/// A change not yet due: it lies after every packet read so far.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pending<K> {
    t: i64,
    key: K,
    state: State,
    delta: i64,
}

/// Delta grids by group key, sharing one grid. A change later than the last packet read (a
/// TIME-WAIT timer) waits until the capture reaches it, and is dropped if the capture ends
/// first; those waiting are the endpoints in TIME-WAIT at the moment, never more. Those
/// endpoints are also kept by connection, so that a new SYN on the 4-tuple can end them all.
#[derive(Debug, Clone)]
pub struct Grids<K: Ord> {
    origin: i64,
    width: i64,
    groups: BTreeMap<K, DeltaGrid>,
    cells: usize,
    /// The last packet's time.
    clock: i64,
    pending: BinaryHeap<Reverse<Pending<K>>>,
    /// By connection id: the groups of its endpoints in TIME-WAIT until a timer still ahead.
    time_waits: HashMap<u64, Vec<(K, i64)>>,
    /// Past timers are swept out of `time_waits` when it grows beyond this.
    sweep_at: usize,
}

impl<K: Ord + Clone> Grids<K> {
    /// Instants `origin + k × width` (`width` is at least 1 ns).
    pub fn new(origin: i64, width: i64) -> Self {
        Grids {
            origin,
            width: width.max(1),
            groups: BTreeMap::new(),
            cells: 0,
            clock: i64::MIN,
            pending: BinaryHeap::new(),
            time_waits: HashMap::new(),
            sweep_at: SWEEP_MIN,
        }
    }

    pub fn width(&self) -> i64 {
        self.width
    }

    pub fn origin(&self) -> i64 {
        self.origin
    }

    /// The instant of grid index `k`.
    pub fn instant(&self, k: i64) -> i64 {
        self.origin.saturating_add(k.saturating_mul(self.width))
    }

    /// The first grid index at or after `t`: a change at `t` shows from that instant on.
    pub fn index_of(&self, t: i64) -> i64 {
        ceil_div(t.saturating_sub(self.origin), self.width)
    }

    /// Cells held, over all groups.
    pub fn cells(&self) -> usize {
        self.cells
    }

    pub fn contains(&self, key: &K) -> bool {
        self.groups.contains_key(key)
    }

    /// Groups held.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn groups(&self) -> impl Iterator<Item = (&K, &DeltaGrid)> + '_ {
        self.groups.iter()
    }

    /// The capture has been read up to `now_ns`: changes up to then are due.
    pub fn advance(&mut self, now_ns: i64) {
        self.clock = self.clock.max(now_ns);
        while let Some(Reverse(p)) = self.pending.peek() {
            if p.t > self.clock {
                break;
            }
            if let Some(Reverse(p)) = self.pending.pop() {
                self.apply(&p.key, p.t, p.state, p.delta);
            }
        }
    }

    /// Counts the stays of one endpoint of connection `id` in group `key`.
    pub fn add_stays(&mut self, id: u64, key: &K, stays: &[Stay]) {
        for stay in stays {
            self.change(key, stay.from_ns, stay.state, 1);
            let Until::At(t) = stay.until else {
                continue;
            };
            self.change(key, t, stay.state, -1);
            if stay.state == State::TimeWait && t > self.clock {
                self.time_waits
                    .entry(id)
                    .or_default()
                    .push((key.clone(), t));
            }
        }
        self.sweep_time_waits();
    }

    /// A new SYN reused the 4-tuple of connection `reuse.previous`: every endpoint of it still
    /// counted in TIME-WAIT left it then, not at its timer. When the timer had already passed
    /// before this record came (a long connection reused the 4-tuple), the endpoint that the
    /// reuse names is ended, in `fallback` groups.
    pub fn reused(&mut self, reuse: Reuse, fallback: &[K]) {
        let ended = match self.time_waits.remove(&reuse.previous) {
            Some(list) => list,
            None => fallback
                .iter()
                .map(|k| (k.clone(), reuse.timer_ns))
                .collect(),
        };
        for (key, timer) in ended {
            if reuse.at_ns < timer {
                self.change(&key, reuse.at_ns, State::TimeWait, -1);
                self.change(&key, timer, State::TimeWait, 1);
            }
        }
    }

    /// Forgets the TIME-WAITs whose timer has passed, now and then (amortised).
    fn sweep_time_waits(&mut self) {
        if self.time_waits.len() <= self.sweep_at {
            return;
        }
        let clock = self.clock;
        self.time_waits
            .retain(|_, list| list.iter().any(|&(_, t)| t > clock));
        self.sweep_at = (self.time_waits.len() * 2).max(SWEEP_MIN);
    }

    fn change(&mut self, key: &K, t: i64, state: State, delta: i64) {
        if t > self.clock {
            self.pending.push(Reverse(Pending {
                t,
                key: key.clone(),
                state,
                delta,
            }));
        } else {
            self.apply(key, t, state, delta);
        }
    }

    fn apply(&mut self, key: &K, t: i64, state: State, delta: i64) {
        let k = self.index_of(t);
        let grid = match self.groups.get_mut(key) {
            Some(g) => g,
            None => self.groups.entry(key.clone()).or_default(),
        };
        if grid.add(k, state, delta) {
            self.cells += 1;
        }
    }

    /// Makes the grid `factor` times coarser (the origin stays), merging cells.
    pub fn coarsen(&mut self, factor: i64) {
        let factor = factor.max(2);
        self.width = self.width.saturating_mul(factor);
        self.cells = 0;
        for grid in self.groups.values_mut() {
            grid.coarsen(factor);
            self.cells += grid.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay(state: State, from_ns: i64, until: Until) -> Stay {
        Stay {
            state,
            from_ns,
            until,
        }
    }

    #[test]
    fn changes_show_from_the_next_instant_on() {
        let mut g: Grids<()> = Grids::new(1000, 10);
        g.advance(2000);
        g.add_stays(
            1,
            &(),
            &[
                stay(State::Established, 1000, Until::At(1015)),
                stay(State::FinWait1, 1015, Until::CaptureEnd),
            ],
        );
        let (_, grid) = g.groups().next().unwrap();
        let at: Vec<(i64, i64, i64)> = grid
            .running()
            .map(|(k, c)| (k, c.get(State::Established), c.get(State::FinWait1)))
            .collect();
        // Instant 1000 sees ESTABLISHED; 1010 still; 1020 sees FIN-WAIT-1 only.
        assert_eq!(at, vec![(0, 1, 0), (2, 0, 1)]);
    }

    #[test]
    fn coarsening_keeps_the_sums() {
        let mut g: Grids<u8> = Grids::new(0, 1);
        g.advance(100);
        for t in 0..100i64 {
            let key = u8::try_from(t % 3).unwrap();
            g.add_stays(1, &key, &[stay(State::TimeWait, t, Until::CaptureEnd)]);
        }
        assert_eq!(g.cells(), 100);
        g.coarsen(10);
        assert_eq!(g.width(), 10);
        assert!(g.cells() <= 3 * 11);
        let total: i64 = g
            .groups()
            .map(|(_, grid)| grid.running().last().unwrap().1.get(State::TimeWait))
            .sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn changes_after_the_last_packet_wait_and_may_never_come() {
        let mut g: Grids<()> = Grids::new(0, 10);
        g.advance(100);
        g.add_stays(1, &(), &[stay(State::TimeWait, 50, Until::At(500))]);
        g.add_stays(2, &(), &[stay(State::TimeWait, 60, Until::At(150))]);
        g.advance(200);
        let (_, grid) = g.groups().next().unwrap();
        let last = grid.running().last().unwrap();
        // The one due at 150 has left; the one due at 500 is still in TIME-WAIT at 200.
        assert_eq!((last.0, last.1.get(State::TimeWait)), (15, 1));
    }

    #[test]
    fn a_reused_time_wait_ends_at_the_new_syn() {
        // Connection 1 closed simultaneously: both ends in TIME-WAIT, in two groups.
        let mut g: Grids<u8> = Grids::new(0, 10);
        g.advance(100);
        g.add_stays(1, &0, &[stay(State::TimeWait, 10, Until::At(1000))]);
        g.add_stays(1, &1, &[stay(State::TimeWait, 10, Until::At(1000))]);
        let reuse = Reuse {
            previous: 1,
            side: crate::track::Side::Client,
            at_ns: 40,
            timer_ns: 1000,
        };
        g.reused(reuse, &[0]);
        g.advance(2000);
        for (_, grid) in g.groups() {
            let counts: Vec<(i64, i64)> = grid
                .running()
                .map(|(k, c)| (k, c.get(State::TimeWait)))
                .collect();
            assert_eq!(counts, vec![(1, 1), (4, 0), (100, 0)]);
        }
        // Once the timer has passed, only the named end can be cut short.
        let mut late: Grids<u8> = Grids::new(0, 10);
        late.advance(100);
        late.add_stays(1, &0, &[stay(State::TimeWait, 10, Until::At(500))]);
        late.add_stays(1, &1, &[stay(State::TimeWait, 10, Until::At(500))]);
        late.advance(600);
        late.time_waits.clear();
        late.reused(
            Reuse {
                timer_ns: 500,
                ..reuse
            },
            &[0],
        );
        let at_40: Vec<i64> = late
            .groups()
            .map(|(_, grid)| {
                grid.running()
                    .take_while(|(k, _)| *k <= 4)
                    .last()
                    .unwrap()
                    .1
                    .get(State::TimeWait)
            })
            .collect();
        assert_eq!(at_40, vec![0, 1]);
    }

    #[test]
    fn ceil_div_rounds_up_on_both_sides_of_zero() {
        assert_eq!(ceil_div(0, 10), 0);
        assert_eq!(ceil_div(1, 10), 1);
        assert_eq!(ceil_div(10, 10), 1);
        assert_eq!(ceil_div(-1, 10), 0);
        assert_eq!(ceil_div(-10, 10), -1);
        assert_eq!(ceil_div(-11, 10), -1);
    }
}

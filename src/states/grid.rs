//! Per-state counts kept as deltas on a time grid: +1 where an endpoint enters a state, −1
//! where it leaves, each at the first grid instant at or after the change. A running sum over
//! the grid gives the count at every instant, so nothing is recomputed per sample and memory is
//! the number of grid cells touched (at most instants × groups), never the number of
//! connections.

use super::presence::{Reuse, Stay, Until};
use crate::FastMap;
use crate::inline::InlineVec;
use crate::track::State;
use std::cmp::Reverse;
use std::collections::btree_map::Entry;
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
/// `origin + k × width`. Hashed, not ordered: records arrive out of time order (a connection
/// is finished when its 4-tuple is reused, or a sweep after it closed), and a change is a hash
/// probe where a tree would be a search; reading sorts once.
///
/// While the cells lie close together, an index is its own slot (see [`Slots`]): the records
/// of one moment change a few neighbouring cells, which then share cache lines, where scattered
/// slots cost a cache miss each (a sixth of the peaks' time on a busy capture). Far apart,
/// indices would pile up on the same slots (timestamps a power of two apart), so cells spread
/// wider than [`SPREAD`] times their number are scattered.
#[derive(Debug, Clone, Default)]
pub struct DeltaGrid {
    cells: HashMap<i64, Counts, Slots>,
    /// The lowest and highest index held.
    span: Option<(i64, i64)>,
}

/// Cells are scattered once the indices held span more than this many times their number
/// plus [`SPREAD_MIN`] (until then, a few indices at most share a slot), and put side by side
/// again when they span less than this many times their number.
const SPREAD: usize = 4;
const SPREAD_MIN: usize = 1024;

/// How grid indices are hashed: as themselves (`Slots::Near`), or scattered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Slots {
    #[default]
    Near,
    Scattered,
}

impl std::hash::BuildHasher for Slots {
    type Hasher = SlotHasher;
    fn build_hasher(&self) -> SlotHasher {
        SlotHasher {
            slots: *self,
            index: 0,
        }
    }
}

struct SlotHasher {
    slots: Slots,
    index: u64,
}

impl std::hash::Hasher for SlotHasher {
    /// hashbrown picks the slot from the low bits and compares the top seven (its tag) before
    /// the key: those are always mixed, so that neighbours do not share a tag.
    fn finish(&self) -> u64 {
        let mixed = crate::mix(self.index);
        match self.slots {
            Slots::Near => (self.index & (u64::MAX >> 7)) | (mixed & !(u64::MAX >> 7)),
            Slots::Scattered => mixed,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.index = self.index.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_i64(&mut self, k: i64) {
        self.index = u64::from_ne_bytes(k.to_ne_bytes());
    }
}

impl DeltaGrid {
    /// The running counts at each grid index that saw a change, in time order.
    pub fn running(&self) -> impl Iterator<Item = (i64, Counts)> + use<> {
        let mut cells: Vec<(i64, Counts)> = self.cells.iter().map(|(&k, &c)| (k, c)).collect();
        cells.sort_unstable_by_key(|&(k, _)| k);
        cells
            .into_iter()
            .scan(Counts::default(), |sum, (k, delta)| {
                sum.add_all(&delta);
                Some((k, *sum))
            })
    }

    /// Adds `delta` to one state at grid index `k`; true when that made a new cell.
    fn add(&mut self, k: i64, state: State, delta: i64) -> bool {
        self.change_cell(k, |counts| counts.add(state, delta))
    }

    /// Adds `delta` to cell `k`; true when that made it.
    fn put(&mut self, k: i64, delta: &Counts) -> bool {
        self.change_cell(k, |counts| counts.add_all(delta))
    }

    /// Changes cell `k` (made if need be); true when it was made.
    fn change_cell(&mut self, k: i64, change: impl FnOnce(&mut Counts)) -> bool {
        let before = self.cells.len();
        change(self.cells.entry(k).or_default());
        let created = self.cells.len() > before;
        if created {
            self.made(k);
        }
        created
    }

    /// Cell `k` was made: the span grows. The cells are scattered as soon as it is too wide
    /// for them, and put side by side again, when it no longer is, each time their number
    /// doubles (so each rebuild is paid for by as many cells made).
    fn made(&mut self, k: i64) {
        let (lo, hi) = self.span.map_or((k, k), |(lo, hi)| (lo.min(k), hi.max(k)));
        self.span = Some((lo, hi));
        let held = self.cells.len();
        let spread = hi.abs_diff(lo);
        let checkpoint = held >= SPREAD_MIN && held.is_power_of_two();
        let slots = if spread > (SPREAD * held + SPREAD_MIN) as u64 {
            Slots::Scattered
        } else if checkpoint && spread <= (SPREAD * held) as u64 {
            Slots::Near
        } else {
            *self.cells.hasher()
        };
        if slots != *self.cells.hasher() {
            let rehashed = HashMap::with_capacity_and_hasher(held, slots);
            let cells = std::mem::replace(&mut self.cells, rehashed);
            self.cells.extend(cells);
        }
    }

    /// Regroups the cells for a grid `factor` times coarser.
    fn coarsen(&mut self, factor: i64) {
        let old = std::mem::take(&mut self.cells);
        self.span = None;
        for (k, delta) in old {
            self.put(ceil_div(k, factor), &delta);
        }
    }

    fn len(&self) -> usize {
        self.cells.len()
    }
}

/// Sums the changes to the same cell and state, dropping those that cancel out.
fn net(changes: &mut Vec<Change>) {
    changes.sort_unstable_by_key(|&(k, state, _)| (k, state));
    changes.dedup_by(|later, first| {
        let same = (later.0, later.1) == (first.0, first.1);
        if same {
            first.2 += later.2;
        }
        same
    });
    changes.retain(|c| c.2 != 0);
}

/// `a / b` rounded up (`b` > 0).
fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// `Grids::expiries` is never rebuilt below this size.
const SWEEP_MIN: usize = 1024;

/// Delta grids by group key, sharing one grid. A change later than the last packet read (a
/// TIME-WAIT timer) waits until the capture reaches it, and is dropped if the capture ends
/// first; those waiting are the endpoints in TIME-WAIT at the moment, never more.
///
/// TIME-WAIT timers wait by connection, so that a new SYN on the 4-tuple can end them all, and
/// a queue of their times says when each is due; a reuse ends a connection's TIME-WAIT by
/// taking the connection out, and its queued time then finds nothing. (Nearly every connection
/// of a busy client ends in TIME-WAIT and most are reused: kept with the other waiting changes,
/// in a tree by time, each was put in and taken out again, about 6 % of the CPU time on the
/// benchmark's many-connection capture.) Other waiting changes are summed by instant, group
/// and state.
///
/// A group is known by its number (the order it was first named in) inside: keys (addresses)
/// are compared once per record, not at every change.
#[derive(Debug, Clone)]
pub struct Grids<K: Ord> {
    origin: i64,
    width: i64,
    numbers: BTreeMap<K, usize>,
    /// By number; a group is held once a change has reached its grid.
    grids: Vec<Option<DeltaGrid>>,
    cells: usize,
    /// The last packet's time.
    clock: i64,
    /// Changes not yet due, by time, other than TIME-WAIT timers: they lie after every packet
    /// read so far.
    pending: BTreeMap<(i64, usize, State), i64>,
    /// By connection id: the groups of its endpoints in TIME-WAIT, each with its timer, while
    /// one of them is still ahead.
    time_waits: FastMap<u64, Timers>,
    /// When each connection's timers fall due (one entry per connection and distinct time);
    /// entries of connections taken out by a reuse are skipped when they come up.
    expiries: BinaryHeap<Reverse<(i64, u64)>>,
    /// `expiries` is rebuilt from `time_waits` when it grows beyond this.
    sweep_at: usize,
    /// One endpoint's changes: those due (by grid index, netted before they touch the grid)
    /// and those to wait for (by time).
    scratch: (Vec<Change>, Vec<Change>),
}

/// A count changed by `.2` in state `.1` at `.0` (a grid index or a time).
type Change = (i64, State, i64);

/// One connection's TIME-WAIT timers, by group: two fit in place (one endpoint counted in
/// all hosts and in its own), so that nearly every connection's take no allocation; more (a
/// simultaneous close) spill over.
type Timers = InlineVec<(usize, i64), 2>;

/// Whether a timer is still ahead of `clock`.
fn any_after(timers: &Timers, clock: i64) -> bool {
    timers.as_slice().iter().any(|&(_, t)| t > clock)
}

impl<K: Ord + Clone> Grids<K> {
    /// Instants `origin + k × width` (`width` is at least 1 ns).
    pub fn new(origin: i64, width: i64) -> Self {
        Grids {
            origin,
            width: width.max(1),
            numbers: BTreeMap::new(),
            grids: Vec::new(),
            cells: 0,
            clock: i64::MIN,
            pending: BTreeMap::new(),
            time_waits: HashMap::default(),
            expiries: BinaryHeap::new(),
            sweep_at: SWEEP_MIN,
            scratch: (Vec::new(), Vec::new()),
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

    /// Whether a change has reached the group's grid.
    pub fn contains(&self, key: &K) -> bool {
        self.numbers
            .get(key)
            .is_some_and(|&n| matches!(self.grids.get(n), Some(Some(_))))
    }

    /// Whether the group has been named (something changed in it, maybe not yet due).
    pub fn named(&self, key: &K) -> bool {
        self.numbers.contains_key(key)
    }

    /// Groups named.
    pub fn named_count(&self) -> usize {
        self.numbers.len()
    }

    /// The groups held, in key order.
    pub fn groups(&self) -> impl Iterator<Item = (&K, &DeltaGrid)> + '_ {
        self.numbers
            .iter()
            .filter_map(|(key, &n)| Some((key, self.grids.get(n)?.as_ref()?)))
    }

    /// The capture has been read up to `now_ns`: changes up to then are due.
    pub fn advance(&mut self, now_ns: i64) {
        if now_ns <= self.clock {
            return;
        }
        self.clock = now_ns;
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > self.clock {
                break;
            }
            let ((t, group, state), delta) = entry.remove_entry();
            self.apply(group, t, state, delta);
        }
        while let Some(&Reverse((t, id))) = self.expiries.peek() {
            if t > self.clock {
                break;
            }
            self.expiries.pop();
            self.expire(id, t);
        }
    }

    /// Connection `id`'s TIME-WAIT timers at `t` are due: its endpoints leave TIME-WAIT. It is
    /// forgotten after its last timer (they come up in time order).
    fn expire(&mut self, id: u64, t: i64) {
        let Some(timers) = self.time_waits.get(&id) else {
            return;
        };
        let timers = timers.clone();
        for &(group, _) in timers.as_slice().iter().filter(|&&(_, at)| at == t) {
            self.apply(group, t, State::TimeWait, -1);
        }
        if !any_after(&timers, t) {
            self.time_waits.remove(&id);
        }
    }

    /// Counts the stays of one endpoint of connection `id` in each of the groups `keys`. A
    /// stay that begins and ends between the same two instants is seen at none of them and
    /// touches nothing.
    pub fn add_stays(&mut self, id: u64, keys: &[K], stays: &[Stay]) {
        let (mut due, mut later) = std::mem::take(&mut self.scratch);
        due.clear();
        later.clear();
        for stay in stays {
            // Due changes by grid index, later ones by time.
            let place = |t: i64| {
                if t > self.clock {
                    Err(t)
                } else {
                    Ok(self.index_of(t))
                }
            };
            let from = place(stay.from_ns);
            let until = match stay.until {
                Until::At(t) => Some(place(t)),
                Until::CaptureEnd => None,
            };
            // Most stays of a short connection begin and end between the same two instants:
            // their two changes would cancel in `net`, so neither is made.
            if from.is_ok() && until == Some(from) {
                continue;
            }
            for (at, delta) in [(Some(from), 1), (until, -1)] {
                match at {
                    Some(Ok(k)) => due.push((k, stay.state, delta)),
                    Some(Err(t)) => later.push((t, stay.state, delta)),
                    None => {}
                }
            }
        }
        net(&mut due);
        // A group is named only once something changes in it: a host whose every stay was
        // too short to count takes no room (a flood from millions of sources has millions).
        let changes = !due.is_empty() || !later.is_empty();
        for key in keys.iter().filter(|_| changes) {
            let group = self.number(key);
            for &(k, state, delta) in &due {
                self.apply_at(group, k, state, delta);
            }
            for &(t, state, delta) in &later {
                if state == State::TimeWait && delta < 0 {
                    self.time_wait_until(id, group, t);
                } else {
                    self.wait(group, t, state, delta);
                }
            }
        }
        self.scratch = (due, later);
        self.sweep_expiries();
    }

    /// An endpoint of connection `id`, counted in `group`, is in TIME-WAIT until `t`, after the
    /// last packet read.
    fn time_wait_until(&mut self, id: u64, group: usize, t: i64) {
        let timers = self.time_waits.entry(id).or_default();
        let queued = timers.as_slice().iter().any(|&(_, at)| at == t);
        timers.push((group, t));
        if !queued {
            self.expiries.push(Reverse((t, id)));
        }
    }

    /// A new SYN reused the 4-tuple of connection `reuse.previous`: every endpoint of it still
    /// counted in TIME-WAIT left it then, not at its timer. When the timer had already passed
    /// before this record came (a long connection reused the 4-tuple), the endpoint that the
    /// reuse names is ended, in `fallback` groups.
    pub fn reused(&mut self, reuse: Reuse, fallback: &[K]) {
        let Some(waiting) = self.time_waits.remove(&reuse.previous) else {
            for k in fallback {
                let group = self.number(k);
                self.cut_short(group, reuse.at_ns, reuse.timer_ns);
            }
            return;
        };
        for &(group, timer) in waiting.as_slice() {
            match (timer > self.clock, reuse.at_ns < timer) {
                // Taken out of `time_waits`, the timer will never count: the new end does.
                (true, true) => self.change(group, reuse.at_ns, State::TimeWait, -1),
                // Not cut short after all (a SYN dated after the timer): the timer still counts.
                (true, false) => self.wait(group, timer, State::TimeWait, -1),
                (false, _) => self.cut_short(group, reuse.at_ns, timer),
            }
        }
    }

    /// An endpoint whose TIME-WAIT counts until `timer` (past, or waiting among the other
    /// changes) left it at `at` instead.
    fn cut_short(&mut self, group: usize, at: i64, timer: i64) {
        if at < timer {
            self.change(group, at, State::TimeWait, -1);
            self.change(group, timer, State::TimeWait, 1);
        }
    }

    /// The group's number, given now if it has none.
    fn number(&mut self, key: &K) -> usize {
        if let Some(&n) = self.numbers.get(key) {
            return n;
        }
        let n = self.grids.len();
        self.grids.push(None);
        self.numbers.insert(key.clone(), n);
        n
    }

    /// Drops the queued times of connections a reuse took out, now and then (amortised): the
    /// queue is made again from the connections still waiting.
    fn sweep_expiries(&mut self) {
        if self.expiries.len() <= self.sweep_at {
            return;
        }
        let mut queued: Vec<Reverse<(i64, u64)>> = Vec::with_capacity(self.time_waits.len());
        for (&id, timers) in &self.time_waits {
            let first = queued.len();
            for &(_, t) in timers.as_slice() {
                let seen = queued.get(first..).unwrap_or_default();
                if t > self.clock && !seen.contains(&Reverse((t, id))) {
                    queued.push(Reverse((t, id)));
                }
            }
        }
        self.expiries = BinaryHeap::from(queued);
        self.sweep_at = (self.expiries.len() * 2).max(SWEEP_MIN);
    }

    fn change(&mut self, group: usize, t: i64, state: State, delta: i64) {
        if t > self.clock {
            self.wait(group, t, state, delta);
        } else {
            self.apply(group, t, state, delta);
        }
    }

    /// Holds a change until the capture reaches `t`; opposite changes cancel.
    fn wait(&mut self, group: usize, t: i64, state: State, delta: i64) {
        match self.pending.entry((t, group, state)) {
            Entry::Vacant(slot) => {
                slot.insert(delta);
            }
            Entry::Occupied(mut slot) => {
                *slot.get_mut() += delta;
                if *slot.get() == 0 {
                    slot.remove();
                }
            }
        }
    }

    fn apply(&mut self, group: usize, t: i64, state: State, delta: i64) {
        let k = self.index_of(t);
        self.apply_at(group, k, state, delta);
    }

    fn apply_at(&mut self, group: usize, k: i64, state: State, delta: i64) {
        let Some(slot) = self.grids.get_mut(group) else {
            return;
        };
        let grid = slot.get_or_insert_with(DeltaGrid::default);
        if grid.add(k, state, delta) {
            self.cells += 1;
        }
    }

    /// Makes the grid `factor` times coarser (the origin stays), merging cells.
    pub fn coarsen(&mut self, factor: i64) {
        let factor = factor.max(2);
        self.width = self.width.saturating_mul(factor);
        self.cells = 0;
        for grid in self.grids.iter_mut().flatten() {
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
            &[()],
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
            g.add_stays(1, &[key], &[stay(State::TimeWait, t, Until::CaptureEnd)]);
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
        g.add_stays(1, &[()], &[stay(State::TimeWait, 50, Until::At(500))]);
        g.add_stays(2, &[()], &[stay(State::TimeWait, 60, Until::At(150))]);
        g.advance(200);
        let (_, grid) = g.groups().next().unwrap();
        let last = grid.running().last().unwrap();
        // The one due at 150 has left; the one due at 500 is still in TIME-WAIT at 200.
        assert_eq!((last.0, last.1.get(State::TimeWait)), (15, 1));
    }

    /// Connection 1's 4-tuple taken again by its client's SYN at 40.
    fn reuse_of_1(timer_ns: i64) -> Reuse {
        Reuse {
            previous: 1,
            side: crate::track::Side::Client,
            at_ns: 40,
            timer_ns,
        }
    }

    #[test]
    fn a_reused_time_wait_ends_at_the_new_syn() {
        // Connection 1 closed simultaneously: both ends in TIME-WAIT, in two groups.
        let mut g: Grids<u8> = Grids::new(0, 10);
        g.advance(100);
        g.add_stays(1, &[0], &[stay(State::TimeWait, 10, Until::At(1000))]);
        g.add_stays(1, &[1], &[stay(State::TimeWait, 10, Until::At(1000))]);
        g.reused(reuse_of_1(1000), &[0]);
        g.advance(2000);
        for (_, grid) in g.groups() {
            let counts: Vec<(i64, i64)> = grid
                .running()
                .map(|(k, c)| (k, c.get(State::TimeWait)))
                .collect();
            // The timer's change and its undoing cancelled: nothing happens at 1000.
            assert_eq!(counts, vec![(1, 1), (4, 0)]);
        }
        // Once the timer has passed, only the named end can be cut short.
        let mut late: Grids<u8> = Grids::new(0, 10);
        late.advance(100);
        late.add_stays(1, &[0], &[stay(State::TimeWait, 10, Until::At(500))]);
        late.add_stays(1, &[1], &[stay(State::TimeWait, 10, Until::At(500))]);
        late.advance(600);
        late.time_waits.clear();
        late.reused(reuse_of_1(500), &[0]);
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
    fn a_reuse_ends_every_time_wait_of_a_simultaneous_close_in_every_group() {
        // Both endpoints in TIME-WAIT, each counted in two groups: four timers, two of them
        // beyond the room kept in place.
        let mut g: Grids<u8> = Grids::new(0, 10);
        g.advance(100);
        for side in [0, 1] {
            g.add_stays(1, &[2, side], &[stay(State::TimeWait, 10, Until::At(1000))]);
        }
        g.reused(reuse_of_1(1000), &[0]);
        g.advance(2000);
        let last: Vec<(u8, i64)> = g
            .groups()
            .map(|(k, grid)| (*k, grid.running().last().unwrap().1.get(State::TimeWait)))
            .collect();
        assert_eq!(last, vec![(0, 0), (1, 0), (2, 0)]);
        let at_40: Vec<i64> = g
            .groups()
            .map(|(_, grid)| {
                grid.running()
                    .find(|(k, _)| *k == 4)
                    .unwrap()
                    .1
                    .get(State::TimeWait)
            })
            .collect();
        assert_eq!(at_40, vec![0, 0, 0], "all left TIME-WAIT at the reuse");
    }

    /// What the grids must hold at the end, worked out directly: every change is listed with
    /// its time; a TIME-WAIT timer still ahead when its 4-tuple is reused is struck out (the
    /// endpoint left at the SYN instead), and at the end the changes up to the clock are summed
    /// per cell. No queue, no netting, no early application.
    #[derive(Default)]
    struct Model {
        clock: i64,
        /// (group, time, state, delta, still counts)
        changes: Vec<(u8, i64, State, i64, bool)>,
        /// By connection: its TIME-WAIT timers still ahead when made (group, time, change).
        timers: HashMap<u64, Vec<(u8, i64, usize)>>,
    }

    impl Model {
        fn change(&mut self, group: u8, t: i64, state: State, delta: i64) -> usize {
            self.changes.push((group, t, state, delta, true));
            self.changes.len() - 1
        }

        fn add_stays(&mut self, id: u64, keys: &[u8], stays: &[Stay]) {
            for stay in stays {
                for &g in keys {
                    self.change(g, stay.from_ns, stay.state, 1);
                    if let Until::At(t) = stay.until {
                        let n = self.change(g, t, stay.state, -1);
                        if stay.state == State::TimeWait && t > self.clock {
                            self.timers.entry(id).or_default().push((g, t, n));
                        }
                    }
                }
            }
        }

        fn reused(&mut self, reuse: Reuse, fallback: &[u8]) {
            let timers = self.timers.remove(&reuse.previous).unwrap_or_default();
            let at = reuse.at_ns;
            if !timers.iter().any(|&(_, t, _)| t > self.clock) {
                for &g in fallback {
                    if at < reuse.timer_ns {
                        self.change(g, at, State::TimeWait, -1);
                        self.change(g, reuse.timer_ns, State::TimeWait, 1);
                    }
                }
                return;
            }
            for (g, t, n) in timers {
                if at >= t {
                    continue;
                }
                self.change(g, at, State::TimeWait, -1);
                if t > self.clock {
                    if let Some(c) = self.changes.get_mut(n) {
                        c.4 = false;
                    }
                } else {
                    self.change(g, t, State::TimeWait, 1);
                }
            }
        }

        /// The counts over time of each group: (grid index, counts) where they change.
        fn steps(&self, width: i64) -> BTreeMap<u8, Vec<(i64, Counts)>> {
            let mut deltas: BTreeMap<u8, BTreeMap<i64, Counts>> = BTreeMap::new();
            for &(g, t, state, delta, counts) in &self.changes {
                if counts && t <= self.clock {
                    let k = ceil_div(t, width);
                    deltas
                        .entry(g)
                        .or_default()
                        .entry(k)
                        .or_default()
                        .add(state, delta);
                }
            }
            let running = |cells: BTreeMap<i64, Counts>| {
                let mut sum = Counts::default();
                steps(cells.into_iter().map(move |(k, delta)| {
                    sum.add_all(&delta);
                    (k, sum)
                }))
            };
            deltas
                .into_iter()
                .map(|(g, cells)| (g, running(cells)))
                .collect()
        }
    }

    /// Running counts (in time order), kept only where they change.
    fn steps(running: impl Iterator<Item = (i64, Counts)>) -> Vec<(i64, Counts)> {
        let mut last = Counts::default();
        let mut out = Vec::new();
        for (k, counts) in running {
            if counts != last {
                out.push((k, counts));
                last = counts;
            }
        }
        out
    }

    /// One record for both: connection `id`'s endpoints (one or two, each in group 0 and a
    /// host group of its own): ESTABLISHED then, when `tw` > 0, TIME-WAIT for `tw`, read at
    /// the clock `now`; and maybe a reuse of an earlier connection.
    #[allow(clippy::too_many_arguments)]
    fn record(
        g: &mut Grids<u8>,
        m: &mut Model,
        id: u64,
        now: i64,
        host: u8,
        sides: u8,
        lengths: (i64, i64),
        reuse: Option<Reuse>,
    ) {
        g.advance(now);
        m.clock = m.clock.max(now);
        let (established, tw) = lengths;
        for side in 0..sides {
            let ends = now - i64::from(side) * 3;
            let mut stays = vec![stay(
                State::Established,
                ends - established,
                Until::At(ends),
            )];
            if tw > 0 {
                stays.push(stay(
                    State::TimeWait,
                    ends,
                    Until::At(ends + tw + i64::from(side)),
                ));
            }
            let keys = [0, host + side];
            g.add_stays(id, &keys, &stays);
            m.add_stays(id, &keys, &stays);
        }
        if let Some(r) = reuse {
            g.reused(r, &[0, host]);
            m.reused(r, &[0, host]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Records of connections that end in TIME-WAIT (one or both ends), some reusing an
        /// earlier one's 4-tuple before, at or after its timer, with the capture ending before
        /// some timers: the grids hold what the direct model says, whether the queue of timers
        /// is rebuilt after every record or only past its size floor.
        #[test]
        fn time_wait_timers_and_reuses_count_as_the_direct_model_says(
            ops in proptest::collection::vec(
                (0i64..40, 1u8..4, 1u8..3, (0i64..60, 0i64..400),
                 proptest::option::of((1u64..20, 0i64..30, 0i64..400))),
                1..120,
            ),
            rebuild_always in proptest::bool::ANY,
        ) {
            let width = 10;
            let mut g: Grids<u8> = Grids::new(0, width);
            let mut m = Model { clock: i64::MIN, ..Model::default() };
            let mut now = 1_000;
            for (id, (gap, host, sides, lengths, reuse)) in (1u64..).zip(ops) {
                now += gap;
                let reuse = reuse
                    .filter(|&(back, _, _)| back < id)
                    .map(|(back, syn_back, timer)| Reuse {
                        previous: id - back,
                        side: crate::track::Side::Server,
                        at_ns: now - syn_back,
                        timer_ns: now - syn_back + timer,
                    });
                if rebuild_always {
                    g.sweep_at = 0;
                }
                record(&mut g, &mut m, id, now, host, sides, lengths, reuse);
            }
            let held: BTreeMap<u8, Vec<(i64, Counts)>> = g
                .groups()
                .map(|(&key, grid)| (key, steps(grid.running())))
                .filter(|(_, steps)| !steps.is_empty())
                .collect();
            let mut expected = m.steps(width);
            expected.retain(|_, steps| !steps.is_empty());
            proptest::prop_assert_eq!(held, expected);
        }
    }

    /// The grid of group 0 after `add_stays` of 1-unit ESTABLISHED stays at each of `starts`.
    fn grid_of(starts: impl Iterator<Item = i64>) -> Grids<u8> {
        let mut g: Grids<u8> = Grids::new(0, 1);
        g.advance(i64::MAX);
        for (id, t) in (1..).zip(starts) {
            g.add_stays(id, &[0], &[stay(State::Established, t, Until::At(t + 1))]);
        }
        g
    }

    #[test]
    fn neighbouring_cells_take_neighbouring_slots_and_far_apart_ones_are_scattered() {
        // A busy capture: cells side by side, each index its own slot.
        let near = grid_of((0..5_000).map(|i| 1_000_000 + 2 * i));
        let (_, grid) = near.groups().next().unwrap();
        assert_eq!(*grid.cells.hasher(), Slots::Near);
        let slot =
            |slots: Slots, k: i64| std::hash::BuildHasher::hash_one(&slots, k) & (u64::MAX >> 7);
        assert_eq!(
            slot(Slots::Near, 1_000_001) - slot(Slots::Near, 1_000_000),
            1
        );
        // Timestamps a power of two apart would all want one slot: they are scattered, and
        // counted the same.
        let far = grid_of((0..5_000).map(|i| i << 20));
        let (_, grid) = far.groups().next().unwrap();
        assert_eq!(*grid.cells.hasher(), Slots::Scattered);
        assert_eq!(far.cells(), 10_000);
        let counts: Vec<i64> = grid
            .running()
            .map(|(_, c)| c.get(State::Established))
            .collect();
        assert_eq!(counts, [1, 0].repeat(5_000));
        // Coarsening starts over with the cells side by side again.
        let mut coarse = far;
        coarse.coarsen(1 << 20);
        let (_, grid) = coarse.groups().next().unwrap();
        assert_eq!(*grid.cells.hasher(), Slots::Near);
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

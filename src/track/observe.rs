//! Small per-endpoint observations that anomaly detection needs and the state machine does not:
//! holes in the sequence space, zero-window periods, and keep-alive probes and their answers.
//! Each is a few words of fixed size, updated on the per-packet path without allocating (the
//! hole list allocates only when a hole appears).

use super::seq::SeqNumber;
use super::state::At;

/// What an endpoint did that is out of the ordinary, kept in a box allocated the first time
/// anything is noted: most connections never need one, and a flood of them should not pay
/// for it.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    /// Sequence space skipped over and not seen filled.
    pub holes: Holes,
    pub zero_window: ZeroWindow,
    /// Keep-alive probes this side sent.
    pub probes: Probes,
    /// The first SYN that carried payload.
    pub syn_data: Option<At>,
    /// The first payload sent beyond this side's own FIN.
    pub data_after_fin: Option<At>,
    /// The first acknowledgment this side sent of data the capture never showed the peer
    /// sending, and how far beyond it went.
    pub ack_of_unseen: Option<(At, u32)>,
    /// The first segment that repeated payload, and the first that skipped sequence space.
    pub first_retransmission: Option<At>,
    pub first_gap: Option<At>,
}

/// The notes of an endpoint that has none.
pub static NO_NOTES: Notes = Notes {
    holes: Holes {
        open: Vec::new(),
        forgotten: 0,
    },
    zero_window: ZeroWindow {
        periods: 0,
        first: None,
        open_since: None,
        total_ns: 0,
        longest_ns: 0,
        probes_received: 0,
    },
    probes: Probes {
        sent: 0,
        answered: 0,
        first: None,
        last: None,
        unanswered_run: 0,
        awaiting_answer: false,
    },
    syn_data: None,
    data_after_fin: None,
    ack_of_unseen: None,
    first_retransmission: None,
    first_gap: None,
};

/// Most holes remembered per direction; beyond it the oldest is forgotten (and counted).
const MAX_HOLES: usize = 8;

/// Ranges of sequence space skipped over by later segments and not (yet) seen filled.
#[derive(Debug, Clone, Default)]
pub struct Holes {
    pub(super) open: Vec<(SeqNumber, u32)>,
    /// Holes forgotten because too many were open at once.
    pub forgotten: u32,
}

impl Holes {
    /// Notes that `[start, start + len)` was skipped.
    pub fn open(&mut self, start: SeqNumber, len: u32) {
        if self.open.len() >= MAX_HOLES {
            self.open.remove(0);
            self.forgotten += 1;
        }
        self.open.push((start, len));
    }

    /// A segment covered `[start, end)`: fills what it overlaps; returns the octets filled.
    pub fn fill(&mut self, start: SeqNumber, end: SeqNumber) -> u32 {
        if self.open.is_empty() {
            return 0;
        }
        let mut filled: u32 = 0;
        let mut kept = Vec::with_capacity(self.open.len() + 1);
        for &(h_start, h_len) in &self.open {
            let h_end = h_start.plus(h_len);
            let from = h_start.latest(start);
            let to = if end.before(h_end) { end } else { h_end };
            if !from.before(to) {
                kept.push((h_start, h_len));
                continue;
            }
            // Saturating: holes recorded across a wrap of the sequence space can overlap, and
            // their sum exceed 2^32.
            filled = to.octets_since(from).saturating_add(filled);
            if h_start.before(from) {
                kept.push((h_start, from.octets_since(h_start)));
            }
            if to.before(h_end) {
                kept.push((to, h_end.octets_since(to)));
            }
        }
        kept.truncate(MAX_HOLES);
        self.open = kept;
        filled
    }

    /// Octets still missing below `acked`: data the receiver acknowledged that the capture
    /// never showed.
    pub fn missing_below(&self, acked: SeqNumber) -> u64 {
        self.open
            .iter()
            .map(|&(start, len)| {
                let end = start.plus(len);
                let to = if acked.before(end) { acked } else { end };
                u64::from(to.octets_since(start))
            })
            .sum()
    }
}

/// Periods in which a side advertised a zero receive window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZeroWindow {
    pub periods: u32,
    pub first: Option<At>,
    /// Start of the period still open.
    pub open_since: Option<At>,
    pub total_ns: i64,
    pub longest_ns: i64,
    /// Probes the peer sent into the closed window.
    pub probes_received: u64,
}

impl ZeroWindow {
    /// Records the window a segment advertised.
    pub fn advertise(&mut self, window: u16, at: At) {
        match (window == 0, self.open_since) {
            (true, None) => {
                self.periods += 1;
                self.first.get_or_insert(at);
                self.open_since = Some(at);
            }
            (false, Some(since)) => self.close(since, at.ns),
            _ => {}
        }
    }

    fn close(&mut self, since: At, end_ns: i64) {
        let d = (end_ns - since.ns).max(0);
        // Saturating: with a clock that jumps back and forth, periods can add up to more than
        // the capture spans.
        self.total_ns = self.total_ns.saturating_add(d);
        self.longest_ns = self.longest_ns.max(d);
        self.open_since = None;
    }

    /// Ends a period still open when the connection ends.
    pub fn close_at_end(&mut self, end_ns: i64) {
        if let Some(since) = self.open_since {
            self.close(since, end_ns);
        }
    }

    pub fn is_closed_window(&self) -> bool {
        self.open_since.is_some()
    }
}

/// Keep-alive probes a side sent and whether the peer answered them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probes {
    pub sent: u64,
    pub answered: u64,
    pub first: Option<At>,
    pub last: Option<At>,
    /// Probes in a row with no answer, up to now.
    pub unanswered_run: u32,
    pub(super) awaiting_answer: bool,
}

impl Probes {
    pub fn sent_one(&mut self, at: At) {
        self.sent += 1;
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.unanswered_run += 1;
        self.awaiting_answer = true;
    }

    /// The peer sent something: the outstanding probe was answered.
    pub fn peer_spoke(&mut self) {
        if self.awaiting_answer {
            self.answered += 1;
            self.awaiting_answer = false;
            self.unanswered_run = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber::new(n)
    }

    #[test]
    fn holes_fill_in_pieces() {
        let mut h = Holes::default();
        h.open(s(100), 100);
        assert_eq!(h.fill(s(120), s(140)), 20);
        assert_eq!(h.missing_below(s(300)), 80);
        assert_eq!(h.fill(s(50), s(130)), 20);
        assert_eq!(h.fill(s(140), s(400)), 60);
        assert_eq!(h.missing_below(s(300)), 0);
    }

    #[test]
    fn holes_across_the_wrap() {
        let mut h = Holes::default();
        h.open(s(u32::MAX - 9), 20);
        assert_eq!(h.missing_below(s(5)), 15);
        assert_eq!(h.fill(s(u32::MAX - 4), s(3)), 8);
        assert_eq!(h.missing_below(s(10)), 12);
    }

    #[test]
    fn overlapping_holes_as_large_as_the_sequence_space_do_not_overflow() {
        // Found by the tracker fuzz target: sequence numbers far apart open holes of up to
        // 2^31 octets that overlap once the space wraps.
        let mut h = Holes::default();
        for _ in 0..3 {
            h.open(s(0), (1 << 31) - 1);
        }
        assert_eq!(h.fill(s(0), s((1 << 31) - 1)), u32::MAX);
    }

    #[test]
    fn zero_window_periods() {
        let mut z = ZeroWindow::default();
        z.advertise(0, At::packet(10, 1));
        z.advertise(0, At::packet(20, 2));
        z.advertise(100, At::packet(50, 3));
        z.advertise(0, At::packet(60, 4));
        z.close_at_end(70);
        assert_eq!((z.periods, z.total_ns, z.longest_ns), (2, 50, 40));
    }

    #[test]
    fn probes_count_runs_without_answers() {
        let mut p = Probes::default();
        p.sent_one(At::packet(1, 1));
        p.peer_spoke();
        p.sent_one(At::packet(2, 2));
        p.sent_one(At::packet(3, 3));
        p.sent_one(At::packet(4, 4));
        assert_eq!((p.sent, p.answered, p.unanswered_run), (4, 1, 3));
    }
}

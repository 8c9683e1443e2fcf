//! The model of a ladder diagram: one connection's segments as arrows between its two
//! endpoints, each side's state changes beside its line, anomalies written at the packet that
//! proves them, retransmissions and never-captured data marked, and long data phases collapsed
//! to one summary row.
//!
//! Built in one pass over the connection's segments, in capture order ([`LadderBuilder::push`]),
//! from the connection's finished [`ConnectionRecord`] (which says where states change and what
//! went wrong). Memory stays bounded by what is drawn: a collapsed phase is only counted.
//! Drawn by [`super::text`] (terminal) and [`super::svg`] (HTML report).

use super::notes::note;
use crate::decode::{Segment, TcpFlags, TcpOptions};
use crate::detect::{Anomaly, Severity};
use crate::report::record::{ConnectionRecord, EndpointAddr};
use crate::track::{Outcome, SeqNumber, Side, State};
use std::collections::{BTreeMap, VecDeque};

/// How a ladder is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderOptions {
    /// Draw every segment: no data phase is collapsed.
    pub expand: bool,
    /// Sequence and acknowledgment numbers as on the wire, not relative to each side's ISN.
    pub absolute_seq: bool,
    /// Plain segments drawn at each end of a data phase before the rest is collapsed.
    pub keep: usize,
    /// Most rows drawn (0: no limit); the rest of the connection is counted in
    /// [`Ladder::omitted`].
    pub max_rows: usize,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            expand: false,
            absolute_seq: false,
            keep: 3,
            max_rows: 0,
        }
    }
}

/// A collapsed phase is drawn as one row only when it hides at least this many rows.
const COLLAPSE_MIN: usize = 4;

/// What one captured segment of the connection shows.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub packet: u64,
    pub time_ns: i64,
    pub from: Side,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload_len: u32,
    pub options: TcpOptions,
}

impl Seen {
    /// The segment as seen from the connection whose client is `client`.
    pub fn new(seg: &Segment<'_>, packet: u64, time_ns: i64, client: EndpointAddr) -> Self {
        let from = if seg.src == client.ip && seg.src_port == client.port {
            Side::Client
        } else {
            Side::Server
        };
        Seen {
            packet,
            time_ns,
            from,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            payload_len: seg.payload_len,
            options: seg.options,
        }
    }

    /// Sequence space the segment occupies: payload, plus one each for SYN and FIN.
    fn space(&self) -> u32 {
        self.payload_len
            .saturating_add(u32::from(self.flags.syn()))
            .saturating_add(u32::from(self.flags.fin()))
    }
}

/// One value for each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BySide<T> {
    pub client: T,
    pub server: T,
}

impl<T> BySide<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }
}

/// A whole ladder, ready to draw.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub id: u64,
    pub client: EndpointAddr,
    pub server: EndpointAddr,
    pub outcome: Outcome,
    pub start_ns: i64,
    pub duration_ns: i64,
    /// Packets of the connection (both directions), drawn or not.
    pub packets: u64,
    /// Each side's state before the first row.
    pub initial: BySide<State>,
    /// Each side's state when the record ended.
    pub last: BySide<State>,
    pub finished_by: &'static str,
    pub absolute_seq: bool,
    /// Sequence numbers are relative to the first seen, not to an ISN (handshake not captured).
    pub midstream: bool,
    pub rows: Vec<Row>,
    /// Anomalies with no packet drawn to attach to, written after the last row.
    pub end_notes: Vec<Note>,
    /// Segments not drawn because of [`LadderOptions::max_rows`].
    pub omitted: u64,
}

impl Ladder {
    /// Data phases drawn as one summary row.
    pub fn collapsed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.kind, RowKind::Collapsed(_)))
            .count()
    }
}

/// One row, top to bottom in time.
#[derive(Debug, Clone)]
pub struct Row {
    pub time_ns: i64,
    /// The packet drawn (the first of a collapsed phase); none for a timer.
    pub packet: Option<u64>,
    pub kind: RowKind,
    /// States entered at this row, in order, by side.
    pub states: Vec<(Side, State)>,
    /// Anomalies proven at this row.
    pub notes: Vec<Note>,
}

impl Row {
    fn plain(&self) -> bool {
        self.states.is_empty()
            && self.notes.is_empty()
            && match &self.kind {
                RowKind::Arrow(a) => {
                    !(a.flags.syn() || a.flags.fin() || a.flags.rst()) && a.mark != Mark::Probe
                }
                RowKind::Unseen { .. } => true,
                RowKind::Collapsed(_) | RowKind::Timer => false,
            }
    }

    /// The states `side` enters at this row, in order.
    pub fn states_of(&self, side: Side) -> impl Iterator<Item = State> + '_ {
        self.states
            .iter()
            .filter(move |(s, _)| *s == side)
            .map(|(_, st)| *st)
    }
}

#[derive(Debug, Clone)]
pub enum RowKind {
    /// A captured segment.
    Arrow(Arrow),
    /// Sequence space the sender skipped: segments the capture never showed.
    Unseen { from: Side, bytes: u64 },
    /// Plain segments drawn as one summary.
    Collapsed(Phase),
    /// A state change on a timer (TIME-WAIT running out), or at a packet not drawn.
    Timer,
}

/// What is unusual about a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    None,
    /// It carries sequence space its sender had already sent.
    Retransmission,
    /// A keep-alive or zero-window probe (one octet, or none, just below the next sequence).
    Probe,
}

/// A captured segment as an arrow.
#[derive(Debug, Clone, Copy)]
pub struct Arrow {
    pub from: Side,
    pub flags: TcpFlags,
    /// Relative to the sender's ISN unless the ladder is absolute.
    pub seq: u32,
    /// Relative to the receiver's ISN unless the ladder is absolute; when the ACK flag is set.
    pub ack: Option<u32>,
    pub len: u32,
    pub zero_window: bool,
    /// Options announced on a SYN.
    pub syn_options: Option<TcpOptions>,
    pub mark: Mark,
}

impl Arrow {
    /// The flags, `+`-joined: `SYN+ACK`, `PSH+ACK`, `RST`; `none` for none at all.
    pub fn flag_names(&self) -> String {
        self.flags.to_string()
    }

    /// What the label must say: flags, seq (not on a bare ACK), ack, payload length.
    pub fn essentials(&self) -> Vec<String> {
        let mut pieces = vec![self.flag_names()];
        let bare_ack = self.len == 0 && !(self.flags.syn() || self.flags.fin() || self.flags.rst());
        if !bare_ack || self.ack.is_none() {
            pieces.push(format!("seq={}", self.seq));
        }
        if let Some(ack) = self.ack {
            pieces.push(format!("ack={ack}"));
        }
        if self.len > 0 {
            pieces.push(format!("len={}", self.len));
        }
        pieces
    }

    /// What the label says when there is room: a zero window, the SYN's options.
    pub fn extras(&self) -> Vec<String> {
        let mut pieces = Vec::new();
        if self.zero_window {
            pieces.push("win=0".to_owned());
        }
        if let Some(o) = self.syn_options {
            pieces.extend(o.mss.map(|m| format!("mss={m}")));
            pieces.extend(o.window_scale.map(|w| format!("ws={w}")));
            pieces.extend(o.sack_permitted.then(|| "sack".to_owned()));
            pieces.extend(o.timestamp.map(|_| "ts".to_owned()));
        }
        pieces
    }

    /// The label in at most `budget` characters: the essentials always (cut with `…` if need
    /// be), the extras while they fit.
    pub fn label(&self, budget: usize) -> String {
        let mut text = self.essentials().join(" ");
        for piece in self.extras() {
            if text.chars().count() + 1 + piece.chars().count() > budget {
                break;
            }
            text.push(' ');
            text.push_str(&piece);
        }
        fit(&text, budget)
    }

    /// What the arrow's shaft says, if anything: `retransmission`, `probe`.
    pub fn shaft_text(&self) -> Option<&'static str> {
        match self.mark {
            Mark::None => None,
            Mark::Retransmission => Some("retransmission"),
            Mark::Probe if self.len == 0 => Some("probe"),
            Mark::Probe => Some("probe (1 byte)"),
        }
    }
}

/// `text` cut to `budget` characters, ending in `…` when cut.
pub fn fit(text: &str, budget: usize) -> String {
    if text.chars().count() <= budget {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(budget.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Plain segments summarised in one row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    /// Rows hidden: segments and runs of never-captured data.
    pub rows: u64,
    pub segments: u64,
    /// Payload carried, by sender.
    pub bytes: BySide<u64>,
    pub retransmissions: u64,
    /// Sequence space skipped (never captured).
    pub unseen_bytes: u64,
    pub first_packet: u64,
    pub last_packet: u64,
    pub first_ns: i64,
    pub last_ns: i64,
}

impl Phase {
    fn add(&mut self, row: &Row) {
        if self.rows == 0 {
            self.first_ns = row.time_ns;
        }
        self.rows += 1;
        if let Some(p) = row.packet {
            if self.first_packet == 0 {
                self.first_packet = p;
            }
            self.last_packet = p;
        }
        self.last_ns = row.time_ns;
        match &row.kind {
            RowKind::Arrow(a) => {
                self.segments += 1;
                *self.bytes.get_mut(a.from) += u64::from(a.len);
                self.retransmissions += u64::from(a.mark == Mark::Retransmission);
            }
            RowKind::Unseen { bytes, .. } => self.unseen_bytes += bytes,
            RowKind::Collapsed(_) | RowKind::Timer => {}
        }
    }
}

/// An anomaly written into the ladder.
#[derive(Debug, Clone)]
pub struct Note {
    pub severity: Severity,
    pub kind: &'static str,
    pub text: String,
}

impl Note {
    fn new(a: &Anomaly, record: &ConnectionRecord) -> Self {
        Note {
            severity: a.severity,
            kind: a.kind.name(),
            text: note(a, record),
        }
    }
}

/// What the ladder knows of one direction's sequence space.
#[derive(Debug, Clone, Copy, Default)]
struct Direction {
    /// Sequence numbers are shown relative to this (the ISN).
    base: Option<SeqNumber>,
    /// One past the highest sequence number sent.
    high: Option<SeqNumber>,
    /// The last window this side advertised was zero.
    zero_window: bool,
}

/// A run of plain rows, kept short: the first `keep` and last `keep` rows, the middle counted.
#[derive(Debug, Default)]
struct Run {
    head: Vec<Row>,
    middle: Vec<Row>,
    phase: Phase,
    tail: VecDeque<Row>,
}

/// Builds a [`Ladder`] from a record and the connection's segments in capture order.
#[derive(Debug)]
pub struct LadderBuilder {
    ladder: Ladder,
    options: LadderOptions,
    /// State changes by the packet that made them, with their time.
    states: BTreeMap<u64, Vec<(Side, State, i64)>>,
    /// State changes on timers, in time order.
    timers: VecDeque<(i64, Side, State)>,
    notes: BTreeMap<u64, Vec<Note>>,
    dirs: BySide<Direction>,
    run: Run,
}

impl LadderBuilder {
    pub fn new(record: &ConnectionRecord, options: LadderOptions) -> Self {
        let mut states: BTreeMap<u64, Vec<(Side, State, i64)>> = BTreeMap::new();
        let mut timers = Vec::new();
        for (side, timeline) in [
            (Side::Client, &record.states.client),
            (Side::Server, &record.states.server),
        ] {
            for t in &timeline.transitions {
                match t.at.packet {
                    Some(p) => states
                        .entry(p)
                        .or_default()
                        .push((side, t.to, t.at.time_ns)),
                    None => timers.push((t.at.time_ns, side, t.to)),
                }
            }
        }
        timers.sort_by_key(|(ns, side, _)| (*ns, *side));
        let mut notes: BTreeMap<u64, Vec<Note>> = BTreeMap::new();
        let mut end_notes = Vec::new();
        for a in &record.anomalies {
            match a.packets.as_slice().iter().max() {
                Some(p) => notes.entry(*p).or_default().push(Note::new(a, record)),
                None => end_notes.push(Note::new(a, record)),
            }
        }
        let base = |isn: Option<u32>| Direction {
            base: isn.map(SeqNumber::new),
            ..Direction::default()
        };
        LadderBuilder {
            ladder: Ladder {
                id: record.id,
                client: record.client,
                server: record.server,
                outcome: record.outcome,
                start_ns: record.first.time_ns,
                duration_ns: record.duration_ns,
                packets: record.client_sent.packets + record.server_sent.packets,
                initial: BySide {
                    client: record.states.client.initial,
                    server: record.states.server.initial,
                },
                last: BySide {
                    client: record.states.client.final_state,
                    server: record.states.server.final_state,
                },
                finished_by: record.finished_by,
                absolute_seq: options.absolute_seq,
                midstream: record.midstream,
                rows: Vec::new(),
                end_notes,
                omitted: 0,
            },
            options,
            states,
            timers: timers.into(),
            notes,
            dirs: BySide {
                client: base(record.handshake.client_isn),
                server: base(record.handshake.server_isn),
            },
            run: Run::default(),
        }
    }

    /// The next segment of the connection, in capture order.
    pub fn push(&mut self, seen: &Seen) {
        self.timers_until(seen.time_ns);
        if let Some(bytes) = self.skipped(seen) {
            let row = Row {
                time_ns: seen.time_ns,
                packet: None,
                kind: RowKind::Unseen {
                    from: seen.from,
                    bytes,
                },
                states: Vec::new(),
                notes: Vec::new(),
            };
            self.add(row);
        }
        let arrow = self.arrow(seen);
        let states = self
            .states
            .remove(&seen.packet)
            .unwrap_or_default()
            .into_iter()
            .map(|(side, state, _)| (side, state))
            .collect();
        let row = Row {
            time_ns: seen.time_ns,
            packet: Some(seen.packet),
            kind: RowKind::Arrow(arrow),
            states,
            notes: self.notes.remove(&seen.packet).unwrap_or_default(),
        };
        self.add(row);
    }

    /// The finished ladder: leftover state changes (timers, packets never drawn) and notes
    /// go at the end, in time order.
    pub fn finish(mut self) -> Ladder {
        let leftovers: Vec<(i64, Side, State)> = std::mem::take(&mut self.states)
            .into_values()
            .flatten()
            .map(|(side, state, ns)| (ns, side, state))
            .collect();
        self.timers.extend(leftovers);
        self.timers
            .make_contiguous()
            .sort_by_key(|(ns, side, _)| (*ns, *side));
        self.timers_until(i64::MAX);
        self.flush_run();
        for notes in std::mem::take(&mut self.notes).into_values() {
            self.ladder.end_notes.extend(notes);
        }
        self.ladder
    }

    /// Timer rows due before `ns`: one row per instant.
    fn timers_until(&mut self, ns: i64) {
        while let Some(&(at, _, _)) = self.timers.front() {
            if at > ns {
                break;
            }
            let mut states = Vec::new();
            while let Some(&(t, side, state)) = self.timers.front() {
                if t != at {
                    break;
                }
                states.push((side, state));
                self.timers.pop_front();
            }
            let row = Row {
                time_ns: at,
                packet: None,
                kind: RowKind::Timer,
                states,
                notes: Vec::new(),
            };
            self.add(row);
        }
    }

    /// Sequence space the sender skipped before this segment, if any.
    fn skipped(&self, seen: &Seen) -> Option<u64> {
        let high = self.dirs.get(seen.from).high?;
        let gap = SeqNumber::new(seen.seq).octets_since(high);
        (gap > 0 && !seen.flags.syn() && !seen.flags.rst()).then_some(u64::from(gap))
    }

    /// The arrow for a segment; updates what is known of both directions.
    fn arrow(&mut self, seen: &Seen) -> Arrow {
        let mark = self.advance(seen);
        let ack = seen.flags.ack().then(|| {
            let peer = self.dirs.get_mut(seen.from.peer());
            peer.base.get_or_insert(SeqNumber::new(seen.ack).minus(1));
            self.shown(seen.ack, seen.from.peer())
        });
        Arrow {
            from: seen.from,
            flags: seen.flags,
            seq: self.shown(seen.seq, seen.from),
            ack,
            len: seen.payload_len,
            zero_window: seen.window == 0 && !seen.flags.rst(),
            syn_options: seen.flags.syn().then_some(seen.options),
            mark,
        }
    }

    /// Moves the sender's direction past the segment; what is unusual about it.
    fn advance(&mut self, seen: &Seen) -> Mark {
        let peer_zero = self.dirs.get(seen.from.peer()).zero_window;
        let d = self.dirs.get_mut(seen.from);
        let seq = SeqNumber::new(seen.seq);
        d.base
            .get_or_insert(seq.minus(u32::from(!seen.flags.syn())));
        let mark = classify(seen, d.high, peer_zero);
        let end = seq.plus(seen.space());
        if d.high.is_none_or(|h| end.after(h)) && !seen.flags.rst() {
            d.high = Some(end);
        }
        d.zero_window = seen.window == 0 && !seen.flags.rst();
        mark
    }

    /// A sequence number of `side`'s space as drawn: relative to its base unless absolute.
    fn shown(&self, n: u32, side: Side) -> u32 {
        match self.dirs.get(side).base {
            Some(b) if !self.options.absolute_seq => SeqNumber::new(n).distance_from(b) as u32,
            _ => n,
        }
    }

    /// Adds a row: plain rows gather in the current run, anything else ends it.
    fn add(&mut self, row: Row) {
        if self.options.expand || !row.plain() {
            self.flush_run();
            self.emit(row);
            return;
        }
        let keep = self.options.keep;
        let run = &mut self.run;
        if run.head.len() < keep {
            run.head.push(row);
            return;
        }
        run.tail.push_back(row);
        if run.tail.len() <= keep {
            return;
        }
        if let Some(old) = run.tail.pop_front() {
            run.phase.add(&old);
            if run.middle.len() < COLLAPSE_MIN {
                run.middle.push(old);
            }
        }
    }

    /// Ends the current run: its head, its middle (collapsed when long enough), its tail.
    fn flush_run(&mut self) {
        let run = std::mem::take(&mut self.run);
        let collapse = run.phase.rows >= COLLAPSE_MIN as u64;
        for row in run.head {
            self.emit(row);
        }
        if collapse {
            self.emit(Row {
                time_ns: run.phase.first_ns,
                packet: Some(run.phase.first_packet),
                kind: RowKind::Collapsed(run.phase),
                states: Vec::new(),
                notes: Vec::new(),
            });
        } else {
            for row in run.middle {
                self.emit(row);
            }
        }
        for row in run.tail {
            self.emit(row);
        }
    }

    fn emit(&mut self, row: Row) {
        let max = self.options.max_rows;
        if max > 0 && self.ladder.rows.len() >= max {
            self.ladder.omitted += match &row.kind {
                RowKind::Arrow(_) => 1,
                RowKind::Collapsed(p) => p.segments,
                RowKind::Unseen { .. } | RowKind::Timer => 0,
            };
            self.ladder.end_notes.extend(row.notes);
            return;
        }
        self.ladder.rows.push(row);
    }
}

/// Retransmission (sequence space already sent), probe (0 or 1 octet just below the next
/// sequence number, no SYN or FIN), or nothing special.
fn classify(seen: &Seen, high: Option<SeqNumber>, peer_zero_window: bool) -> Mark {
    let Some(high) = high else {
        return Mark::None;
    };
    let seq = SeqNumber::new(seen.seq);
    let control = seen.flags.syn() || seen.flags.fin() || seen.flags.rst();
    if !control && seen.payload_len <= 1 && seq == high.minus(1) {
        return Mark::Probe;
    }
    if peer_zero_window && !control && seen.payload_len <= 1 && seq == high {
        return Mark::Probe;
    }
    let occupies = seen.space() > 0 && !seen.flags.rst();
    if occupies && seq.plus(seen.space()).at_or_before(high) {
        Mark::Retransmission
    } else {
        Mark::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(seq: u32, flags: u8, len: u32) -> Seen {
        Seen {
            packet: 1,
            time_ns: 0,
            from: Side::Client,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            window: 100,
            payload_len: len,
            options: TcpOptions::default(),
        }
    }

    #[test]
    fn retransmissions_and_probes() {
        let high = Some(SeqNumber::new(1000));
        let data = TcpFlags::ACK | TcpFlags::PSH;
        assert_eq!(
            classify(&seen(900, data, 100), high, false),
            Mark::Retransmission
        );
        assert_eq!(classify(&seen(950, data, 100), high, false), Mark::None);
        assert_eq!(classify(&seen(1000, data, 100), high, false), Mark::None);
        assert_eq!(
            classify(&seen(999, TcpFlags::ACK, 0), high, false),
            Mark::Probe
        );
        assert_eq!(
            classify(&seen(999, TcpFlags::ACK, 1), high, false),
            Mark::Probe
        );
        assert_eq!(classify(&seen(1000, data, 1), high, true), Mark::Probe);
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        assert_eq!(
            classify(&seen(999, fin, 0), high, false),
            Mark::Retransmission
        );
        assert_eq!(
            classify(&seen(999, TcpFlags::RST, 0), high, false),
            Mark::None
        );
        assert_eq!(classify(&seen(5, data, 10), None, false), Mark::None);
        // Across the wrap of sequence space.
        let high = Some(SeqNumber::new(10));
        assert_eq!(
            classify(&seen(u32::MAX - 5, data, 10), high, false),
            Mark::Retransmission
        );
    }

    #[test]
    fn labels_keep_the_essentials_and_fit() {
        let arrow = Arrow {
            from: Side::Server,
            flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            seq: 0,
            ack: Some(1),
            len: 0,
            zero_window: false,
            syn_options: Some(TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamp: Some((1, 2)),
            }),
            mark: Mark::None,
        };
        assert_eq!(arrow.label(80), "SYN+ACK seq=0 ack=1 mss=1460 ws=7 sack ts");
        assert_eq!(arrow.label(24), "SYN+ACK seq=0 ack=1");
        assert_eq!(arrow.label(10), "SYN+ACK s…");
        let bare = Arrow {
            flags: TcpFlags(TcpFlags::ACK),
            syn_options: None,
            zero_window: true,
            ack: Some(45),
            ..arrow
        };
        assert_eq!(bare.label(80), "ACK ack=45 win=0");
        let none = Arrow {
            flags: TcpFlags(0),
            ack: None,
            ..bare
        };
        assert_eq!(none.flag_names(), "none");
        assert_eq!(none.label(80), "none seq=0 win=0");
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcdef", 0), "…");
    }
}

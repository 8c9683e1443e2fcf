//! The ladder in a terminal: time down the page, the client's line on the left and the
//! server's on the right, one arrow per segment with its label above it, each side's states
//! written beside its line as they change, and anomalies as call-outs under the row that proves
//! them. 80 columns by default; colour only when asked (see `tcplife diagram --color`).
//!
//! ```text
//! time / packet          client                                    server
//!                        CLOSED │                                    │ LISTEN
//! +0 ns               #1        │ SYN seq=0 mss=1460 ws=10 sack ts   │
//! 23:43:38.669596      SYN-SENT ├───────────────────────────────────▶│
//! ```

use super::ladder::{Arrow, Ladder, Note, Phase, Row, RowKind, fit};
use crate::detect::Severity;
use crate::time::{Human, Rfc3339};
use crate::track::{Side, State};
use std::fmt::Write as _;

/// How the ladder is laid out and coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// Total width in columns (at least [`MIN_WIDTH`]).
    pub width: usize,
    /// ANSI colours.
    pub color: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            width: 80,
            color: false,
        }
    }
}

/// Narrower than this leaves no room for labels.
pub const MIN_WIDTH: usize = 64;
/// The widest state name, SYN-RECEIVED.
const STATE_W: usize = 12;
/// The clock, `23:43:38.669596`.
const CLOCK_W: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Dim,
    Title,
    State,
    Client,
    Server,
    Mark,
    Info,
    Warning,
    Alert,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Dim => "2",
            Style::Title | Style::State => "1",
            Style::Client => "36",
            Style::Server => "35",
            Style::Mark => "31",
            Style::Info => "34",
            Style::Warning => "33",
            Style::Alert => "1;31",
        }
    }

    fn of(side: Side) -> Style {
        match side {
            Side::Client => Style::Client,
            Side::Server => Style::Server,
        }
    }

    fn of_severity(s: Severity) -> Style {
        match s {
            Severity::Info => Style::Info,
            Severity::Warning => Style::Warning,
            Severity::Alert => Style::Alert,
        }
    }
}

/// One line of the picture: a character and a style per column.
struct Canvas {
    cells: Vec<(char, Style)>,
}

impl Canvas {
    fn new(width: usize) -> Self {
        Canvas {
            cells: vec![(' ', Style::Plain); width],
        }
    }

    /// Writes `text` from column `col`, clipped at the edge.
    fn put(&mut self, col: usize, text: &str, style: Style) {
        for (cell, c) in self.cells.iter_mut().skip(col).zip(text.chars()) {
            *cell = (c, style);
        }
    }

    /// Writes `text` so that it ends just before column `end`.
    fn put_right(&mut self, end: usize, text: &str, style: Style) {
        let len = text.chars().count();
        self.put(end.saturating_sub(len), text, style);
    }

    fn render(&self, color: bool, out: &mut String) {
        let used = self
            .cells
            .iter()
            .rposition(|(c, _)| *c != ' ')
            .map_or(0, |i| i + 1);
        let mut current = Style::Plain;
        for &(c, style) in self.cells.iter().take(used) {
            if color && style != current && c != ' ' {
                if current != Style::Plain {
                    out.push_str("\x1b[0m");
                }
                if style != Style::Plain {
                    let _ = write!(out, "\x1b[{}m", style.ansi());
                }
                current = style;
            }
            out.push(c);
        }
        if color && current != Style::Plain {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
}

/// Where things go across the page.
struct Layout {
    width: usize,
    /// Width of the time column (clock, or relative time and packet number).
    time_w: usize,
    /// Column of the client's line.
    left: usize,
    /// Column of the server's line.
    right: usize,
}

impl Layout {
    fn new(ladder: &Ladder, width: usize) -> Self {
        let width = width.max(MIN_WIDTH);
        let time_w = ladder
            .rows
            .iter()
            .map(|r| stamp(ladder, r).chars().count())
            .max()
            .unwrap_or(0)
            .max(CLOCK_W);
        let left = time_w + 2 + STATE_W + 1;
        let right = width.saturating_sub(STATE_W + 2).max(left + 20);
        Layout {
            width: width.max(right + STATE_W + 2),
            time_w,
            left,
            right,
        }
    }

    /// Room between the lines.
    fn inner(&self) -> usize {
        self.right.saturating_sub(self.left + 1)
    }

    /// A line with both vertical lines drawn (`┆` for a collapsed phase).
    fn blank(&self, rail: char) -> Canvas {
        let mut c = Canvas::new(self.width);
        c.put(self.left, &rail.to_string(), Style::Dim);
        c.put(self.right, &rail.to_string(), Style::Dim);
        c
    }

    fn state(&self, c: &mut Canvas, side: Side, state: State) {
        match side {
            Side::Client => c.put_right(self.left - 1, state.name(), Style::State),
            Side::Server => c.put(self.right + 2, state.name(), Style::State),
        }
    }
}

/// The ladder as text, ready to print.
pub fn render(ladder: &Ladder, options: TextOptions) -> String {
    let layout = Layout::new(ladder, options.width);
    let mut lines = header(ladder, &layout);
    for row in &ladder.rows {
        row_lines(ladder, row, &layout, &mut lines);
    }
    footer(ladder, &layout, &mut lines);
    let mut out = String::new();
    for line in &lines {
        line.render(options.color, &mut out);
    }
    out
}

fn text_line(layout: &Layout, col: usize, text: &str, style: Style) -> Canvas {
    let mut c = Canvas::new(layout.width);
    c.put(col, &fit(text, layout.width.saturating_sub(col)), style);
    c
}

fn header(ladder: &Ladder, layout: &Layout) -> Vec<Canvas> {
    let title = format!(
        "connection #{}: {} → {}, {}",
        ladder.id,
        super::endpoint(ladder.client),
        super::endpoint(ladder.server),
        ladder.outcome.name()
    );
    let when = format!(
        "began {}, lasted {}, {} packet{}",
        Rfc3339(ladder.start_ns),
        Human(ladder.duration_ns),
        ladder.packets,
        if ladder.packets == 1 { "" } else { "s" }
    );
    let mut lines = vec![
        text_line(layout, 0, &title, Style::Title),
        text_line(layout, 0, &when, Style::Plain),
        text_line(layout, 0, &numbering(ladder), Style::Dim),
        Canvas::new(layout.width),
    ];
    let mut names = Canvas::new(layout.width);
    names.put(0, "time / packet", Style::Dim);
    names.put_right(layout.left + 1, "client", Style::Client);
    names.put(layout.right, "server", Style::Server);
    lines.push(names);
    let mut initial = layout.blank('│');
    layout.state(&mut initial, Side::Client, ladder.initial.client);
    layout.state(&mut initial, Side::Server, ladder.initial.server);
    lines.push(initial);
    lines
}

/// How sequence numbers are shown, in one line.
pub fn numbering(ladder: &Ladder) -> String {
    if ladder.absolute_seq {
        "seq/ack as on the wire".to_owned()
    } else if ladder.midstream {
        "seq/ack relative to the first seen (no handshake captured; --absolute-seq: raw)".to_owned()
    } else {
        "seq/ack relative to each side's ISN (--absolute-seq for raw numbers)".to_owned()
    }
}

/// `+3.33 s  #14`: time since the first packet and the packet number.
fn stamp(ladder: &Ladder, row: &Row) -> String {
    let rel = relative(ladder, row.time_ns);
    match row.packet {
        Some(p) => format!("{rel} #{p}"),
        None => rel,
    }
}

/// Time since the connection's first packet.
pub fn relative(ladder: &Ladder, ns: i64) -> String {
    since(ns.saturating_sub(ladder.start_ns))
}

/// `+0`, `+27 µs`, `+3.33 s`: a time after some start.
pub fn since(ns: i64) -> String {
    match ns {
        0 => "+0".to_owned(),
        d => format!("+{}", Human(d)),
    }
}

/// `23:43:38.669596`, the time of day in UTC.
pub fn clock(ns: i64) -> String {
    let full = Rfc3339(ns).to_string();
    full.get(11..26).unwrap_or(&full).to_owned()
}

/// The time column of a row's first two lines.
fn put_time(ladder: &Ladder, row: &Row, layout: &Layout, first: &mut Canvas, second: &mut Canvas) {
    let rel = relative(ladder, row.time_ns);
    first.put(0, &rel, Style::Dim);
    if let Some(p) = row.packet {
        first.put_right(layout.time_w, &format!("#{p}"), Style::Dim);
    }
    second.put(0, &clock(row.time_ns), Style::Dim);
}

fn row_lines(ladder: &Ladder, row: &Row, layout: &Layout, lines: &mut Vec<Canvas>) {
    let mut body = match &row.kind {
        RowKind::Arrow(a) => arrow_lines(a, layout),
        RowKind::Unseen { from, bytes } => unseen_lines(*from, *bytes, layout),
        RowKind::Collapsed(p) => phase_lines(p, layout),
        RowKind::Timer => timer_lines(layout),
    };
    if let [first, second, ..] = body.as_mut_slice() {
        put_time(ladder, row, layout, first, second);
    }
    let state_line = body.len().saturating_sub(1).min(1);
    for side in [Side::Client, Side::Server] {
        for (i, state) in row.states_of(side).enumerate() {
            let at = state_line + i;
            while body.len() <= at {
                body.push(layout.blank('│'));
            }
            if let Some(line) = body.get_mut(at) {
                layout.state(line, side, state);
            }
        }
    }
    lines.extend(body);
    for note in &row.notes {
        note_lines(note, layout, lines);
    }
}

fn arrow_lines(a: &Arrow, layout: &Layout) -> Vec<Canvas> {
    let inner = layout.inner();
    let style = if a.shaft_text().is_some() {
        Style::Mark
    } else {
        Style::of(a.from)
    };
    let mut label = layout.blank('│');
    let text = a.label(inner.saturating_sub(2));
    match a.from {
        Side::Client => label.put(layout.left + 2, &text, Style::Plain),
        Side::Server => label.put_right(layout.right - 1, &text, Style::Plain),
    }
    let shaft = if a.shaft_text().is_some() {
        '╌'
    } else {
        '─'
    };
    let mut line = layout.blank('│');
    line.put(
        layout.left + 1,
        &shaft_of(shaft, inner, a.shaft_text()),
        style,
    );
    match a.from {
        Side::Client => {
            line.put(layout.left, "├", style);
            line.put(layout.right - 1, "▶", style);
        }
        Side::Server => {
            line.put(layout.left + 1, "◀", style);
            line.put(layout.right, "┤", style);
        }
    }
    vec![label, line]
}

/// `len` shaft characters with `text` in the middle.
fn shaft_of(c: char, len: usize, text: Option<&str>) -> String {
    let Some(text) = text else {
        return c.to_string().repeat(len);
    };
    let text = format!(" {} ", fit(text, len.saturating_sub(6)));
    let n = text.chars().count();
    let before = len.saturating_sub(n) / 2;
    let after = len.saturating_sub(n + before);
    format!(
        "{}{text}{}",
        c.to_string().repeat(before),
        c.to_string().repeat(after)
    )
}

fn unseen_lines(from: Side, bytes: u64, layout: &Layout) -> Vec<Canvas> {
    let text = format!("{} never captured", super::bytes(bytes));
    let mut label = layout.blank('│');
    match from {
        Side::Client => label.put(layout.left + 2, &text, Style::Dim),
        Side::Server => label.put_right(layout.right - 1, &text, Style::Dim),
    }
    let mut line = layout.blank('│');
    line.put(
        layout.left + 1,
        &shaft_of('┄', layout.inner(), None),
        Style::Dim,
    );
    match from {
        Side::Client => line.put(layout.right - 1, "▷", Style::Dim),
        Side::Server => line.put(layout.left + 1, "◁", Style::Dim),
    }
    vec![label, line]
}

/// The summary of a collapsed phase, centred between dotted lines.
pub fn phase_text(p: &Phase) -> Vec<String> {
    let mut lines = vec![format!(
        "… {} segments in {} …",
        p.segments,
        Human(p.last_ns.saturating_sub(p.first_ns))
    )];
    let mut second: Vec<String> = [("→", p.bytes.client), ("←", p.bytes.server)]
        .iter()
        .filter(|(_, b)| *b > 0)
        .map(|(arrow, b)| format!("{} {arrow}", super::bytes(*b)))
        .collect();
    second.push(format!("#{}–{}", p.first_packet, p.last_packet));
    lines.push(second.join(" · "));
    let mut extra = Vec::new();
    if p.retransmissions > 0 {
        extra.push(format!("{} retransmitted", p.retransmissions));
    }
    if p.unseen_bytes > 0 {
        extra.push(format!("{} never captured", super::bytes(p.unseen_bytes)));
    }
    if !extra.is_empty() {
        lines.push(extra.join(" · "));
    }
    lines
}

fn phase_lines(p: &Phase, layout: &Layout) -> Vec<Canvas> {
    let inner = layout.inner();
    phase_text(p)
        .iter()
        .map(|t| {
            let mut line = layout.blank('┆');
            let t = fit(t, inner.saturating_sub(2));
            let pad = inner.saturating_sub(t.chars().count()) / 2;
            line.put(layout.left + 1 + pad, &t, Style::Dim);
            line
        })
        .collect()
}

fn timer_lines(layout: &Layout) -> Vec<Canvas> {
    vec![layout.blank('│'), layout.blank('│')]
}

/// A call-out under the row that proves it, wrapped to the page.
fn note_lines(note: &Note, layout: &Layout, lines: &mut Vec<Canvas>) {
    let col = layout.time_w + 2;
    let tag = format!("▲ {} ", note.severity.name().to_uppercase());
    let indent = col + tag.chars().count();
    let room = layout.width.saturating_sub(indent).max(20);
    let text = format!("{} · {}", note.text, note.kind);
    for (i, chunk) in wrap(&text, room).iter().enumerate() {
        let mut line = Canvas::new(layout.width);
        if i == 0 {
            line.put(col, &tag, Style::of_severity(note.severity));
        }
        line.put(indent, chunk, Style::of_severity(note.severity));
        lines.push(line);
    }
}

/// Words of `text` in lines of at most `width` characters (a longer word is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed = current.chars().count() + usize::from(!current.is_empty());
        if !current.is_empty() && needed + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&fit(word, width));
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn footer(ladder: &Ladder, layout: &Layout, lines: &mut Vec<Canvas>) {
    let mut last = layout.blank('│');
    last.put(0, &since(ladder.duration_ns), Style::Dim);
    layout.state(&mut last, Side::Client, ladder.last.client);
    layout.state(&mut last, Side::Server, ladder.last.server);
    lines.push(last);
    let end = format!("end: {}", finished_by(ladder.finished_by));
    lines.push(text_line(layout, 0, &end, Style::Dim));
    for note in &ladder.end_notes {
        note_lines(note, layout, lines);
    }
    if ladder.omitted > 0 {
        let text = format!("… {} more segments not drawn", ladder.omitted);
        lines.push(text_line(layout, 0, &text, Style::Dim));
    }
    let collapsed = ladder.collapsed();
    if collapsed > 0 {
        let text = format!(
            "{collapsed} data phase{} collapsed: --expand draws every segment",
            if collapsed == 1 { "" } else { "s" }
        );
        lines.push(text_line(layout, 0, &text, Style::Dim));
    }
}

/// Why the record ended, in words.
pub fn finished_by(reason: &str) -> &'static str {
    match reason {
        "time_wait_expired" => "TIME-WAIT ran out",
        "closed" => "both sides closed",
        "idle_timeout" => "idle past --idle-timeout",
        "evicted" => "evicted from a full flow table (--max-connections)",
        "new_incarnation" => "a new connection took over the 4-tuple",
        _ => "the capture ended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 4), vec!["abc…"]);
        assert!(wrap("", 4).is_empty());
    }

    #[test]
    fn shafts_centre_their_text() {
        assert_eq!(shaft_of('─', 10, None), "──────────");
        assert_eq!(shaft_of('╌', 12, Some("ab")), "╌╌╌╌ ab ╌╌╌╌");
    }

    #[test]
    fn clock_is_time_of_day() {
        assert_eq!(clock(1_795_304_618_669_596_000), "23:43:38.669596");
    }
}

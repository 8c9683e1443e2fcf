//! The ladder as inline SVG, for the HTML report: the same model and the same labels as the
//! terminal picture, drawn with sloping arrows (time passes while a segment travels), states
//! beside each line, and anomalies as coloured call-outs. Colours come from the report's CSS.

use super::html::esc;
use super::ladder::{Arrow, Ladder, Note, Phase, Row, RowKind, fit};
use super::text::{clock, finished_by, phase_text, relative};
use crate::track::{Side, State};
use std::fmt::Write as _;

const WIDTH: f64 = 860.0;
/// The client's and the server's lines.
const LEFT: f64 = 270.0;
const RIGHT: f64 = 730.0;
/// Vertical space of one line of text.
const LINE: f64 = 14.0;
/// How far an arrow drops while it crosses.
const DROP: f64 = 12.0;
/// Label characters that fit between the lines.
const LABEL_CHARS: usize = 70;
/// Note characters that fit on one line.
const NOTE_CHARS: usize = 110;

/// Draws into `out` from the top down.
struct Pen {
    out: String,
    y: f64,
}

impl Pen {
    fn text(&mut self, x: f64, y: f64, class: &str, anchor: &str, text: &str) {
        let _ = write!(
            self.out,
            r#"<text class="{class}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
            esc(text)
        );
    }

    /// Both lines from the current height down `h`.
    fn rails(&mut self, h: f64, dashed: bool) {
        let class = if dashed { "rail dashed" } else { "rail" };
        for x in [LEFT, RIGHT] {
            let _ = write!(
                self.out,
                r#"<line class="{class}" x1="{x}" y1="{:.1}" x2="{x}" y2="{:.1}"/>"#,
                self.y,
                self.y + h
            );
        }
    }

    fn state(&mut self, side: Side, state: State, y: f64) {
        match side {
            Side::Client => self.text(LEFT - 8.0, y + 4.0, "st", "end", state.name()),
            Side::Server => self.text(RIGHT + 8.0, y + 4.0, "st", "start", state.name()),
        }
    }

    fn time(&mut self, ladder: &Ladder, row: &Row) {
        let mut first = relative(ladder, row.time_ns);
        if let Some(p) = row.packet {
            let _ = write!(first, "  #{p}");
        }
        self.text(8.0, self.y + LINE, "t", "start", &first);
        self.text(
            8.0,
            self.y + 2.0 * LINE,
            "t dim",
            "start",
            &clock(row.time_ns),
        );
    }
}

/// The ladder as one `<svg>` element.
pub fn render(ladder: &Ladder) -> String {
    let mut pen = Pen {
        out: String::new(),
        y: 0.0,
    };
    header(&mut pen, ladder);
    for row in &ladder.rows {
        draw_row(&mut pen, ladder, row);
    }
    footer(&mut pen, ladder);
    let height = pen.y + 8.0;
    format!(
        r#"<svg class="ladder" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="ladder diagram of connection #{}">{}</svg>"#,
        ladder.id, pen.out
    )
}

fn header(pen: &mut Pen, ladder: &Ladder) {
    pen.text(LEFT, 16.0, "who c", "middle", "client");
    pen.text(RIGHT, 16.0, "who s", "middle", "server");
    pen.text(
        LEFT,
        30.0,
        "addr",
        "middle",
        &super::endpoint(ladder.client),
    );
    pen.text(
        RIGHT,
        30.0,
        "addr",
        "middle",
        &super::endpoint(ladder.server),
    );
    pen.y = 38.0;
    pen.rails(LINE + 6.0, false);
    pen.state(Side::Client, ladder.initial.client, pen.y + LINE);
    pen.state(Side::Server, ladder.initial.server, pen.y + LINE);
    pen.y += LINE + 6.0;
}

/// States a side enters at a row, from height `y` down.
fn states(pen: &mut Pen, row: &Row, side: Side, y: f64) -> f64 {
    let mut h: f64 = 0.0;
    for (i, state) in row.states_of(side).enumerate() {
        pen.state(side, state, y + i as f64 * LINE);
        h = h.max((i + 1) as f64 * LINE);
    }
    h
}

fn draw_row(pen: &mut Pen, ladder: &Ladder, row: &Row) {
    let top = pen.y;
    let body = match &row.kind {
        RowKind::Arrow(a) => arrow(pen, a),
        RowKind::Unseen { from, bytes } => unseen(pen, *from, *bytes),
        RowKind::Collapsed(p) => phase(pen, p),
        RowKind::Timer => 2.0 * LINE,
    };
    // The sender's states at the arrow's tail, the receiver's at its head.
    let (client_y, server_y) = match &row.kind {
        RowKind::Arrow(a) if a.from == Side::Server => (top + 2.0 * LINE, top + LINE + 4.0),
        RowKind::Arrow(_) => (top + LINE + 4.0, top + 2.0 * LINE),
        _ => (top + LINE + 4.0, top + LINE + 4.0),
    };
    let c = states(pen, row, Side::Client, client_y) + client_y - top;
    let s = states(pen, row, Side::Server, server_y) + server_y - top;
    let h = body.max(c).max(s) + 8.0;
    if !matches!(row.kind, RowKind::Collapsed(_)) {
        pen.rails(h, false);
    }
    pen.time(ladder, row);
    pen.y = top + h;
    for note in &row.notes {
        draw_note(pen, note);
    }
}

/// An arrow sloping down from the sender's line to the receiver's, label above it.
fn arrow(pen: &mut Pen, a: &Arrow) -> f64 {
    let (x0, x1) = match a.from {
        Side::Client => (LEFT, RIGHT),
        Side::Server => (RIGHT, LEFT),
    };
    let y0 = pen.y + LINE + 4.0;
    let y1 = y0 + DROP;
    let class = match (a.shaft_text(), a.from) {
        (Some(_), _) => "arr mark",
        (None, Side::Client) => "arr c",
        (None, Side::Server) => "arr s",
    };
    line_with_head(pen, (x0, y0), (x1, y1), class);
    pen.text(
        (LEFT + RIGHT) / 2.0,
        y0 - 3.0,
        "lbl",
        "middle",
        &a.label(LABEL_CHARS),
    );
    if let Some(t) = a.shaft_text() {
        pen.text(
            (LEFT + RIGHT) / 2.0,
            y1 + LINE - 2.0,
            "marktext",
            "middle",
            t,
        );
        return 2.0 * LINE + DROP;
    }
    2.0 * LINE
}

fn line_with_head(pen: &mut Pen, (x0, y0): (f64, f64), (x1, y1): (f64, f64), class: &str) {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let (bx, by) = (x1 - ux * 9.0, y1 - uy * 9.0);
    let _ = write!(
        pen.out,
        r#"<g class="{class}"><line x1="{x0:.1}" y1="{y0:.1}" x2="{bx:.1}" y2="{by:.1}"/><polygon points="{x1:.1},{y1:.1} {:.1},{:.1} {:.1},{:.1}"/></g>"#,
        bx - uy * 4.0,
        by + ux * 4.0,
        bx + uy * 4.0,
        by - ux * 4.0
    );
}

fn unseen(pen: &mut Pen, from: Side, bytes: u64) -> f64 {
    let (x0, x1) = match from {
        Side::Client => (LEFT, RIGHT),
        Side::Server => (RIGHT, LEFT),
    };
    let y0 = pen.y + LINE + 4.0;
    line_with_head(pen, (x0, y0), (x1, y0 + DROP), "arr unseen");
    let text = format!("{} never captured", super::bytes(bytes));
    pen.text((LEFT + RIGHT) / 2.0, y0 - 3.0, "lbl dim", "middle", &text);
    2.0 * LINE
}

fn phase(pen: &mut Pen, p: &Phase) -> f64 {
    let lines = phase_text(p);
    let h = (lines.len() as f64 + 0.5) * LINE;
    pen.rails(h + 8.0, true);
    for (i, t) in lines.iter().enumerate() {
        let y = pen.y + (i as f64 + 1.0) * LINE;
        pen.text((LEFT + RIGHT) / 2.0, y, "phase", "middle", t);
    }
    h
}

fn draw_note(pen: &mut Pen, note: &Note) {
    let sev = note.severity.name();
    let full = format!("{} · {}", note.text, note.kind);
    pen.rails(LINE + 6.0, false);
    let _ = write!(
        pen.out,
        r#"<g class="note n-{sev}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3"/><text x="{:.1}" y="{:.1}">▲ {} {}<title>{}</title></text></g>"#,
        LEFT - 120.0,
        pen.y + 1.0,
        WIDTH - (LEFT - 120.0) - 4.0,
        LINE + 4.0,
        LEFT - 114.0,
        pen.y + LINE,
        sev.to_uppercase(),
        esc(&fit(&full, NOTE_CHARS)),
        esc(&full)
    );
    pen.y += LINE + 6.0;
}

fn footer(pen: &mut Pen, ladder: &Ladder) {
    pen.rails(LINE + 6.0, false);
    pen.state(Side::Client, ladder.last.client, pen.y + LINE);
    pen.state(Side::Server, ladder.last.server, pen.y + LINE);
    pen.y += LINE + 10.0;
    let end = format!("end of the record: {}", finished_by(ladder.finished_by));
    pen.text((LEFT + RIGHT) / 2.0, pen.y + 4.0, "end", "middle", &end);
    pen.y += LINE;
    for note in &ladder.end_notes {
        draw_note(pen, note);
    }
    if ladder.omitted > 0 {
        let text = format!("… {} more segments not drawn", ladder.omitted);
        pen.text((LEFT + RIGHT) / 2.0, pen.y + LINE, "end", "middle", &text);
        pen.y += LINE + 4.0;
    }
}

//! The report's charts, each built in constant memory however many connections stream past:
//! log-scale histograms with fixed bins ([`LogHistogram`]), the whole capture's concurrency by
//! outcome in at most [`MAX_BINS`] time bins that widen as the capture grows ([`Concurrency`]),
//! and the Gantt view of a bounded set of connections ([`Lane`]). Drawn as inline SVG whose
//! colours come from the report's CSS classes (`o-closed`, `cw`, `tw`, ...).

use super::html::esc;
use super::text::since;
use crate::time::Human;
use crate::track::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Bins per decade of a [`LogHistogram`].
const PER_DECADE: u32 = 4;
/// The first bin edge: 10^3 ns = 1 µs.
const FIRST_DECADE: u32 = 3;
/// Bins from 1 µs up to 10^12 ns (about 17 minutes); below and above go to the end bins.
const BINS: usize = (9 * PER_DECADE) as usize + 2;

/// Counts of nanosecond values in logarithmic bins, four per decade, from 1 µs to 1000 s.
#[derive(Debug, Clone)]
pub struct LogHistogram {
    counts: [u64; BINS],
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram { counts: [0; BINS] }
    }
}

/// The lower edge of bin `i` (bin 0 is everything under 1 µs).
fn bin_floor(i: usize) -> f64 {
    if i == 0 {
        return 0.0;
    }
    10f64.powf(f64::from(FIRST_DECADE) + (i as f64 - 1.0) / f64::from(PER_DECADE))
}

impl LogHistogram {
    pub fn record(&mut self, ns: i64) {
        let v = ns.max(0) as f64;
        let i = if v < bin_floor(1) {
            0
        } else {
            let steps = (v.log10() - f64::from(FIRST_DECADE)) * f64::from(PER_DECADE);
            (steps.floor() as usize + 1).min(BINS - 1)
        };
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bins worth drawing: from the first to the last non-empty, widened to whole decades.
    fn span(&self) -> Option<(usize, usize)> {
        let first = self.counts.iter().position(|&c| c > 0)?;
        let last = self.counts.iter().rposition(|&c| c > 0)?;
        let per = PER_DECADE as usize;
        let lo = if first == 0 {
            0
        } else {
            1 + (first - 1) / per * per
        };
        let hi = (1 + (last / per + 1) * per).min(BINS);
        Some((lo, hi.max(lo + 1)))
    }
}

/// One chart's frame: a viewBox of `w`×`h` with margins for the axes.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn plot_w(&self) -> f64 {
        self.w - self.left - 8.0
    }
    fn plot_h(&self) -> f64 {
        self.h - self.bottom - self.top
    }
    fn right(&self) -> f64 {
        self.w - 8.0
    }
    fn open(&self, out: &mut String, label: &str) {
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">"#,
            self.w,
            self.h,
            esc(label)
        );
        let _ = write!(
            out,
            r#"<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>"#,
            l = self.left,
            b = self.h - self.bottom,
            r = self.w - 8.0
        );
    }
    /// A y-axis tick label for the top of the plot.
    fn y_max(&self, out: &mut String, text: &str) {
        let _ = write!(
            out,
            r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
            self.left - 4.0,
            self.top + 8.0,
            esc(text)
        );
    }
}

/// The histogram as an SVG bar chart with decade ticks.
pub fn histogram_svg(h: &LogHistogram, label: &str) -> String {
    let mut out = String::new();
    let Some((lo, hi)) = h.span() else {
        return r#"<p class="empty">nothing measured</p>"#.to_owned();
    };
    let f = Frame {
        w: 520.0,
        h: 170.0,
        left: 44.0,
        top: 8.0,
        bottom: 22.0,
    };
    f.open(&mut out, label);
    let per = PER_DECADE as usize;
    let decades = (hi - lo).div_ceil(per);
    let label_every = if decades > 6 { 2 * per } else { per };
    let max = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let n = (hi - lo) as f64;
    let bw = f.plot_w() / n;
    for (k, i) in (lo..hi).enumerate() {
        let x = f.left + k as f64 * bw;
        let count = h.counts.get(i).copied().unwrap_or(0);
        let bh = count as f64 / max * f.plot_h();
        let _ = write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>{} to {}: {count}</title></rect>"#,
            f.h - f.bottom - bh,
            (bw - 1.0).max(1.0),
            bin_name(i),
            bin_name(i + 1)
        );
        if i >= 1 && (i - 1) % label_every == 0 {
            let _ = write!(
                out,
                r#"<text class="tick" x="{x:.1}" y="{:.1}">{}</text>"#,
                f.h - 6.0,
                bin_name(i)
            );
        }
    }
    f.y_max(&mut out, &max.to_string());
    out.push_str("</svg>");
    out
}

/// The lower edge of bin `i`, briefly: `0`, `10 µs`, `1 ms`, `100 s`, `1.8 ms`.
fn bin_name(i: usize) -> String {
    if i == 0 {
        return "0".to_owned();
    }
    let ns = bin_floor(i);
    let (value, unit) = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")]
        .iter()
        .find(|(scale, _)| ns >= *scale * 0.999)
        .map_or((ns, "ns"), |(scale, unit)| (ns / scale, *unit));
    if (value - value.round()).abs() < 0.01 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Most time bins of the concurrency chart.
pub const MAX_BINS: i64 = 240;

/// One time bin: time spent (ns, summed over connections) open by outcome, in CLOSE-WAIT and
/// in TIME-WAIT, and connections started.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    open: [f64; 8],
    close_wait: f64,
    time_wait: f64,
    started: [u64; 8],
}

impl Bin {
    fn merge(&mut self, other: &Bin) {
        for (a, b) in self.open.iter_mut().zip(other.open) {
            *a += b;
        }
        for (a, b) in self.started.iter_mut().zip(other.started) {
            *a += b;
        }
        self.close_wait += other.close_wait;
        self.time_wait += other.time_wait;
    }
}

/// What an interval of a connection counts toward.
#[derive(Debug, Clone, Copy)]
pub enum Track {
    Open(Outcome),
    CloseWait,
    TimeWait,
}

fn outcome_index(o: Outcome) -> usize {
    Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

/// What a stacked bar chart of the [`Concurrency`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    /// Connections open at once, averaged over the bin.
    Open,
    /// Connections whose first packet fell in the bin.
    Started,
}

impl Series {
    fn what(self) -> &'static str {
        match self {
            Series::Open => "open at once",
            Series::Started => "started",
        }
    }

    fn height(self) -> f64 {
        match self {
            Series::Open => 170.0,
            Series::Started => 110.0,
        }
    }

    /// The bar's parts, by outcome.
    fn values(self, bin: &Bin, width_ns: i64) -> [f64; 8] {
        match self {
            Series::Open => bin.open.map(|v| v / width_ns as f64),
            Series::Started => bin.started.map(|v| v as f64),
        }
    }
}

/// Connections open at once over the whole capture, by outcome, in at most [`MAX_BINS`] bins:
/// when an interval falls outside, the bins double in width (pairs merge), so memory is fixed
/// and every connection counts exactly.
#[derive(Debug, Clone)]
pub struct Concurrency {
    origin: Option<i64>,
    width_ns: i64,
    bins: BTreeMap<i64, Bin>,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            origin: None,
            width_ns: 1_000,
            bins: BTreeMap::new(),
        }
    }
}

impl Concurrency {
    fn index(&self, origin: i64, t: i64) -> i64 {
        t.saturating_sub(origin).div_euclid(self.width_ns)
    }

    /// Widens the bins until `[a, b]` fits with everything already counted.
    fn cover(&mut self, a: i64, b: i64) -> i64 {
        let origin = *self.origin.get_or_insert(a);
        loop {
            let lo = self
                .index(origin, a)
                .min(self.bins.keys().next().copied().unwrap_or(i64::MAX));
            let hi = self
                .index(origin, b)
                .max(self.bins.keys().last().copied().unwrap_or(i64::MIN));
            if hi.saturating_sub(lo) < MAX_BINS || self.width_ns > i64::MAX / 4 {
                return origin;
            }
            self.width_ns *= 2;
            let old = std::mem::take(&mut self.bins);
            for (k, bin) in old {
                self.bins.entry(k.div_euclid(2)).or_default().merge(&bin);
            }
        }
    }

    /// Counts the time from `a` to `b` toward `track`.
    pub fn add(&mut self, a: i64, b: i64, track: Track) {
        let b = b.max(a);
        let origin = self.cover(a, b);
        let w = self.width_ns;
        for k in self.index(origin, a)..=self.index(origin, b) {
            let start = origin + k * w;
            let overlap = (b.min(start + w) - a.max(start)).max(0) as f64;
            let bin = self.bins.entry(k).or_default();
            match track {
                Track::Open(o) => {
                    if let Some(v) = bin.open.get_mut(outcome_index(o)) {
                        *v += overlap;
                    }
                }
                Track::CloseWait => bin.close_wait += overlap,
                Track::TimeWait => bin.time_wait += overlap,
            }
        }
    }

    /// A connection of outcome `o` started at `t`.
    pub fn start(&mut self, t: i64, o: Outcome) {
        let origin = self.cover(t, t);
        let k = self.index(origin, t);
        if let Some(v) = self
            .bins
            .entry(k)
            .or_default()
            .started
            .get_mut(outcome_index(o))
        {
            *v += 1;
        }
    }

    /// Bin width in nanoseconds.
    pub fn width_ns(&self) -> i64 {
        self.width_ns
    }

    /// (start of the first bin, end of the last, number of bins).
    fn extent(&self) -> Option<(i64, i64, i64)> {
        let origin = self.origin?;
        let lo = *self.bins.keys().next()?;
        let hi = *self.bins.keys().last()?;
        Some((
            origin + lo * self.width_ns,
            origin + (hi + 1) * self.width_ns,
            hi - lo + 1,
        ))
    }

    /// Two stacked bar charts: connections open at once (average over each bin) by outcome,
    /// with the time in CLOSE-WAIT and TIME-WAIT hatched over them; and connections started
    /// per bin by outcome.
    pub fn svg(&self) -> String {
        let Some((t0, t1, _)) = self.extent() else {
            return r#"<p class="empty">no connections</p>"#.to_owned();
        };
        let mut out = String::new();
        self.stacked(&mut out, (t0, t1), Series::Open);
        self.stacked(&mut out, (t0, t1), Series::Started);
        out
    }

    /// One stacked bar per bin over the span `(t0, t1)`.
    fn stacked(&self, out: &mut String, (t0, t1): (i64, i64), series: Series) {
        let f = Frame {
            w: 1000.0,
            h: series.height(),
            left: 56.0,
            top: 24.0,
            bottom: 22.0,
        };
        let what = series.what();
        f.open(out, &format!("connections {what}, by outcome"));
        let span = (t1 - t0).max(1) as f64;
        let x = |t: i64| f.left + (t - t0) as f64 / span * f.plot_w();
        let max = self
            .bins
            .values()
            .map(|b| series.values(b, self.width_ns).iter().sum::<f64>())
            .fold(0.0, f64::max)
            .max(1e-9);
        let scale = f.plot_h() / max;
        let origin = self.origin.unwrap_or(t0);
        for (k, bin) in &self.bins {
            let start = origin + k * self.width_ns;
            let (x0, x1) = (x(start), x(start + self.width_ns));
            let bw = (x1 - x0 - 0.5).max(0.8);
            let mut y = f.h - f.bottom;
            for (o, v) in Outcome::ALL.iter().zip(series.values(bin, self.width_ns)) {
                let bh = v * scale;
                if bh > 0.0 {
                    y -= bh;
                    let _ = write!(
                        out,
                        r#"<rect class="o-{}" x="{x0:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}"/>"#,
                        o.name()
                    );
                }
            }
            if series == Series::Open {
                self.shade(out, bin, x0, bw, &f, scale);
            }
            let _ = write!(
                out,
                r#"<rect class="hover" x="{x0:.1}" y="{}" width="{bw:.1}" height="{:.1}"><title>{}</title></rect>"#,
                f.top,
                f.plot_h(),
                esc(&bin_title(bin, start - t0, self.width_ns, series))
            );
        }
        time_ticks(out, (0, t1 - t0), &x_rel(t0, &x), f.h - 6.0, f.right());
        f.y_max(out, &format_count(max));
        let _ = write!(
            out,
            r#"<text class="ctitle" x="{:.1}" y="14">connections {what}</text>"#,
            f.left
        );
        out.push_str("</svg>");
    }

    fn shade(&self, out: &mut String, bin: &Bin, x0: f64, bw: f64, f: &Frame, scale: f64) {
        let w = self.width_ns as f64;
        let total: f64 = bin.open.iter().sum::<f64>() / w;
        let cw = (bin.close_wait / w).min(total);
        let tw = (bin.time_wait / w).min(total - cw);
        let mut y = f.h - f.bottom;
        for (class, v) in [("cw", cw), ("tw", tw)] {
            let bh = v * scale;
            if bh > 0.2 {
                y -= bh;
                let _ = write!(
                    out,
                    r#"<rect class="{class}" x="{x0:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}"/>"#
                );
            }
        }
    }
}

fn x_rel<'a>(t0: i64, x: &'a dyn Fn(i64) -> f64) -> impl Fn(i64) -> f64 + 'a {
    move |rel| x(t0 + rel)
}

fn bin_title(bin: &Bin, rel: i64, width: i64, series: Series) -> String {
    let mut parts: Vec<String> = Outcome::ALL
        .iter()
        .zip(series.values(bin, width))
        .filter(|(_, v)| *v > 0.0)
        .map(|(o, v)| format!("{} {}", o.name(), format_count(v)))
        .collect();
    if series == Series::Open {
        for (name, v) in [("CLOSE-WAIT", bin.close_wait), ("TIME-WAIT", bin.time_wait)] {
            if v > 0.0 {
                parts.push(format!("in {name} {}", format_count(v / width as f64)));
            }
        }
    }
    format!(
        "{} to {}: {}: {}",
        since(rel),
        since(rel + width),
        series.what(),
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    )
}

/// `3`, `2.5`, `0.01`: a count or an average, briefly.
fn format_count(v: f64) -> String {
    if v >= 100.0 || (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v)
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Tick marks at round times between `from` and `to` (times since the capture began),
/// labelled `+2 m`, `+500 ms`; none too close to the right edge.
fn time_ticks(
    out: &mut String,
    (from, to): (i64, i64),
    x: &dyn Fn(i64) -> f64,
    y: f64,
    right: f64,
) {
    let step = nice_step(to.saturating_sub(from), 8);
    let mut t = from
        .div_euclid(step)
        .saturating_add(i64::from(from.rem_euclid(step) != 0))
        * step;
    let first = x(from);
    while t <= to {
        let at = x(t);
        if at <= right - 24.0 {
            let anchor = if at - first < 24.0 { "start" } else { "middle" };
            let _ = write!(
                out,
                r#"<text class="tick" x="{at:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
                round_time(t)
            );
        }
        t = t.saturating_add(step);
    }
}

/// A round time briefly, in one unit: `+0`, `+250 µs`, `+20 s`, `+5 m`, `+2 h`.
fn round_time(ns: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "µs"),
    ];
    if ns == 0 {
        return "+0".to_owned();
    }
    UNITS.iter().find(|(unit, _)| ns % unit == 0).map_or_else(
        || since(ns),
        |(unit, name)| format!("+{} {name}", ns / unit),
    )
}

/// A round step (1, 2, 5 × 10^n up to seconds; then minutes and hours) that cuts `span`
/// into at most `count` pieces.
fn nice_step(span: i64, count: i64) -> i64 {
    const SECOND: i64 = 1_000_000_000;
    const LONG: [i64; 11] = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600];
    let raw = (span / count.max(1)).max(1);
    let mut unit = 1i64;
    while unit.saturating_mul(10) <= raw && unit < SECOND {
        unit *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| unit.saturating_mul(*m))
        .filter(|s| *s <= 10 * SECOND)
        .chain(LONG.iter().map(|s| s * SECOND))
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / (86_400 * SECOND) + 1).saturating_mul(86_400 * SECOND))
}

/// One connection in the Gantt view.
#[derive(Debug, Clone)]
pub struct Lane {
    pub id: u64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub outcome: Outcome,
    pub close_wait: Vec<(i64, i64)>,
    pub time_wait: Vec<(i64, i64)>,
    /// `10.0.0.1:4242 → 10.0.0.2:80`.
    pub title: String,
    /// A ladder of it is in the report.
    pub drawn: bool,
}

/// Lane height and gap in the Gantt view.
const LANE_H: f64 = 11.0;
const LANE_GAP: f64 = 3.0;
/// Lanes per page of the Gantt view.
pub const LANES_PER_PAGE: usize = 40;

/// The Gantt view in pages of [`LANES_PER_PAGE`] lanes (by first packet), each page with its
/// own time axis over its lanes, so short connections stay visible in a long capture. `t0` is
/// the start of the capture, from which times are labelled.
pub fn gantt_svg(lanes: &[Lane], t0: i64) -> String {
    if lanes.is_empty() {
        return r#"<p class="empty">no connections</p>"#.to_owned();
    }
    let pages = lanes.chunks(LANES_PER_PAGE).count();
    let mut out = format!(r#"<div class="gantt-pages" data-pages="{pages}">"#);
    for (n, page) in lanes.chunks(LANES_PER_PAGE).enumerate() {
        gantt_page(&mut out, page, t0, n * LANES_PER_PAGE);
    }
    out.push_str("</div>");
    out
}

fn gantt_page(out: &mut String, lanes: &[Lane], t0: i64, first: usize) {
    let start = lanes.iter().map(|l| l.start_ns).min().unwrap_or(t0);
    let end = lanes.iter().map(|l| l.end_ns).max().unwrap_or(start);
    let pad = ((end - start) / 50).max(1);
    let (a, b) = (start - pad, end + pad);
    let f = Frame {
        w: 1000.0,
        h: 28.0 + lanes.len() as f64 * (LANE_H + LANE_GAP),
        left: 56.0,
        top: 24.0,
        bottom: 0.0,
    };
    let _ = write!(
        out,
        r#"<div class="gpage"><p class="dim">connections {}–{} of the view, {} to {} after the capture began</p><svg class="gantt" viewBox="0 0 {} {}" role="img" aria-label="connections over time">"#,
        first + 1,
        first + lanes.len(),
        since(start - t0),
        since(end - t0),
        f.w,
        f.h
    );
    let span = (b - a).max(1) as f64;
    let x = |t: i64| f.left + (t - a) as f64 / span * f.plot_w();
    time_ticks(out, (a - t0, b - t0), &x_rel(t0, &x), 14.0, f.right());
    for (i, lane) in lanes.iter().enumerate() {
        lane_svg(out, lane, f.top + i as f64 * (LANE_H + LANE_GAP), &x);
    }
    out.push_str("</svg></div>");
}

fn lane_svg(out: &mut String, lane: &Lane, y: f64, x: &dyn Fn(i64) -> f64) {
    if lane.drawn {
        let _ = write!(out, r##"<a href="#c{}">"##, lane.id);
    }
    let _ = write!(
        out,
        r#"<text class="lane-id" x="50" y="{:.1}" text-anchor="end">#{}</text>"#,
        y + LANE_H - 2.0,
        lane.id
    );
    let x0 = x(lane.start_ns);
    let w = (x(lane.end_ns) - x0).max(2.0);
    let _ = write!(
        out,
        r#"<rect class="o-{}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{LANE_H}" rx="2"><title>{}</title></rect>"#,
        lane.outcome.name(),
        esc(&format!(
            "#{} {} · {} · {}",
            lane.id,
            lane.title,
            lane.outcome.name(),
            Human(lane.end_ns - lane.start_ns)
        ))
    );
    for (class, periods) in [("cw", &lane.close_wait), ("tw", &lane.time_wait)] {
        for &(a, b) in periods {
            let xa = x(a);
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{xa:.1}" y="{y:.1}" width="{:.1}" height="{LANE_H}"/>"#,
                (x(b) - xa).max(1.5)
            );
        }
    }
    if lane.drawn {
        out.push_str("</a>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_are_log_scale() {
        let mut h = LogHistogram::default();
        h.record(0);
        h.record(1_500);
        h.record(1_000_000);
        h.record(i64::MAX);
        assert_eq!(h.total(), 4);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[1 + 3 * PER_DECADE as usize], 1);
        assert_eq!(h.counts[BINS - 1], 1);
    }

    #[test]
    fn concurrency_keeps_few_bins_and_every_nanosecond() {
        let mut c = Concurrency::default();
        for i in 0..10_000i64 {
            let a = i * 1_000_000;
            c.add(a, a + 5_000_000, Track::Open(Outcome::Closed));
            c.start(a, Outcome::Closed);
        }
        assert!(c.bins.len() as i64 <= MAX_BINS);
        let total: f64 = c.bins.values().map(|b| b.open[0]).sum();
        assert!((total - 10_000.0 * 5_000_000.0).abs() < 1.0, "{total}");
        let started: u64 = c.bins.values().map(|b| b.started[0]).sum();
        assert_eq!(started, 10_000);
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10_000, 8), 2_000);
        assert_eq!(nice_step(3_000_000_000, 8), 500_000_000);
        assert_eq!(nice_step(0, 8), 1);
        assert_eq!(nice_step(607_000_000_000, 8), 120_000_000_000);
        assert_eq!(nice_step(100_000_000_000, 8), 15_000_000_000);
    }

    #[test]
    fn round_times() {
        assert_eq!(round_time(0), "+0");
        assert_eq!(round_time(120_000_000_000), "+2 m");
        assert_eq!(round_time(500_000_000), "+500 ms");
        assert_eq!(round_time(1_500), "+2 µs");
    }
}

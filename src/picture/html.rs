//! `tcplife report`: one self-contained HTML file (inline CSS, JS and SVG; nothing fetched):
//! the summary, the timeline of connections, histograms of the times that matter, a table per
//! anomaly kind linking to ladders drawn as SVG, and the captures read.
//!
//! Its size does not grow with the number of connections: see [`super::gather`] for what is
//! kept, and docs/pictures.md for why.

use super::charts::{LANES_PER_PAGE, Lane, gantt_svg, histogram_svg};
use super::gather::{GANTT_SAMPLE, Gather, KindTable, LADDERS_PER_KIND, TABLE_ROWS, lane};
use super::ladder::{Ladder, LadderOptions};
use crate::analyze::{Progress, RunReport, Settings};
use crate::detect::Kind;
use crate::report::summary::Distribution;
use crate::report::text::{explain_episode, meaning};
use crate::time::{Human, Rfc3339};
use crate::track::Outcome;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// How ladders are drawn in the report: short (long phases collapsed, at most 80 rows).
const LADDER: LadderOptions = LadderOptions {
    expand: false,
    absolute_seq: false,
    keep: 2,
    max_rows: 80,
};

/// Text made safe inside HTML and SVG, in elements and in quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Analyses `paths`, then reads them again to draw the ladders, and writes the report.
pub fn write_report(
    paths: &[String],
    settings: Settings,
    out: &mut dyn Write,
    progress: &mut dyn Progress,
) -> io::Result<RunReport> {
    let mut gather = Gather::default();
    let read = settings.read;
    let report = crate::analyze::analyze(paths, settings, &mut gather, progress)?;
    let records = gather.ladder_records();
    let ladders = super::replay(paths, &records, LADDER, read);
    let page = Page {
        gather: &gather,
        report: &report,
        ladders: &ladders,
        drawn: ladders.iter().map(|l| l.id).collect(),
        paths,
    };
    out.write_all(page.render().as_bytes())?;
    out.flush()?;
    Ok(report)
}

struct Page<'a> {
    gather: &'a Gather,
    report: &'a RunReport,
    ladders: &'a [Ladder],
    drawn: BTreeSet<u64>,
    paths: &'a [String],
}

impl Page<'_> {
    fn render(&self) -> String {
        let mut h = String::with_capacity(1 << 20);
        self.head(&mut h);
        self.summary(&mut h);
        self.timeline(&mut h);
        self.distributions(&mut h);
        self.anomalies(&mut h);
        self.ladders(&mut h);
        self.captures(&mut h);
        self.foot(&mut h);
        h
    }

    /// The first and last packet of the whole run.
    fn span(&self) -> Option<(i64, i64)> {
        let first = self
            .report
            .inputs
            .iter()
            .filter_map(|i| i.first)
            .map(|m| m.time_ns)
            .min()?;
        let last = self
            .report
            .inputs
            .iter()
            .filter_map(|i| i.last)
            .map(|m| m.time_ns)
            .max()?;
        Some((first, last.max(first)))
    }

    fn head(&self, h: &mut String) {
        let s = &self.report.summary;
        let _ = write!(
            h,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>tcplife report: {} connection{}</title><style>{CSS}</style></head><body>"#,
            s.connections,
            plural(s.connections)
        );
        h.push_str(PATTERNS);
        let packets: u64 = self.report.inputs.iter().map(|i| i.packets).sum();
        let files: Vec<String> = self.paths.iter().map(|p| esc(p)).collect();
        let _ = write!(
            h,
            r#"<header><h1>tcplife report</h1><p class="sub"><b>{}</b> TCP connection{} in {} packets from <code>{}</code>"#,
            super::count(s.connections),
            plural(s.connections),
            super::count(packets),
            files.join("</code>, <code>")
        );
        if let Some((a, b)) = self.span() {
            let _ = write!(h, "<br>{} to {} ({})", Rfc3339(a), Rfc3339(b), Human(b - a));
        }
        h.push_str(r##"</p><nav><a href="#summary">Summary</a><a href="#timeline">Timeline</a><a href="#times">Times</a><a href="#anomalies">Anomalies</a><a href="#ladders">Ladders</a><a href="#captures">Captures</a></nav></header><main>"##);
    }

    fn summary(&self, h: &mut String) {
        let s = &self.report.summary;
        h.push_str(r#"<section id="summary"><h2>Summary</h2><div class="cards">"#);
        let sev = |name: &str| s.anomalies_by_severity.get(name).copied().unwrap_or(0);
        for (value, label, class) in [
            (s.connections, "connections", ""),
            (s.peak_concurrent_connections, "open at once (peak)", ""),
            (
                sev("alert"),
                "alerts",
                if sev("alert") > 0 { "alert" } else { "" },
            ),
            (
                sev("warning"),
                "warnings",
                if sev("warning") > 0 { "warning" } else { "" },
            ),
            (sev("info"), "info findings", ""),
        ] {
            let _ = write!(
                h,
                r#"<div class="card {class}"><div class="num">{}</div><div>{label}</div></div>"#,
                super::count(value)
            );
        }
        h.push_str("</div>");
        self.outcomes(h);
        self.episodes(h);
        h.push_str("</section>");
    }

    fn outcomes(&self, h: &mut String) {
        let s = &self.report.summary;
        let total = s.connections.max(1) as f64;
        h.push_str(r#"<h3>Outcomes</h3><div class="stack" role="img" aria-label="outcomes">"#);
        let counts: Vec<(Outcome, u64)> = Outcome::ALL
            .iter()
            .map(|o| (*o, s.by_outcome.get(o.name()).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (o, n) in &counts {
            let _ = write!(
                h,
                r#"<span class="o-{0}" style="width:{1:.3}%" title="{0}: {2}"></span>"#,
                o.name(),
                *n as f64 / total * 100.0,
                n
            );
        }
        h.push_str(r#"</div><table class="outcomes"><thead><tr><th></th><th>outcome</th><th class="r">connections</th><th class="r">share</th><th>meaning</th></tr></thead><tbody>"#);
        for (o, n) in &counts {
            let _ = write!(
                h,
                r#"<tr><td><span class="sw o-{0}"></span></td><td><code>{0}</code></td><td class="r">{1}</td><td class="r">{2:.1} %</td><td>{3}</td></tr>"#,
                o.name(),
                super::count(*n),
                *n as f64 / total * 100.0,
                meaning(*o)
            );
        }
        h.push_str("</tbody></table>");
        if s.evicted > 0 {
            let _ = write!(
                h,
                r#"<p class="warn">{} connection(s) were reported early because the flow table was full (raise --max-connections).</p>"#,
                s.evicted
            );
        }
    }

    fn episodes(&self, h: &mut String) {
        let episodes = &self.report.summary.episodes;
        if episodes.is_empty() {
            return;
        }
        h.push_str(r#"<h3>Findings about the capture</h3><ul class="episodes">"#);
        for a in episodes {
            let _ = write!(
                h,
                r#"<li><span class="badge {0}">{0}</span> {1}</li>"#,
                a.severity.name(),
                esc(&explain_episode(a))
            );
        }
        h.push_str("</ul>");
    }

    fn timeline(&self, h: &mut String) {
        h.push_str(r#"<section id="timeline"><h2>Timeline</h2>"#);
        let _ = write!(
            h,
            r#"<p class="caption">Every connection, in bins of {}: how many were open at once (average over the bin) and how many started, coloured by outcome. Hatched: time spent in <span class="sw cw"></span> CLOSE-WAIT and <span class="sw tw"></span> TIME-WAIT.</p>"#,
            Human(self.gather.concurrency.width_ns())
        );
        h.push_str(&legend());
        h.push_str(&self.gather.concurrency.svg());
        let lanes = self.lanes();
        let _ = write!(
            h,
            r#"<h3>Connections over time</h3><p class="caption">{} of {} connections, by first packet, {LANES_PER_PAGE} to a page: every connection drawn as a ladder below (click its bar to open it), and a uniform sample of up to {GANTT_SAMPLE} others. Bars run from the first packet to the last, coloured by outcome, with CLOSE-WAIT and TIME-WAIT hatched; each page has its own time scale.</p>"#,
            super::count(lanes.len() as u64),
            super::count(self.report.summary.connections)
        );
        let t0 = self.span().map_or(0, |s| s.0);
        h.push_str(&gantt_svg(&lanes, t0));
        h.push_str("</section>");
    }

    /// The Gantt lanes: the sample and every connection drawn, by first packet.
    fn lanes(&self) -> Vec<Lane> {
        let mut lanes: Vec<Lane> = self.gather.sample.iter().cloned().collect();
        let have: BTreeSet<u64> = lanes.iter().map(|l| l.id).collect();
        lanes.extend(
            self.gather
                .ladder_records()
                .into_iter()
                .filter(|r| !have.contains(&r.id))
                .map(lane),
        );
        for l in &mut lanes {
            l.drawn = self.drawn.contains(&l.id);
        }
        lanes.sort_by_key(|l| (l.start_ns, l.id));
        lanes
    }

    fn distributions(&self, h: &mut String) {
        let d = &self.report.summary.distributions;
        let g = self.gather;
        h.push_str(r#"<section id="times"><h2>Times</h2><div class="grid">"#);
        for (title, hist, dist) in [
            ("Handshake RTT", &g.rtt, &d.handshake_rtt),
            ("Duration", &g.duration, &d.duration),
            ("Time in CLOSE-WAIT", &g.close_wait, &d.close_wait),
            ("Time in TIME-WAIT", &g.time_wait, &d.time_wait),
        ] {
            let _ = write!(
                h,
                r#"<figure><figcaption><b>{title}</b> <span class="dim">{}</span></figcaption>{}</figure>"#,
                esc(&quantiles(dist)),
                histogram_svg(hist, title)
            );
        }
        h.push_str("</div></section>");
    }

    fn anomalies(&self, h: &mut String) {
        h.push_str(r#"<section id="anomalies"><h2>Anomalies</h2>"#);
        let kinds = self.gather.kinds_in_order();
        if kinds.is_empty() {
            h.push_str(r#"<p class="ok">No connection shows an anomaly.</p>"#);
        }
        for (kind, table) in kinds {
            self.kind_table(h, kind, table);
        }
        h.push_str("</section>");
    }

    fn kind_table(&self, h: &mut String, kind: Kind, table: &KindTable) {
        let sev = kind.severity().name();
        let _ = write!(
            h,
            r#"<h3 id="k-{0}"><span class="badge {sev}">{sev}</span> <code>{0}</code> <span class="dim">{1} connection{2}"#,
            kind.name(),
            super::count(table.count),
            plural(table.count)
        );
        if table.count > table.rows.len() as u64 {
            let _ = write!(h, ", the first {} listed", table.rows.len());
        }
        h.push_str(r#"</span></h3><table class="paged" data-page="10"><thead><tr><th>connection</th><th>client</th><th>server</th><th>when</th><th>outcome</th><th>what the capture shows</th></tr></thead><tbody>"#);
        let start = self.span().map_or(0, |s| s.0);
        for row in table.rows.iter() {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td title="{}">+{}</td><td><span class="sw o-{5}"></span>{5}</td><td>{6}</td></tr>"#,
                self.conn_link(row.id),
                esc(&super::endpoint(row.client)),
                esc(&super::endpoint(row.server)),
                Rfc3339(row.time_ns),
                Human(row.time_ns - start),
                row.outcome.name(),
                esc(&row.text)
            );
        }
        h.push_str("</tbody></table>");
    }

    /// `#17`, linked to its ladder when it is drawn.
    fn conn_link(&self, id: u64) -> String {
        if self.drawn.contains(&id) {
            format!(r##"<a href="#c{id}">#{id}</a>"##)
        } else {
            format!(r#"<span title="not drawn here: tcplife diagram --conn {id}">#{id}</span>"#)
        }
    }

    fn ladders(&self, h: &mut String) {
        let _ = write!(
            h,
            r#"<section id="ladders"><h2>Ladders</h2><p class="caption">The first {LADDERS_PER_KIND} connections of each anomaly kind, then the first of each outcome ({} in all). Time runs down; relative sequence numbers; long data phases collapsed. In a terminal: <code>tcplife diagram CAPTURE --conn ID</code>.</p>"#,
            self.ladders.len()
        );
        for (i, l) in self.ladders.iter().enumerate() {
            let notes: Vec<&str> = l
                .rows
                .iter()
                .flat_map(|r| r.notes.iter())
                .chain(l.end_notes.iter())
                .map(|n| n.kind)
                .collect();
            let _ = write!(
                h,
                r#"<details class="ladder" id="c{id}"{open}><summary><b>#{id}</b> <code>{}</code> → <code>{}</code> <span class="sw o-{o}"></span>{o} · {} · {} packet{}{}</summary><div class="scroll">{}</div><p class="dim">began {}; in a terminal: <code>tcplife diagram CAPTURE --conn {id}</code></p></details>"#,
                esc(&super::endpoint(l.client)),
                esc(&super::endpoint(l.server)),
                Human(l.duration_ns),
                super::count(l.packets),
                plural(l.packets),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", esc(&notes.join(", ")))
                },
                super::svg::render(l),
                Rfc3339(l.start_ns),
                id = l.id,
                o = l.outcome.name(),
                open = if i == 0 { " open" } else { "" },
            );
        }
        h.push_str("</section>");
    }

    fn captures(&self, h: &mut String) {
        h.push_str(r#"<section id="captures"><h2>Captures</h2><table><thead><tr><th>file</th><th>format</th><th class="r">packets</th><th class="r">TCP</th><th class="r">not TCP</th><th class="r">undecodable</th><th>problems</th></tr></thead><tbody>"#);
        for i in &self.report.inputs {
            let mut problems = Vec::new();
            if i.timestamps_backwards > 0 {
                problems.push(format!(
                    "timestamps go backwards {} time(s)",
                    i.timestamps_backwards
                ));
            }
            if i.truncated_packets > 0 {
                problems.push(format!(
                    "{} packets cut by the snapshot length",
                    i.truncated_packets
                ));
            }
            if let Some(e) = &i.error {
                problems.push(e.message.clone());
            }
            let _ = write!(
                h,
                r#"<tr><td><code>{}</code></td><td>{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td>{}</td></tr>"#,
                esc(&i.file),
                i.format.unwrap_or("unreadable"),
                i.packets,
                i.tcp_packets,
                i.not_tcp.values().sum::<u64>(),
                i.undecodable.values().sum::<u64>(),
                esc(&problems.join("; "))
            );
        }
        h.push_str("</tbody></table></section>");
    }

    fn foot(&self, h: &mut String) {
        let _ = write!(
            h,
            r#"</main><footer>tcplife {} · counts, outcomes, timeline and histograms cover every connection; tables list the first {TABLE_ROWS} connections of each anomaly kind; <code>tcplife analyze --format json</code> has them all.</footer><script>{JS}</script></body></html>"#,
            env!("CARGO_PKG_VERSION")
        );
        h.push('\n');
    }
}

/// Hatching for CLOSE-WAIT and TIME-WAIT, shared by every chart of the page.
const PATTERNS: &str = r##"<svg class="defs" width="0" height="0" aria-hidden="true"><defs><pattern id="hatch-cw" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="1" y1="0" x2="1" y2="6" stroke="#bf360c" stroke-width="2.4"/></pattern><pattern id="hatch-tw" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><line x1="1" y1="0" x2="1" y2="6" stroke="#1a237e" stroke-width="2.4"/></pattern></defs></svg>"##;

fn legend() -> String {
    let mut h = String::from(r#"<div class="legend">"#);
    for o in Outcome::ALL {
        let _ = write!(
            h,
            r#"<span><span class="sw o-{0}"></span>{0}</span>"#,
            o.name()
        );
    }
    h.push_str(r#"<span><span class="sw cw"></span>CLOSE-WAIT</span><span><span class="sw tw"></span>TIME-WAIT</span></div>"#);
    h
}

fn quantiles(d: &Distribution) -> String {
    match (d.p50_ns, d.p90_ns, d.p99_ns, d.max_ns) {
        (Some(p50), Some(p90), Some(p99), Some(max)) => format!(
            "p50 {} · p90 {} · p99 {} · max {} ({} measured)",
            Human(p50),
            Human(p90),
            Human(p99),
            Human(max),
            d.count
        ),
        _ => "none measured".to_owned(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

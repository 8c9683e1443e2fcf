//! `states --every STEP`: how many endpoints were in each state at every step of the capture,
//! overall or per server endpoint, accumulated in one pass as the records stream past.

use super::filter::Filter;
use super::grid::{Counts, DeltaGrid, Grids};
use super::presence::{reuse, stays};
use crate::analyze::{RunReport, Sink};
use crate::report::record::ConnectionRecord;
use crate::track::Side;
use std::io;
use std::iter::Peekable;
use std::net::IpAddr;

/// A server endpoint.
pub type ServerKey = (IpAddr, u16);

/// Most rows a series may have (instants × 1): beyond it, ask for a larger step.
pub const MAX_STEPS: i64 = 10_000_000;

#[derive(Debug, Clone, Copy)]
pub struct SeriesOptions {
    pub step_ns: i64,
    pub by_server: bool,
    pub filter: Filter,
    /// The tracker's idle timeout (see [`super::presence::final_until`]).
    pub idle_timeout_ns: i64,
}

/// The sink that accumulates the series: per-step deltas by group (`None`: all endpoints).
#[derive(Debug)]
pub struct Series {
    options: SeriesOptions,
    /// Starts at the capture's first packet, which the reader tells before any record.
    grids: Option<Grids<Option<ServerKey>>>,
}

/// One row: a group's counts at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The instant's number, from 0 at the first packet.
    pub k: i64,
    pub time_ns: i64,
    pub offset_ns: i64,
    pub server: Option<ServerKey>,
    pub counts: Counts,
}

impl Series {
    pub fn new(options: SeriesOptions) -> Self {
        Series {
            options,
            grids: None,
        }
    }

    pub fn options(&self) -> SeriesOptions {
        self.options
    }

    /// The capture's first packet, if there was one.
    pub fn start_ns(&self) -> Option<i64> {
        self.grids.as_ref().map(Grids::origin)
    }

    /// Rows per group: instants from the first packet every step, the last one at the
    /// capture's last packet `end_ns`.
    pub fn steps(&self, end_ns: i64) -> i64 {
        self.grids
            .as_ref()
            .map_or(0, |g| g.index_of(end_ns).max(0).saturating_add(1))
    }

    /// Every row in time order (groups in address order within an instant). By server, a
    /// server with no endpoint in any of `shown` states at an instant has no row there.
    pub fn for_each_row(
        &self,
        end_ns: i64,
        shown: &[crate::track::State],
        mut f: impl FnMut(&Row) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(grids) = &self.grids else {
            return Ok(());
        };
        let empty = DeltaGrid::default();
        let mut cursors: Vec<Cursor<'_>> = grids
            .groups()
            .map(|(key, grid)| Cursor::new(*key, grid))
            .collect();
        if !self.options.by_server && cursors.is_empty() {
            cursors.push(Cursor::new(None, &empty));
        }
        let last = self.steps(end_ns) - 1;
        for k in 0..=last {
            let time_ns = if k == last { end_ns } else { grids.instant(k) };
            for c in &mut cursors {
                c.advance(k);
                if self.options.by_server && c.counts.none_in(shown) {
                    continue;
                }
                f(&Row {
                    k,
                    time_ns,
                    offset_ns: time_ns - grids.origin(),
                    server: c.key,
                    counts: c.counts,
                })?;
            }
        }
        Ok(())
    }
}

/// Walks one group's running counts along the instants.
struct Cursor<'a> {
    key: Option<ServerKey>,
    running: Peekable<Box<dyn Iterator<Item = (i64, Counts)> + 'a>>,
    counts: Counts,
}

impl<'a> Cursor<'a> {
    fn new(key: Option<ServerKey>, grid: &'a DeltaGrid) -> Self {
        let running: Box<dyn Iterator<Item = (i64, Counts)> + 'a> = Box::new(grid.running());
        Cursor {
            key,
            running: running.peekable(),
            counts: Counts::default(),
        }
    }

    /// Takes in every change up to instant `k`.
    fn advance(&mut self, k: i64) {
        while let Some((_, counts)) = self.running.next_if(|(i, _)| *i <= k) {
            self.counts = counts;
        }
    }
}

impl Sink for Series {
    fn frame(&mut self, ts_ns: i64) -> bool {
        let step = self.options.step_ns;
        self.grids
            .get_or_insert_with(|| Grids::new(ts_ns, step))
            .advance(ts_ns);
        true
    }

    fn connection(&mut self, r: ConnectionRecord) -> io::Result<()> {
        let o = self.options;
        let Some(grids) = self.grids.as_mut() else {
            return Ok(());
        };
        let key = o.by_server.then_some((r.server.ip, r.server.port));
        for side in [Side::Client, Side::Server] {
            if o.filter.accepts(&r, side) {
                grids.add_stays(r.id, &[key], &stays(&r, side, o.idle_timeout_ns));
            }
        }
        if let Some(x) = reuse(&r) {
            let named: &[Option<ServerKey>] = if o.filter.accepts(&r, x.side) {
                &[key]
            } else {
                &[]
            };
            grids.reused(x, named);
        }
        Ok(())
    }

    fn finish(&mut self, _: &RunReport) -> io::Result<()> {
        Ok(())
    }
}

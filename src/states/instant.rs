//! `states --at TIME`: every endpoint alive at one instant, as `ss -tan` on its host would have
//! shown it, with how long it had been in its state and the bytes so far.
//!
//! The analysis reads the captures only up to TIME (it stops at the first later packet), so
//! each connection's record is what the packets up to then show: its bytes are the bytes so
//! far and its final states the states at TIME. Timers that would have fired between the last
//! packet read and TIME are run on here: a TIME-WAIT whose 2×MSL had passed and a connection
//! idle for the idle timeout no longer count, as in the full analysis. A receipt that only
//! packets after TIME would have disproved (a FIN lost and sent again) is taken as it stood.

use super::filter::Filter;
use super::presence::{Stay, Until, reuse, stays};
use super::time_arg::TimeArg;
use crate::analyze::{RunReport, Sink};
use crate::report::record::{ConnectionRecord, EndpointAddr};
use crate::track::{Side, State};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;

#[derive(Debug, Clone)]
pub struct InstantOptions {
    pub at: TimeArg,
    pub filter: Filter,
    /// Only endpoints in these states (all when empty).
    pub states: Vec<State>,
    pub idle_timeout_ns: i64,
}

/// One endpoint at the instant.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRow {
    /// The connection's id, as in `analyze`.
    pub id: u64,
    pub side: &'static str,
    pub state: State,
    /// When it entered that state.
    pub since_ns: i64,
    /// How long it had been in it.
    pub for_ns: i64,
    pub local: EndpointAddr,
    pub peer: EndpointAddr,
    /// Payload bytes this endpoint had sent, and its peer had sent, so far.
    pub sent_bytes: u64,
    pub received_bytes: u64,
}

/// The sink that collects the endpoints alive at the instant: no more than were alive then.
#[derive(Debug)]
pub struct Instant {
    options: InstantOptions,
    /// The instant, once the first packet has told the capture's start.
    at_ns: Option<i64>,
    start_ns: Option<i64>,
    /// A packet after the instant was met: the capture went on past it.
    went_past: bool,
    /// By connection, client first.
    rows: BTreeMap<(u64, Side), EndpointRow>,
}

impl Instant {
    pub fn new(options: InstantOptions) -> Self {
        Instant {
            options,
            at_ns: None,
            start_ns: None,
            went_past: false,
            rows: BTreeMap::new(),
        }
    }

    /// The instant, and the capture's first packet (unknown for an empty capture).
    pub fn when(&self) -> (Option<i64>, Option<i64>) {
        (self.at_ns, self.start_ns)
    }

    /// Whether the capture had packets after the instant.
    pub fn went_past(&self) -> bool {
        self.went_past
    }

    /// The endpoints, by connection then client first.
    pub fn rows(&self) -> Vec<&EndpointRow> {
        self.rows.values().collect()
    }

    fn row(&self, r: &ConnectionRecord, side: Side, at: i64) -> Option<EndpointRow> {
        let o = &self.options;
        let stay = stays(r, side, o.idle_timeout_ns)
            .into_iter()
            .find(|s| self.covers(s, r, at))?;
        if !o.states.is_empty() && !o.states.contains(&stay.state) {
            return None;
        }
        let (local, peer, sent, received) = match side {
            Side::Client => (r.client, r.server, &r.client_sent, &r.server_sent),
            Side::Server => (r.server, r.client, &r.server_sent, &r.client_sent),
        };
        Some(EndpointRow {
            id: r.id,
            side: side.name(),
            state: stay.state,
            since_ns: stay.from_ns,
            for_ns: at - stay.from_ns,
            local,
            peer,
            sent_bytes: sent.payload_bytes,
            received_bytes: received.payload_bytes,
        })
    }

    /// Whether the stay holds at `at`, running on the idle timer the truncated read did not
    /// reach (a TIME-WAIT ends at its own timer, which the record carries).
    fn covers(&self, s: &Stay, r: &ConnectionRecord, at: i64) -> bool {
        let until = match s.until {
            Until::At(t) => t,
            Until::CaptureEnd => r.last.time_ns.saturating_add(self.options.idle_timeout_ns),
        };
        s.from_ns <= at && at < until
    }
}

impl Sink for Instant {
    fn frame(&mut self, ts_ns: i64) -> bool {
        let at = *self.at_ns.get_or_insert_with(|| {
            self.start_ns = Some(ts_ns);
            self.options.at.resolve(ts_ns)
        });
        self.went_past |= ts_ns > at;
        !self.went_past
    }

    fn connection(&mut self, r: ConnectionRecord) -> io::Result<()> {
        let Some(at) = self.at_ns else {
            return Ok(());
        };
        // A SYN (read, so before the instant) that reused a 4-tuple ended its TIME-WAIT.
        if let Some(x) = reuse(&r) {
            for side in [Side::Client, Side::Server] {
                let key = (x.previous, side);
                if self
                    .rows
                    .get(&key)
                    .is_some_and(|row| row.state == State::TimeWait)
                {
                    self.rows.remove(&key);
                }
            }
        }
        for side in [Side::Client, Side::Server] {
            if self.options.filter.accepts(&r, side) {
                if let Some(row) = self.row(&r, side, at) {
                    self.rows.insert((r.id, side), row);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _: &RunReport) -> io::Result<()> {
        Ok(())
    }
}

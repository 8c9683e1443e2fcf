//! tcplife: what happened to every TCP connection in a packet capture.
//!
//! Data flows one way, one module per stage:
//! bytes → [`capture`] (frames) → [`decode`] (segments) → [`track`] (connections) →
//! [`report`] (records and sinks).

pub mod analyze;
pub mod capture;
pub mod check;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod inline;
pub mod picture;
pub mod report;
pub mod sorted;
pub mod states;
pub mod time;
pub mod track;

/// The hash map of every per-connection table: foldhash is several times faster than SipHash
/// on addresses and ids and still seeded per process, so a capture cannot be crafted to
/// collide. No output depends on a map's order (records are ordered by id, episodes by time).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

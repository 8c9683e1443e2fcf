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
pub mod states;
pub mod time;
pub mod track;

//! Stage 4: connections → records → sinks (text, JSON, JSON lines).

pub mod compact;
pub mod json;
mod line;
pub mod record;
pub mod summary;
pub mod text;
pub mod zeek;
pub use crate::time;

/// The version of the JSON output contract; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

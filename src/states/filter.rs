//! Which endpoints a `states` command looks at: `--side`, `--host`, `--port`, `--state`.

use crate::report::record::ConnectionRecord;
use crate::track::{Side, State};
use std::net::IpAddr;

/// Endpoints of a side, of connections involving a host or a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    pub side: Option<Side>,
    /// Either end's address.
    pub host: Option<IpAddr>,
    /// Either end's port.
    pub port: Option<u16>,
}

impl Filter {
    pub fn accepts(&self, r: &ConnectionRecord, side: Side) -> bool {
        self.side.is_none_or(|s| s == side)
            && self
                .host
                .is_none_or(|h| r.client.ip == h || r.server.ip == h)
            && self
                .port
                .is_none_or(|p| r.client.port == p || r.server.port == p)
    }
}

/// A state by its RFC name in any case, with `_` for `-`, or as `ss` abbreviates it
/// (`estab`, `syn-recv`).
pub fn parse_state(text: &str) -> Result<State, String> {
    let name = text.trim().to_ascii_uppercase().replace('_', "-");
    let alias = match name.as_str() {
        "ESTAB" => Some(State::Established),
        "SYN-RECV" => Some(State::SynReceived),
        _ => None,
    };
    alias
        .or_else(|| State::ALL.into_iter().find(|s| s.name() == name))
        .ok_or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
            format!("unknown state `{text}` (one of {})", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_by_any_spelling() {
        assert_eq!(parse_state("CLOSE-WAIT"), Ok(State::CloseWait));
        assert_eq!(parse_state("close_wait"), Ok(State::CloseWait));
        assert_eq!(parse_state("time-wait"), Ok(State::TimeWait));
        assert_eq!(parse_state("estab"), Ok(State::Established));
        assert_eq!(parse_state("syn-recv"), Ok(State::SynReceived));
        assert!(parse_state("waiting").is_err());
    }
}

//! The expectation of a capture: what `tcplife check` compares, as stable, readable JSON with
//! nothing that depends on the run (no tool version, no wall-clock time, no paths). Keys are
//! sorted; connections come in capture order, each named by its endpoints and incarnation.

use crate::analyze::RunReport;
use crate::report::record::{ConnectionRecord, EndpointAddr, StateTimeline};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The version of the expectation format.
pub const FORMAT: u64 = 1;

/// The key of an expectation file's format marker.
pub const FORMAT_KEY: &str = "tcplife_expectation";

/// `10.0.0.1:40000 → 10.0.0.2:80 #2`: the second incarnation of that 4-tuple in the capture.
pub fn connection_name(client: EndpointAddr, server: EndpointAddr, incarnation: u32) -> String {
    format!("{} → {} #{incarnation}", endpoint(client), endpoint(server))
}

fn endpoint(e: EndpointAddr) -> String {
    match e.ip {
        std::net::IpAddr::V4(ip) => format!("{ip}:{}", e.port),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", e.port),
    }
}

fn path(t: &StateTimeline) -> String {
    std::iter::once(t.initial)
        .chain(t.transitions.iter().map(|tr| tr.to))
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The full expectation of an analysis. `records` in any order: they are put in capture order.
pub fn build(records: &[ConnectionRecord], report: &RunReport) -> Value {
    let mut ordered: Vec<&ConnectionRecord> = records.iter().collect();
    ordered.sort_by_key(|r| (r.first.time_ns, r.id));
    let mut incarnations: HashMap<(String, String), u32> = HashMap::new();
    let connections: Vec<Value> = ordered
        .into_iter()
        .map(|r| {
            let tuple = (endpoint(r.client), endpoint(r.server));
            let n = incarnations.entry(tuple).or_insert(0);
            *n += 1;
            connection(r, *n)
        })
        .collect();
    let s = &report.summary;
    let nonzero = |m: &std::collections::BTreeMap<&'static str, u64>| {
        m.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| ((*k).to_owned(), json!(n)))
            .collect::<Map<String, Value>>()
    };
    json!({
        FORMAT_KEY: FORMAT,
        "summary": {
            "connections": s.connections,
            "by_outcome": nonzero(&s.by_outcome),
            "anomalies": nonzero(&s.anomalies_by_kind),
            "episodes": s.episodes.iter().map(|e| e.kind.name()).collect::<Vec<_>>(),
            "packets": report.inputs.iter().map(|i| i.packets).sum::<u64>(),
            "tcp_packets": report.inputs.iter().map(|i| i.tcp_packets).sum::<u64>(),
        },
        "connections": connections,
    })
}

fn connection(r: &ConnectionRecord, incarnation: u32) -> Value {
    json!({
        "connection": connection_name(r.client, r.server, incarnation),
        "outcome": r.outcome.name(),
        "midstream": r.midstream,
        "conn_state": r.conn_state,
        "history": r.history,
        "active_closer": r.close.active_closer,
        "client_states": path(&r.states.client),
        "server_states": path(&r.states.server),
        "anomalies": r.anomalies.iter().map(|a| a.kind.name()).collect::<Vec<_>>(),
        "client_packets": r.client_sent.packets,
        "server_packets": r.server_sent.packets,
        "client_payload_bytes": r.client_sent.payload_bytes,
        "server_payload_bytes": r.server_sent.payload_bytes,
    })
}

/// Keeps of `full` only the fields `template` has (recursively), so re-blessing a partial
/// expectation keeps the user's choice of fields. Connections take the union of the fields of
/// the template's connections; with `only_listed_connections`, only the listed ones are kept.
pub fn project(full: &Value, template: &Value) -> Value {
    let (Value::Object(full_map), Value::Object(t_map)) = (full, template) else {
        return full.clone();
    };
    let mut out = Map::new();
    for (key, t_value) in t_map {
        let Some(value) = full_map.get(key) else {
            if key == "only_listed_connections" {
                out.insert(key.clone(), t_value.clone());
            }
            continue;
        };
        let projected = match (key.as_str(), value, t_value) {
            ("connections", Value::Array(all), Value::Array(listed)) => {
                Value::Array(project_connections(all, listed, only_listed(template)))
            }
            (_, Value::Object(_), Value::Object(_)) if key == "summary" => project(value, t_value),
            _ => value.clone(),
        };
        out.insert(key.clone(), projected);
    }
    Value::Object(out)
}

pub fn only_listed(expectation: &Value) -> bool {
    expectation
        .get("only_listed_connections")
        .and_then(Value::as_bool)
        == Some(true)
}

fn project_connections(all: &[Value], listed: &[Value], only_listed: bool) -> Vec<Value> {
    let mut fields: Vec<&String> = listed
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys())
        .collect();
    fields.sort();
    fields.dedup();
    if fields.is_empty() {
        return all.to_vec();
    }
    let names: Vec<&Value> = listed.iter().filter_map(|c| c.get("connection")).collect();
    all.iter()
        .filter(|c| !only_listed || c.get("connection").is_some_and(|n| names.contains(&n)))
        .map(|c| {
            let mut m = Map::new();
            m.insert(
                "connection".into(),
                c.get("connection").cloned().unwrap_or(Value::Null),
            );
            for f in &fields {
                if let Some(v) = c.get(f.as_str()) {
                    m.insert((*f).clone(), v.clone());
                }
            }
            Value::Object(m)
        })
        .collect()
}

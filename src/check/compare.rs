//! Compares an expectation with the actual analysis, field by field: a field the expectation
//! keeps is compared whole; a field it leaves out is not checked.

use super::expectation::only_listed;
use serde_json::Value;
use std::fmt;

/// One difference between expected and actual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The connection it is about (`10.0.0.1:40000 → 10.0.0.2:80 #1`), or none for the summary.
    pub connection: Option<String>,
    /// The field, e.g. `outcome` or `summary.by_outcome`.
    pub field: String,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "(absent)".to_owned(), Value::to_string)
        };
        if let Some(c) = &self.connection {
            write!(f, "connection {c}: ")?;
        }
        write!(
            f,
            "{}: expected {}, actual {}",
            self.field,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// Every difference between `expected` (possibly partial) and `actual` (full).
pub fn compare(expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut diffs = Vec::new();
    if let (Some(Value::Object(want)), Some(got)) = (expected.get("summary"), actual.get("summary"))
    {
        for (key, value) in want {
            let got = got.get(key);
            if got != Some(value) {
                diffs.push(Difference {
                    connection: None,
                    field: format!("summary.{key}"),
                    expected: Some(value.clone()),
                    actual: got.cloned(),
                });
            }
        }
    }
    if let Some(Value::Array(want)) = expected.get("connections") {
        let got: &[Value] = actual
            .get("connections")
            .and_then(Value::as_array)
            .map_or(&[], |v| v);
        compare_connections(want, got, only_listed(expected), &mut diffs);
    }
    diffs
}

fn name(c: &Value) -> Option<&str> {
    c.get("connection").and_then(Value::as_str)
}

fn compare_connections(
    want: &[Value],
    got: &[Value],
    only_listed: bool,
    diffs: &mut Vec<Difference>,
) {
    for w in want {
        let Some(n) = name(w) else {
            continue;
        };
        let Some(g) = got.iter().find(|g| name(g) == Some(n)) else {
            diffs.push(Difference {
                connection: Some(n.to_owned()),
                field: "connection".into(),
                expected: Some(Value::String("present".into())),
                actual: None,
            });
            continue;
        };
        let Some(fields) = w.as_object() else {
            continue;
        };
        for (field, value) in fields.iter().filter(|(f, _)| f.as_str() != "connection") {
            let actual = g.get(field);
            if actual != Some(value) {
                diffs.push(Difference {
                    connection: Some(n.to_owned()),
                    field: field.clone(),
                    expected: Some(value.clone()),
                    actual: actual.cloned(),
                });
            }
        }
    }
    if only_listed {
        return;
    }
    for g in got {
        let n = name(g).unwrap_or("?");
        if !want.iter().any(|w| name(w) == Some(n)) {
            diffs.push(Difference {
                connection: Some(n.to_owned()),
                field: "connection".into(),
                expected: None,
                actual: Some(Value::String("present".into())),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actual() -> Value {
        json!({
            "summary": {"connections": 2, "by_outcome": {"closed": 1, "reset": 1}},
            "connections": [
                {"connection": "a #1", "outcome": "closed", "history": "ShAFf"},
                {"connection": "b #1", "outcome": "reset", "history": "ShAR"}
            ]
        })
    }

    #[test]
    fn identical_expectations_match() {
        assert!(compare(&actual(), &actual()).is_empty());
    }

    #[test]
    fn a_partial_expectation_checks_only_its_fields() {
        let partial = json!({"connections": [
            {"connection": "a #1", "outcome": "closed"},
            {"connection": "b #1", "outcome": "reset"}
        ]});
        assert!(compare(&partial, &actual()).is_empty());
    }

    #[test]
    fn a_changed_field_is_named_with_its_connection() {
        let want = json!({"connections": [
            {"connection": "a #1", "outcome": "reset"},
            {"connection": "b #1"}
        ]});
        let d = compare(&want, &actual());
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            r#"connection a #1: outcome: expected "reset", actual "closed""#
        );
    }

    #[test]
    fn missing_and_unexpected_connections_are_differences() {
        let want = json!({"connections": [{"connection": "a #1"}, {"connection": "c #1"}]});
        let d = compare(&want, &actual());
        let names: Vec<_> = d.iter().map(|x| x.connection.clone().unwrap()).collect();
        assert_eq!(names, vec!["c #1", "b #1"]);
        let only =
            json!({"only_listed_connections": true, "connections": [{"connection": "a #1"}]});
        assert!(compare(&only, &actual()).is_empty());
    }

    #[test]
    fn summary_fields_compare_whole() {
        let want = json!({"summary": {"by_outcome": {"closed": 1}}});
        let d = compare(&want, &actual());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "summary.by_outcome");
    }
}

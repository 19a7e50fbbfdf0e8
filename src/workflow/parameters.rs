//! `parameters` templates (ASL `Parameters`): a JSON object copied as it is,
//! except that a key ending in `.$` takes a path, evaluated against the
//! state's input, and gives its value to the key without the `.$`.
//!
//! Templates are processed recursively through nested objects and arrays.
//! Invariants: no IO; validation (`check`) rejects a `.$` key whose value is
//! not a valid path string (which [`apply_parameters`] would fail on, whatever
//! the input), an empty name (`.$` alone), and a key given both ways (`a`
//! and `a.$`), whose value would otherwise depend on key order. At run time
//! the only failure left is a path that selects nothing.

use serde_json::{Map, Value};

use super::path::{Path, PathError};

/// The template with every `key.$` replaced by `key` and its path's value.
pub fn apply_parameters(template: &Value, input: &Value) -> Result<Value, PathError> {
    match template {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let Value::String(text) = value else {
                            return Err(PathError::Invalid {
                                path: value.to_string(),
                                reason: format!("`{key}` takes a path string"),
                            });
                        };
                        let path = Path::parse(text).map_err(|e| PathError::Invalid {
                            path: text.clone(),
                            reason: e.to_string(),
                        })?;
                        out.insert(name.to_owned(), path.select(input)?);
                    }
                    None => {
                        out.insert(key.clone(), apply_parameters(value, input)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items.iter().map(|item| apply_parameters(item, input)).collect(),
        other => Ok(other.clone()),
    }
}

/// A fault in a template: the location under `at`, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateFault {
    pub at: String,
    /// `true` for a bad path, `false` for a bad key.
    pub bad_path: bool,
    pub message: String,
}

/// Every fault of a template, in key order.
pub(crate) fn check(template: &Value, at: &str) -> Vec<TemplateFault> {
    let mut faults = Vec::new();
    walk(template, at, &mut faults);
    faults
}

fn walk(value: &Value, at: &str, faults: &mut Vec<TemplateFault>) {
    match value {
        Value::Object(map) => {
            // In key order, whatever the map's own order.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in entries {
                let here = format!("{at}.{key}");
                match key.strip_suffix(".$") {
                    Some("") => faults.push(TemplateFault {
                        at: here,
                        bad_path: false,
                        message: "`.$` needs a name before it, as in `claimId.$`".into(),
                    }),
                    Some(name) => {
                        if map.contains_key(name) {
                            faults.push(TemplateFault {
                                at: here.clone(),
                                bad_path: false,
                                message: format!("`{name}` is given twice, as `{name}` and as `{key}`: keep one"),
                            });
                        }
                        match value {
                            Value::String(text) => {
                                if let Err(e) = Path::parse(text) {
                                    faults.push(TemplateFault {
                                        at: here,
                                        bad_path: true,
                                        message: format!("`{text}` is not a valid path: {e}"),
                                    });
                                }
                            }
                            other => faults.push(TemplateFault {
                                at: here,
                                bad_path: true,
                                message: format!(
                                    "`{key}` takes a path string such as `$.claim.id`, not {}",
                                    super::path::kind_of(other)
                                ),
                            }),
                        }
                    }
                    None => walk(value, &here, faults),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), faults);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_paths_recursively() {
        let input = json!({"claim": {"id": 7, "amount": 120.5}, "user": "ann"});
        let template = json!({
            "claimId.$": "$.claim.id",
            "fixed": "literal",
            "nested": {"who.$": "$.user", "n": 1},
            "list": [{"a.$": "$.claim.amount"}, 3],
            "whole.$": "$"
        });
        assert_eq!(
            apply_parameters(&template, &input).unwrap(),
            json!({
                "claimId": 7,
                "fixed": "literal",
                "nested": {"who": "ann", "n": 1},
                "list": [{"a": 120.5}, 3],
                "whole": input.clone()
            })
        );
        assert_eq!(
            apply_parameters(&json!({"x.$": "$.nope"}), &input),
            Err(PathError::Missing { path: "$.nope".into() })
        );
        assert!(matches!(
            apply_parameters(&json!({"x.$": "nope"}), &input),
            Err(PathError::Invalid { .. })
        ));
        assert!(matches!(
            apply_parameters(&json!({"x.$": 1}), &input),
            Err(PathError::Invalid { .. })
        ));
        assert_eq!(apply_parameters(&json!("s"), &input).unwrap(), json!("s"));
    }

    #[test]
    fn check_finds_every_fault() {
        let template = json!({
            "ok.$": "$.a",
            "bad.$": "$..a",
            "num.$": 3,
            ".$": "$",
            "dup": 1,
            "dup.$": "$.d",
            "deep": {"list": [{"x.$": "a"}]}
        });
        let faults = check(&template, "p");
        let summary: Vec<(&str, bool)> = faults.iter().map(|f| (f.at.as_str(), f.bad_path)).collect();
        assert_eq!(
            summary,
            vec![
                ("p..$", false),
                ("p.bad.$", true),
                ("p.deep.list[0].x.$", true),
                ("p.dup.$", false),
                ("p.num.$", true),
            ]
        );
        assert!(check(&json!({"a.$": "$.x", "b": {"c": 1}}), "p").is_empty());
    }
}

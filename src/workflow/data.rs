//! Bounds on workflow data: how big and how deep a state's input or
//! output, and a run's position, may be (`[workflow]` in the
//! configuration). A run that passes one fails with
//! `States.DataLimitExceeded` ([`super::error_names::DATA_LIMIT_EXCEEDED`]).
//!
//! Invariant: no IO; [`measure`] walks a value without recursion and stops
//! as soon as a bound is passed, so measuring costs at most the bound.

use serde_json::Value;

/// The bounds a run's data is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// A state's input or output, in bytes of compact JSON.
    pub max_bytes: usize,
    /// A state's input or output: nesting of arrays and objects.
    pub max_depth: usize,
    /// The bytes of ledger entries one move writes before it yields.
    pub move_bytes: usize,
}

impl Default for DataLimits {
    fn default() -> Self {
        let c = crate::config::WorkflowConfig::default();
        DataLimits::of(&c)
    }
}

impl DataLimits {
    pub fn of(c: &crate::config::WorkflowConfig) -> Self {
        DataLimits {
            max_bytes: c.max_data_bytes,
            max_depth: c.max_data_depth,
            move_bytes: c.move_bytes,
        }
    }

    /// No bound (for callers that only want the size).
    pub const UNBOUNDED: DataLimits = DataLimits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        move_bytes: usize::MAX,
    };
}

/// A value's size: bytes of its compact JSON, and its nesting (a scalar
/// is 0, `[]` and `{}` are 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub bytes: usize,
    pub depth: usize,
}

/// Which bound a value passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error("more than {max} bytes")]
    Bytes { max: usize },
    #[error("nested more than {max} levels deep")]
    Depth { max: usize },
}

/// Measures `value` against `max_bytes` and `max_depth`; stops at the
/// first bound passed.
pub fn measure(value: &Value, max_bytes: usize, max_depth: usize) -> Result<Size, Exceeded> {
    let mut bytes = 0usize;
    let mut depth = 0usize;
    // (value, containers enclosing it)
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, level)) = stack.pop() {
        bytes = bytes.saturating_add(match v {
            Value::Null => 4,
            Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => number_len(n),
            Value::String(s) => string_len(s),
            Value::Array(a) => {
                let d = level + 1;
                if d > max_depth {
                    return Err(Exceeded::Depth { max: max_depth });
                }
                depth = depth.max(d);
                stack.extend(a.iter().map(|x| (x, d)));
                2 + a.len().saturating_sub(1)
            }
            Value::Object(o) => {
                let d = level + 1;
                if d > max_depth {
                    return Err(Exceeded::Depth { max: max_depth });
                }
                depth = depth.max(d);
                let mut n = 2 + o.len().saturating_sub(1);
                for (k, x) in o {
                    n += string_len(k) + 1;
                    stack.push((x, d));
                }
                n
            }
        });
        if bytes > max_bytes {
            return Err(Exceeded::Bytes { max: max_bytes });
        }
    }
    Ok(Size { bytes, depth })
}

/// Checks a state's input or output against `limits`.
pub fn check(value: &Value, limits: &DataLimits) -> Result<Size, Exceeded> {
    measure(value, limits.max_bytes, limits.max_depth)
}

/// The size of a value, unbounded.
pub fn size_of(value: &Value) -> usize {
    measure(value, usize::MAX, usize::MAX).map_or(usize::MAX, |s| s.bytes)
}

fn string_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\u{8}' | '\t' | '\n' | '\u{c}' | '\r' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

fn number_len(n: &serde_json::Number) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = std::fmt::write(&mut c, format_args!("{n}"));
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_those_of_compact_json() {
        for v in [
            json!(null),
            json!(true),
            json!(false),
            json!(-12.5e3),
            json!(18446744073709551615u64),
            json!("a \"quoted\"\n\u{1} é ✓"),
            json!([]),
            json!({}),
            json!([1, [2, {"k": [null]}], "x"]),
            json!({"a": {"b": {"c": [1, 2, 3]}}, "d": "e"}),
        ] {
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(measure(&v, usize::MAX, usize::MAX).unwrap().bytes, text.len(), "{text}");
        }
        let v = json!({"a": {"b": {"c": [1, 2, 3]}}, "d": "e"});
        assert_eq!(measure(&v, usize::MAX, usize::MAX).unwrap().depth, 4);
        assert_eq!(measure(&json!(1), 0, 0), Err(Exceeded::Bytes { max: 0 }));
    }

    #[test]
    fn measuring_stops_at_the_first_bound() {
        let mut deep = json!(1);
        for _ in 0..300 {
            deep = json!([deep]);
        }
        assert_eq!(measure(&deep, usize::MAX, 64), Err(Exceeded::Depth { max: 64 }));
        assert_eq!(measure(&deep, usize::MAX, 300).unwrap().depth, 300);
        let wide = json!(vec!["x".repeat(1000); 1000]);
        assert_eq!(measure(&wide, 10_000, 64), Err(Exceeded::Bytes { max: 10_000 }));
        assert_eq!(measure(&json!("ab"), 4, 0).unwrap(), Size { bytes: 4, depth: 0 });
    }
}

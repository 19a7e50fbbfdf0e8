//! `regex.match` and `glob.match`, each pattern compiled once per
//! evaluating thread and matched where it is kept.
//!
//! regorus compiles these patterns once too, in a shared cache, but hands
//! each call a clone of the compiled pattern, and a clone starts without
//! the matching state (the lazy DFA's cache) that the original had built:
//! each call built it again. A policy that matches a few dozen patterns a
//! decision (the shipped kernel policy matches its rules' tool and agent
//! globs, and checks each with a regular expression first) spent most of
//! its evaluation there. Here a pattern is compiled on first use by a
//! thread and then matched in place, with its matching state kept.
//!
//! The answers are regorus's, and so the differential corpus's: the same
//! size limit on a regular expression, and for `glob.match` the same
//! treatment of delimiters (a delimiter `d` becomes the path separator
//! `/d/`, `/` itself is hidden when it is not a delimiter, `:` is hidden),
//! the same glob syntax (`globset`, separators literal).
//!
//! Patterns may come from a tenant's policy: each thread keeps at most
//! [`KEPT`] of each kind, least recently used first out, and a regular
//! expression's compiled size and matching state are bounded.

use std::borrow::Cow;
use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::thread::LocalKey;

use lru::LruCache;
use regorus::Value;

use super::{Answer, Builtin, string, type_name};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("regex.match", 2, regex_match), ("glob.match", 3, glob_match)];

/// Patterns of each kind one evaluating thread keeps compiled.
pub(crate) const KEPT: usize = 256;

/// Compiled size a `regex.match` pattern may reach: regorus's bound, so
/// the same patterns are refused.
const MATCH_SIZE_LIMIT: usize = 100 * 1024;

/// Memory a kept regular expression's lazy DFA may use for its states; past
/// it, matching goes on with another of the crate's engines, with the same
/// answer.
pub(super) const DFA_SIZE_LIMIT: usize = 256 * 1024;

/// What `glob.match` hides a character behind (never in a glob's syntax).
const HIDDEN: &str = "\0";

pub(super) type Kept<T> = RefCell<LruCache<String, T>>;

pub(super) fn kept<T>() -> Kept<T> {
    RefCell::new(LruCache::new(NonZeroUsize::new(KEPT).expect("non-zero")))
}

thread_local! {
    static REGEXES: Kept<regex::Regex> = kept();
    static GLOBS: Kept<globset::GlobMatcher> = kept();
}

/// `f` applied to the pattern `key` as this thread keeps it, compiled by
/// `compile` the first time.
pub(super) fn with_kept<T, R, E>(
    cache: &'static LocalKey<Kept<T>>,
    key: &str,
    compile: impl FnOnce() -> Result<T, E>,
    f: impl FnOnce(&T) -> R,
) -> Result<R, E> {
    cache.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some(compiled) = kept.get(key) {
            return Ok(f(compiled));
        }
        let compiled = compile()?;
        let answer = f(&compiled);
        kept.put(key.to_string(), compiled);
        Ok(answer)
    })
}

/// `regex.match(pattern, value)`.
fn regex_match(args: &[Value]) -> Answer {
    let name = "regex.match";
    let pattern = string(name, args, 1)?;
    let value = string(name, args, 2)?;
    let compile = || {
        regex::RegexBuilder::new(pattern)
            .size_limit(MATCH_SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
    };
    with_kept(&REGEXES, pattern, compile, |re| re.is_match(value))
        .map(Value::from)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                anyhow::anyhow!("{name}: the pattern compiles past {limit} bytes; simplify it")
            }
            e => {
                let detail = e.to_string();
                let line = detail.lines().last().unwrap_or_default().trim();
                anyhow::anyhow!("{name}: error parsing regexp: {line}: `{pattern}`")
            }
        })
}

/// `glob.match(pattern, delimiters, value)`: `delimiters` null for none, an
/// array of one-character strings (empty: `["."]`).
fn glob_match(args: &[Value]) -> Answer {
    let name = "glob.match";
    let pattern = string(name, args, 1)?;
    let value = string(name, args, 3)?;
    let (pattern, value) = match &args[1] {
        Value::Null => (hide_slashes(pattern), hide_slashes(value)),
        Value::Array(items) => {
            let mut delimiters = Vec::with_capacity(items.len());
            for item in items.iter() {
                let Value::String(d) = item else {
                    anyhow::bail!("{name}: operand 2 must be array of strings but got {}", type_name(item));
                };
                if d.len() > 1 {
                    anyhow::bail!("{name}: delimiters must be single character");
                }
                delimiters.extend(d.chars().next());
            }
            if delimiters.is_empty() {
                delimiters.push('.');
            }
            (
                Cow::Owned(with_delimiters(name, pattern, &delimiters)?),
                Cow::Owned(with_delimiters(name, value, &delimiters)?),
            )
        }
        other => anyhow::bail!("{name}: operand 2 must be array or null but got {}", type_name(other)),
    };
    let compile = || {
        globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher())
    };
    with_kept(&GLOBS, &pattern, compile, |glob| glob.is_match(value.as_ref()))
        .map(Value::from)
        .map_err(|e| anyhow::anyhow!("{name}: invalid glob: {}", e.kind()))
}

/// `s` with `/` hidden, copied only when it holds one (a call's pattern
/// and value, at every call: most hold none).
fn hide_slashes(s: &str) -> Cow<'_, str> {
    if s.contains('/') {
        Cow::Owned(s.replace('/', HIDDEN))
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` with each delimiter made a path separator of its own (`/d/`), `/`
/// hidden unless it is a delimiter, and `:` hidden.
fn with_delimiters(name: &str, s: &str, delimiters: &[char]) -> anyhow::Result<String> {
    if s.contains(HIDDEN) {
        anyhow::bail!("{name}: the string holds a NUL character, which glob matching reserves");
    }
    let mut s = if delimiters.contains(&'/') {
        s.to_string()
    } else {
        hide_slashes(s).into_owned()
    };
    for &d in delimiters {
        match d {
            ':' => s = s.replace(':', HIDDEN),
            '/' => {}
            d => s = s.replace(d, &format!("/{d}/")),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn regex_match_answers_and_refuses_as_before() {
        assert_eq!(
            eval(r#"regex.match(`^kb\.[a-z]+$`, "kb.search")"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"regex.match(`^kb\.[a-z]+$`, "kb.Search")"#).unwrap(),
            json("false")
        );
        // The same pattern again, now kept: the same answers.
        assert_eq!(
            eval(r#"regex.match(`^kb\.[a-z]+$`, "kb.search")"#).unwrap(),
            json("true")
        );
        let e = eval(r#"regex.match(`(`, "x")"#).unwrap_err().to_string();
        assert!(e.contains("regex.match: error parsing regexp"), "{e}");
        let e = eval(r#"regex.match(1, "x")"#).unwrap_err().to_string();
        assert!(e.contains("operand 1 must be string"), "{e}");
        // Past regorus's compiled-size bound: refused, as regorus refuses it.
        let e = eval(r#"regex.match(`\w{1000}\w{1000}\w{1000}`, "x")"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("compiles past"), "{e}");
    }

    /// Each `glob.match(pattern, delimiters, value)` answers `want`.
    fn assert_globs(cases: &[(&str, &str, &str, bool)]) {
        for (pattern, delimiters, value, want) in cases {
            assert_eq!(
                eval(&format!(r#"glob.match("{pattern}", {delimiters}, "{value}")"#)).unwrap(),
                json(&want.to_string()),
                "{pattern} {delimiters} {value}"
            );
        }
    }

    #[test]
    fn glob_match_without_delimiters_crosses_dots_and_slashes() {
        assert_globs(&[
            ("*.search", "null", "kb.search", true),
            ("kb.*", "null", "kb.docs.search", true),
            ("*", "null", "a/b.c", true),
            ("payments.{refund,charge}", "null", "payments.charge", true),
            ("[!a-c]x", "null", "dx", true),
            ("[!a-c]x", "null", "bx", false),
            ("shell.*", "null", "os.exec", false),
        ]);
    }

    #[test]
    fn glob_match_stops_stars_at_delimiters() {
        assert_globs(&[
            ("*.search", "[]", "kb.search", true),
            ("*.search", "[]", "kb.docs.search", false),
            ("**.search", "[]", "kb.docs.search", true),
            ("a*", r#"["/"]"#, "ab/c", false),
            ("a*", r#"["-"]"#, "ab-c", false),
            ("a*", r#"["-"]"#, "ab.c", true),
            ("a*", r#"[""]"#, "ab.c", false),
        ]);
    }

    #[test]
    fn glob_match_refuses_what_it_cannot_read() {
        for call in [
            r#"glob.match("[a", null, "a")"#,
            r#"glob.match("a", ["ab"], "a")"#,
            r#"glob.match("a", [1], "a")"#,
            r#"glob.match("a", "x", "a")"#,
            r#"glob.match("a", ["."], "a\u0000")"#,
            r#"glob.match(1, null, "a")"#,
        ] {
            assert!(eval(call).is_err(), "{call} must fail");
        }
    }

    /// More patterns than a thread keeps: the least recently used are
    /// compiled again, with the same answers.
    #[test]
    fn patterns_past_what_a_thread_keeps_answer_the_same() {
        for round in 0..2 {
            for i in 0..super::KEPT + 10 {
                let call = format!(r#"regex.match(`^p{i}$`, "p{i}")"#);
                assert_eq!(eval(&call).unwrap(), json("true"), "round {round}: {call}");
            }
        }
    }
}

//! Finds the names of the top-level rules in a Rego module.
//!
//! The engine compiles and evaluates Rego; this scanner only answers two
//! questions it has no API for: which rules a module declares (so that a
//! decision for an unknown rule path is refused rather than silently
//! undefined) and which of them are tests (`test_` prefix, as `opa test`).
//! It is run on sources that have already compiled, so it can stay simple:
//! it tracks bracket depth outside strings and comments and reads the first
//! identifier of each statement at depth zero.

/// Where the string at byte `i` ends (the byte after it): a `"…"` string,
/// escapes skipped, ends at its closing quote or at the end of the line;
/// a `` `…` `` raw string at its closing backquote. None when no string
/// starts at `i`.
pub(crate) fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let (quote, stops_at_line) = match bytes.get(i)? {
        b'"' => (b'"', true),
        b'`' => (b'`', false),
        _ => return None,
    };
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != quote && !(stops_at_line && bytes[j] == b'\n') {
        j += if quote == b'"' && bytes[j] == b'\\' { 2 } else { 1 };
    }
    Some((j + 1).min(bytes.len()))
}

/// Where the comment at byte `i` ends: at its line break (not included).
pub(crate) fn comment_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |n| i + n)
}

/// Top-level rule names declared in `source`, in order of first appearance,
/// without duplicates. `default x := …` declares `x`; `a.b.c if …` declares `a`.
pub fn rule_names(source: &str) -> Vec<String> {
    rules(source).into_iter().map(|(name, _)| name).collect()
}

/// Like [`rule_names`], each with the 1-based line of its first appearance.
pub fn rules(source: &str) -> Vec<(String, usize)> {
    let mut names: Vec<(String, usize)> = Vec::new();
    let mut depth: i32 = 0;
    let mut at_statement_start = true;
    let mut chars = source.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                at_statement_start = depth == 0;
            }
            '"' => {
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                at_statement_start = false;
            }
            '`' => {
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
                at_statement_start = false;
            }
            '{' | '[' | '(' => {
                depth += 1;
                at_statement_start = false;
            }
            '}' | ']' | ')' => {
                depth -= 1;
                at_statement_start = false;
            }
            '\n' => at_statement_start = depth == 0,
            c if c.is_whitespace() => {}
            c if at_statement_start && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                let start = i;
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &source[start..end];
                match word {
                    "package" | "import" => {
                        // Skip to the end of the line.
                        for (_, c) in chars.by_ref() {
                            if c == '\n' {
                                break;
                            }
                        }
                        at_statement_start = true;
                        continue;
                    }
                    "default" => {
                        // The rule name follows.
                        at_statement_start = true;
                        continue;
                    }
                    // `else` continues the previous rule.
                    "else" => {}
                    _ => {
                        if !names.iter().any(|(n, _)| n == word) {
                            let line = source[..start].matches('\n').count() + 1;
                            names.push((word.to_string(), line));
                        }
                    }
                }
                at_statement_start = false;
            }
            _ => at_statement_start = false,
        }
    }
    names
}

/// The names of the test rules (`test_` prefix) in `source`.
pub fn test_names(source: &str) -> Vec<String> {
    rule_names(source)
        .into_iter()
        .filter(|n| n.starts_with("test_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_comments_end_where_rego_ends_them() {
        let text = br#"x := "a\"b" + `c"
d` # note
y"#;
        let quoted = text.iter().position(|b| *b == b'"').unwrap();
        assert_eq!(&text[quoted..string_end(text, quoted).unwrap()], br#""a\"b""#);
        let raw = text.iter().position(|b| *b == b'`').unwrap();
        assert_eq!(&text[raw..string_end(text, raw).unwrap()], b"`c\"\nd`");
        let hash = text.iter().position(|b| *b == b'#').unwrap();
        assert_eq!(&text[hash..comment_end(text, hash)], b"# note");
        assert_eq!(string_end(text, 0), None);
        // An unterminated string stops at the line's end, a raw one at the text's.
        assert_eq!(string_end(b"\"ab\ncd", 0), Some(4));
        assert_eq!(string_end(b"`ab", 0), Some(3));
    }

    #[test]
    fn finds_top_level_rules_not_locals_strings_or_comments() {
        let src = r#"
package agento.commissioning.routing
import rego.v1

default allow := false

allow if {
    no_open_punch_items
    x := "allow2 {"
}
# not_a_rule if { true }
reason["punch items still open"] if {
    not no_open_punch_items
}
a.b.c := 1
f(x) := y if { y := x }
msg := `raw
string_rule := 1`
test_ok if allow with input as {}
  indented_rule := 2
"#;
        assert_eq!(
            rule_names(src),
            vec!["allow", "reason", "a", "f", "msg", "test_ok", "indented_rule"]
        );
        assert_eq!(test_names(src), vec!["test_ok"]);
        let lines: Vec<usize> = rules(src).into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, vec![5, 12, 15, 16, 17, 19, 20]);
    }

    #[test]
    fn else_chains_are_one_rule() {
        let src = "package p\nx := 1 if { input.a }\nelse := 2\n";
        assert_eq!(rule_names(src), vec!["x"]);
    }
}

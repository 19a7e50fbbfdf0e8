//! `regex.globs_match(a, b)`: do two "regex-style globs" match a common
//! non-empty string? OPA answers with the glob-intersection algorithm
//! (`gintersect.NonEmpty`), and so does Warden, step for step, since the
//! algorithm's answer is not always the set-theoretic one (`x*y*z*` and
//! `zz` do not intersect, to it) and policies are tested against OPA.
//!
//! The syntax: `.` is any character; `[…]` a set of characters with
//! `a-z` ranges (`.`, `*`, `^` are themselves inside); `+` and `*` repeat
//! the token before them; `\` makes the next character literal; every
//! other character is itself (`?`, `|`, `(`, `{` included). Both patterns
//! are anchored at both ends.
//!
//! The algorithm backtracks: its work grows exponentially with the number
//! of `+`/`*`. Patterns may come from an attacker, so the steps are
//! bounded and a pair that needs more fails the evaluation.

use regorus::Value;

use super::{Answer, Builtin, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("regex.globs_match", 2, globs_match)];

/// Most steps (calls of the matcher's parts) one answer may take.
const MAX_STEPS: usize = 1_000_000;

fn globs_match(args: &[Value]) -> Answer {
    let name = "regex.globs_match";
    let a = string(name, args, 1)?;
    let b = string(name, args, 2)?;
    let g1 = parse(a).map_err(|e| anyhow::anyhow!("{name}: input:{a}, {e}: the input provided is invalid"))?;
    let g2 = parse(b).map_err(|e| anyhow::anyhow!("{name}: input:{b}, {e}: the input provided is invalid"))?;
    let mut m = Matcher { steps: 0 };
    let answer = m.non_empty(&g1, &g2);
    if m.steps > MAX_STEPS {
        anyhow::bail!("{name}: the patterns need more than {MAX_STEPS} steps to compare");
    }
    Ok(Value::from(answer))
}

#[derive(Debug, Clone, PartialEq)]
enum Class {
    Char(char),
    Dot,
    Set(Vec<char>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flag {
    None,
    Plus,
    Star,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    class: Class,
    flag: Flag,
}

/// Most characters a set may expand to (`[\u{0}-\u{10FFFF}]` would be a
/// million).
const MAX_SET: usize = 65_536;

fn parse(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, escaped) = next_char(&chars, &mut i)?;
        let class = if escaped {
            Class::Char(c)
        } else {
            match c {
                '.' => Class::Dot,
                '[' => set(&chars, &mut i)?,
                ']' => return Err(format!("pos:{i}, set-close ']' with no preceding '['")),
                '+' | '*' => {
                    let flag = if c == '+' { Flag::Plus } else { Flag::Star };
                    match tokens.last_mut() {
                        Some(t) if t.flag == Flag::None => {
                            t.flag = flag;
                            continue;
                        }
                        _ => return Err(format!("pos:{i}, flag '{c}' must be preceded by a non-flag")),
                    }
                }
                other => Class::Char(other),
            }
        };
        tokens.push(Token {
            class,
            flag: Flag::None,
        });
    }
    Ok(tokens)
}

/// The character at `i` (after a `\`, escaped), moving `i` past it.
fn next_char(chars: &[char], i: &mut usize) -> Result<(char, bool), String> {
    if chars[*i] == '\\' {
        match chars.get(*i + 1) {
            Some(&c) => {
                *i += 2;
                Ok((c, true))
            }
            None => Err(format!("pos:{}, input ends with a \\ (escape) character", *i)),
        }
    } else {
        *i += 1;
        Ok((chars[*i - 1], false))
    }
}

/// The set after a `[`, up to its `]`.
fn set(chars: &[char], i: &mut usize) -> Result<Class, String> {
    let mut members: Vec<char> = Vec::new();
    let mut prev: Option<char> = None;
    while *i < chars.len() {
        let (c, escaped) = next_char(chars, i)?;
        match (c, escaped) {
            (']', false) => {
                members.sort_unstable();
                members.dedup();
                return Ok(Class::Set(members));
            }
            ('-', false) => {
                let Some(from) = prev else {
                    return Err(format!(
                        "pos:{i}, range character '-' must be preceded by a Unicode character"
                    ));
                };
                if *i + 1 >= chars.len() {
                    return Err(format!(
                        "pos:{i}, range character '-' must be followed by a Unicode character"
                    ));
                }
                let (to, escaped) = next_char(chars, i)?;
                if !escaped && (to == ']' || to == '-') {
                    return Err(format!(
                        "pos:{i}, range character '-' cannot be followed by a special symbol"
                    ));
                }
                if to < from {
                    return Err(format!(
                        "pos:{i}, range is out of order: '{to}' comes before '{from}' in Unicode"
                    ));
                }
                if (to as usize) - (from as usize) + members.len() > MAX_SET {
                    return Err(format!("pos:{i}, a set of more than {MAX_SET} characters"));
                }
                members.extend(from..=to);
                prev = None;
            }
            (c, _) => {
                members.push(c);
                prev = Some(c);
            }
        }
    }
    Err(format!("pos:{i}, found [ without matching ]"))
}

/// Whether two tokens share a character, flags aside. A dot shares one with
/// anything, an empty set included, as in the algorithm OPA runs.
fn matches(a: &Token, b: &Token) -> bool {
    match (&a.class, &b.class) {
        (Class::Dot, _) | (_, Class::Dot) => true,
        (Class::Char(x), Class::Char(y)) => x == y,
        (Class::Char(c), Class::Set(s)) | (Class::Set(s), Class::Char(c)) => s.binary_search(c).is_ok(),
        (Class::Set(s), Class::Set(t)) => s.iter().any(|c| t.binary_search(c).is_ok()),
    }
}

struct Matcher {
    steps: usize,
}

impl Matcher {
    /// False once the step budget is spent (the caller then fails).
    fn step(&mut self) -> bool {
        self.steps += 1;
        self.steps <= MAX_STEPS
    }

    fn non_empty(&mut self, g1: &[Token], g2: &[Token]) -> bool {
        let Some((g1, g2)) = trim(g1, g2) else {
            return false;
        };
        self.normal(g1, g2)
    }

    fn normal(&mut self, g1: &[Token], g2: &[Token]) -> bool {
        if !self.step() {
            return false;
        }
        let mut i = 0;
        while i < g1.len() && i < g2.len() {
            if g1[i].flag == Flag::None && g2[i].flag == Flag::None {
                if !matches(&g1[i], &g2[i]) {
                    return false;
                }
            } else {
                return self.special(&g1[i..], &g2[i..]);
            }
            i += 1;
        }
        i == g1.len() && i == g2.len()
    }

    fn special(&mut self, g1: &[Token], g2: &[Token]) -> bool {
        let (flagged, other) = if g1[0].flag != Flag::None { (g1, g2) } else { (g2, g1) };
        match flagged[0].flag {
            Flag::Plus => self.plus(flagged, other),
            Flag::Star => self.star(flagged, other),
            Flag::None => false,
        }
    }

    fn plus(&mut self, plussed: &[Token], other: &[Token]) -> bool {
        if !self.step() || !matches(&plussed[0], &other[0]) {
            return false;
        }
        // The repeated token takes other[0]; or other[0], itself
        // repeated, takes the whole of plussed[0].
        self.star(plussed, &other[1..]) || (other[0].flag != Flag::None && self.normal(&plussed[1..], other))
    }

    fn star(&mut self, starred: &[Token], other: &[Token]) -> bool {
        if !self.step() {
            return false;
        }
        let star = &starred[0];
        let next = starred.get(1);
        for (i, t) in other.iter().enumerate() {
            match next {
                Some(n) if matches(t, n) => {
                    if self.normal(&starred[1..], &other[i..]) {
                        return true;
                    }
                    if !matches(t, star) {
                        return false;
                    }
                }
                _ => {
                    if !matches(t, star) {
                        return false;
                    }
                }
            }
        }
        next.is_none()
    }
}

/// Drops the unrepeated tokens the two share at the start and at the end
/// (keeping one of each, as the algorithm needs), or `None` when those
/// differ.
fn trim<'a>(g1: &'a [Token], g2: &'a [Token]) -> Option<(&'a [Token], &'a [Token])> {
    let unflagged = |t: &Token| t.flag == Flag::None;
    let mut l = 0;
    while l < g1.len() && l < g2.len() && unflagged(&g1[l]) && unflagged(&g2[l]) {
        if !matches(&g1[l], &g2[l]) {
            return None;
        }
        l += 1;
    }
    l = l.saturating_sub(1);
    // Exclusive ends.
    let (mut r1, mut r2) = (g1.len(), g2.len());
    while r1 > l && r2 > l && unflagged(&g1[r1 - 1]) && unflagged(&g2[r2 - 1]) {
        if !matches(&g1[r1 - 1], &g2[r2 - 1]) {
            return None;
        }
        r1 -= 1;
        r2 -= 1;
    }
    if r1 < g1.len() {
        r1 += 1;
        r2 += 1;
    }
    Some((&g1[l..r1], &g2[l..r2]))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn globs_intersect_as_in_opa() {
        for (a, b, want) in [
            ("a.a.[0-9]+z", ".b.b2359825792*594823z", true),
            ("[a-z]+", "[0-9]+", false),
            ("a*", "b*", false),
            ("", "", true),
            ("a*", "", false),
            ("ab*c", "ac", true),
            ("x*y*z*", "zz", false),
            ("[^a]", "^", true),
            ("a?", "a", false),
            ("\\d", "d", true),
            ("[]", "a", false),
        ] {
            let got = eval(&format!("regex.globs_match({}, {})", json_text(a), json_text(b))).unwrap();
            assert_eq!(got, json(if want { "true" } else { "false" }), "{a} ∩ {b}");
        }
        for bad in ["x[", "*", "a**", "[a-]", "[-a]", "[z-a]", "\\", "]"] {
            assert!(
                eval(&format!("regex.globs_match({}, \"a\")", json_text(bad))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_pattern_too_costly_to_compare_fails_rather_than_hangs() {
        // Every `.*` may take any run of the `a`s; only the last tokens
        // differ, so each way is tried before the answer is known.
        let a = ".*".repeat(30) + "b+";
        let b = "a".repeat(60) + "c+";
        let started = std::time::Instant::now();
        let r = eval(&format!("regex.globs_match({}, {})", json_text(&a), json_text(&b)));
        assert!(r.is_err(), "{r:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    fn json_text(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }
}

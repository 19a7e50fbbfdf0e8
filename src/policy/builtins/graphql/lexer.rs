//! GraphQL's lexical grammar (spec §2.1): punctuators, names, numbers and
//! strings, with white space, commas and comments skipped. Errors are
//! worded as the Go parser OPA embeds words them.

use super::GqlError;
use super::ast::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Eof,
    Bang,
    Dollar,
    Amp,
    ParenL,
    ParenR,
    Spread,
    Colon,
    Equals,
    At,
    BracketL,
    BracketR,
    BraceL,
    Pipe,
    BraceR,
    Name,
    Int,
    Float,
    String,
    BlockString,
}

impl Kind {
    /// The token's name in "Expected …" messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Eof => "<EOF>",
            Kind::Bang => "!",
            Kind::Dollar => "$",
            Kind::Amp => "&",
            Kind::ParenL => "(",
            Kind::ParenR => ")",
            Kind::Spread => "...",
            Kind::Colon => ":",
            Kind::Equals => "=",
            Kind::At => "@",
            Kind::BracketL => "[",
            Kind::BracketR => "]",
            Kind::BraceL => "{",
            Kind::Pipe => "|",
            Kind::BraceR => "}",
            Kind::Name => "Name",
            Kind::Int => "Int",
            Kind::Float => "Float",
            Kind::String => "String",
            Kind::BlockString => "BlockString",
        }
    }
}

/// One token: its kind, its value (a name, a number's text, a string's
/// decoded contents) and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub value: String,
    pub pos: Pos,
}

impl Token {
    /// The token as "Unexpected …" names it: `Name "type"`, `{`, `<EOF>`.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            Kind::Name | Kind::Int | Kind::Float | Kind::String | Kind::BlockString => {
                format!("{} \"{}\"", self.kind.describe(), self.value)
            }
            k => k.describe().to_string(),
        }
    }
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: u32,
    line_start: usize,
    /// The last place whose column was counted, and that column: columns
    /// count code points, and counting on from here keeps a long line
    /// linear.
    counted: std::cell::Cell<(usize, u32)>,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Lexer<'a> {
        // A byte-order mark at the start is white space.
        let at = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Lexer {
            src,
            bytes: src.as_bytes(),
            at,
            line: 1,
            line_start: 0,
            counted: std::cell::Cell::new((0, 1)),
        }
    }

    fn pos_at(&self, at: usize) -> Pos {
        let (from, column) = match self.counted.get() {
            (from, column) if from >= self.line_start && from <= at => (from, column),
            _ => (self.line_start, 1),
        };
        let column = column + self.src.get(from..at).map_or(0, |s| s.chars().count()) as u32;
        self.counted.set((at, column));
        Pos {
            line: self.line,
            column,
        }
    }

    /// A lexical error, as OPA reports every one: an invalid token where
    /// reading stopped (an unterminated string, a bad escape, `01`, `1a`).
    fn invalid(&self, at: usize) -> GqlError {
        GqlError::new("Unexpected <Invalid>", self.pos_at(at))
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.at;
    }

    /// Skips white space, line terminators, commas and comments.
    fn skip_ignored(&mut self) {
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b' ' | b'\t' | b',' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    self.newline();
                }
                b'\r' => {
                    self.at += 1;
                    if self.bytes.get(self.at) == Some(&b'\n') {
                        self.at += 1;
                    }
                    self.newline();
                }
                b'#' => {
                    while self.at < self.bytes.len() && !matches!(self.bytes[self.at], b'\n' | b'\r') {
                        self.at += 1;
                    }
                }
                _ if self.src[self.at..].starts_with('\u{feff}') => self.at += 3,
                _ => return,
            }
        }
    }

    /// The next token, `Eof` at the end.
    pub(crate) fn next_token(&mut self) -> Result<Token, GqlError> {
        self.skip_ignored();
        let start = self.at;
        let pos = self.pos_at(start);
        let Some(&b) = self.bytes.get(start) else {
            return Ok(Token {
                kind: Kind::Eof,
                value: String::new(),
                pos,
            });
        };
        let punct = |kind| {
            Ok(Token {
                kind,
                value: String::new(),
                pos,
            })
        };
        let single = match b {
            b'!' => Some(Kind::Bang),
            b'$' => Some(Kind::Dollar),
            b'&' => Some(Kind::Amp),
            b'(' => Some(Kind::ParenL),
            b')' => Some(Kind::ParenR),
            b':' => Some(Kind::Colon),
            b'=' => Some(Kind::Equals),
            b'@' => Some(Kind::At),
            b'[' => Some(Kind::BracketL),
            b']' => Some(Kind::BracketR),
            b'{' => Some(Kind::BraceL),
            b'|' => Some(Kind::Pipe),
            b'}' => Some(Kind::BraceR),
            _ => None,
        };
        if let Some(kind) = single {
            self.at += 1;
            return punct(kind);
        }
        match b {
            b'.' => {
                if self.src[start..].starts_with("...") {
                    self.at += 3;
                    return punct(Kind::Spread);
                }
                Err(self.invalid(start))
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let mut end = start + 1;
                while end < self.bytes.len() && (self.bytes[end] == b'_' || self.bytes[end].is_ascii_alphanumeric()) {
                    end += 1;
                }
                self.at = end;
                Ok(Token {
                    kind: Kind::Name,
                    value: self.src[start..end].to_string(),
                    pos,
                })
            }
            b'-' | b'0'..=b'9' => self.number(start, pos),
            b'"' => {
                if self.src[start..].starts_with("\"\"\"") {
                    self.block_string(start, pos)
                } else {
                    self.string(start, pos)
                }
            }
            _ => Err(self.invalid(start)),
        }
    }

    fn digits(&mut self) -> Result<(), GqlError> {
        match self.bytes.get(self.at) {
            Some(b) if b.is_ascii_digit() => {
                while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                Ok(())
            }
            _ => Err(self.invalid(self.at)),
        }
    }

    fn number(&mut self, start: usize, pos: Pos) -> Result<Token, GqlError> {
        let mut float = false;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        if self.bytes.get(self.at) == Some(&b'0') {
            self.at += 1;
            if self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                return Err(self.invalid(self.at));
            }
        } else {
            self.digits()?;
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            float = true;
            self.at += 1;
            self.digits()?;
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            float = true;
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
        }
        // A number runs into no name and no dot: `1a`, `1.2.3`.
        if let Some(&b) = self.bytes.get(self.at)
            && (b == b'.' || b == b'_' || b.is_ascii_alphabetic())
        {
            return Err(self.invalid(self.at));
        }
        let kind = if float { Kind::Float } else { Kind::Int };
        Ok(Token {
            kind,
            value: self.src[start..self.at].to_string(),
            pos,
        })
    }

    fn string(&mut self, start: usize, pos: Pos) -> Result<Token, GqlError> {
        self.at = start + 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.at..].chars().next() else {
                return Err(self.invalid(self.at));
            };
            match c {
                '"' => {
                    self.at += 1;
                    return Ok(Token {
                        kind: Kind::String,
                        value: out,
                        pos,
                    });
                }
                '\n' | '\r' => return Err(self.invalid(self.at)),
                '\\' => {
                    let esc_at = self.at;
                    self.at += 1;
                    let Some(e) = self.src[self.at..].chars().next() else {
                        return Err(self.invalid(self.at));
                    };
                    self.at += e.len_utf8();
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = self
                                .src
                                .get(self.at..self.at + 4)
                                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                            let Some(hex) = hex else {
                                return Err(self.invalid(esc_at));
                            };
                            let code = u32::from_str_radix(hex, 16).unwrap_or(0xfffd);
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            self.at += 4;
                        }
                        _ => return Err(self.invalid(esc_at)),
                    }
                }
                c if (c as u32) < 0x20 && c != '\t' => {
                    return Err(self.invalid(self.at));
                }
                c => {
                    out.push(c);
                    self.at += c.len_utf8();
                }
            }
        }
    }

    fn block_string(&mut self, start: usize, pos: Pos) -> Result<Token, GqlError> {
        self.at = start + 3;
        let mut raw = String::new();
        loop {
            let rest = &self.src[self.at..];
            if rest.is_empty() {
                return Err(self.invalid(self.at));
            }
            if rest.starts_with("\"\"\"") {
                self.at += 3;
                return Ok(Token {
                    kind: Kind::BlockString,
                    value: block_string_value(&raw),
                    pos,
                });
            }
            if rest.starts_with("\\\"\"\"") {
                raw.push_str("\"\"\"");
                self.at += 4;
                continue;
            }
            let Some(c) = rest.chars().next() else {
                return Err(self.invalid(self.at));
            };
            self.at += c.len_utf8();
            match c {
                '\n' => {
                    raw.push('\n');
                    self.newline();
                }
                '\r' => {
                    if self.bytes.get(self.at) == Some(&b'\n') {
                        self.at += 1;
                    }
                    raw.push('\n');
                    self.newline();
                }
                c if (c as u32) < 0x20 && c != '\t' => {
                    return Err(self.invalid(self.at - 1));
                }
                c => raw.push(c),
            }
        }
    }
}

/// A block string's value as OPA reads it: the indentation common to every
/// line that is not blank, the first line included, removed from each line
/// but the first, then blank first and last lines dropped. (The
/// specification leaves the first line out of the common indentation.)
pub(crate) fn block_string_value(raw: &str) -> String {
    let lines: Vec<&str> = raw.split('\n').collect();
    let indent_of = |l: &str| l.chars().take_while(|c| *c == ' ' || *c == '\t').count();
    let common = lines
        .iter()
        .filter(|l| indent_of(l) < l.chars().count())
        .map(|l| indent_of(l))
        .min();
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| match (i, common) {
            (0, _) | (_, None) => l.to_string(),
            (_, Some(n)) => l.chars().skip(n).collect(),
        })
        .collect();
    let blank = |l: &String| l.chars().all(|c| c == ' ' || c == '\t');
    while out.first().is_some_and(blank) {
        out.remove(0);
    }
    while out.last().is_some_and(blank) {
        out.pop();
    }
    out.join("\n")
}

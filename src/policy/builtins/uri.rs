//! `uri.parse` and `uri.is_valid` as OPA answers them: URLs read as Go's
//! `net/url` `url.Parse` reads them (lax about most characters, strict about
//! escapes, ports and bracketed hosts), with Go's error messages.
//!
//! The parser here is also what `providers.aws.sign_req` reads its URL with.
//! Every step is a linear scan of the text.

use std::collections::BTreeMap;

use regorus::Value;

use super::{Builtin, go_quote_bytes, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("uri.parse", 1, parse), ("uri.is_valid", 1, is_valid)];

/// A URL as Go's `url.URL` holds it after `url.Parse`. Decoded parts are
/// bytes: an escape such as `%ff` may decode to text that is not UTF-8.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct GoUrl {
    pub scheme: String,
    pub opaque: String,
    /// The decoded host with its `:port`, brackets kept (`[::1]:80`).
    pub host: Vec<u8>,
    pub path: Vec<u8>,
    /// The path as written, kept only when it is not Go's default
    /// encoding of `path`.
    pub raw_path: String,
    pub raw_query: String,
    pub fragment: Vec<u8>,
    /// The fragment as written, kept only when it is not Go's default
    /// encoding of `fragment` (`%41` for `A`).
    pub raw_fragment: String,
    /// The user information as written (`user:pass` of `user:pass@host`).
    pub userinfo: Option<String>,
    /// A `?` with nothing after it.
    pub force_query: bool,
    /// `scheme:/path`: a scheme, then a path with no `//` authority.
    pub omit_host: bool,
}

/// Which part of a URL a text is, as Go's `shouldEscape` distinguishes them.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    UserPassword,
    Host,
    Zone,
    Fragment,
}

/// Go's `shouldEscape`: whether `c` must be percent-encoded in `mode`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `unescape`: percent-escapes decoded, with Go's `EscapeError` and
/// `InvalidHostError` messages.
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            if i + 2 >= s.len() || !s[i + 1].is_ascii_hexdigit() || !s[i + 2].is_ascii_hexdigit() {
                let end = (i + 3).min(s.len());
                return Err(format!("invalid URL escape {}", go_quote_bytes(&s[i..end])));
            }
            let v = (unhex(s[i + 1]) << 4) | unhex(s[i + 2]);
            let is_25 = &s[i..i + 3] == b"%25";
            if mode == Mode::Host && unhex(s[i + 1]) < 8 && !is_25 {
                return Err(format!("invalid URL escape {}", go_quote_bytes(&s[i..i + 3])));
            }
            if mode == Mode::Zone && !is_25 && v != b' ' && should_escape(v, Mode::Host) {
                return Err(format!("invalid URL escape {}", go_quote_bytes(&s[i..i + 3])));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                return Err(format!(
                    "invalid character {} in host name",
                    go_quote_bytes(&s[i..i + 1])
                ));
            }
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `escape` in `mode` (upper-case hex).
fn escape(s: &[u8], mode: Mode) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s {
        // Every byte >= 0x80 is escaped, so `out` stays ASCII.
        if should_escape(c, mode) || !c.is_ascii() {
            out.push('%');
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        } else {
            out.push(c as char);
        }
    }
    out
}

/// Go's `validEncoded` for a path.
/// Go's `validEncoded` in `mode`.
fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes().all(|c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c, mode)
    })
}

/// Go's `validOptionalPort`: empty, or `:` and digits.
fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

impl GoUrl {
    /// Go's `URL.String()`: the URL written back, each part escaped as Go
    /// escapes it (`not a url` is `not%20a%20url`). User information is
    /// written as it was read.
    pub(crate) fn to_go_string(&self) -> String {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.opaque.is_empty() {
            out.push_str(&self.opaque);
        } else {
            let authority = !self.host.is_empty() || self.userinfo.is_some();
            if authority || (!self.scheme.is_empty() && !self.omit_host) {
                if !self.host.is_empty() || !self.path.is_empty() || self.userinfo.is_some() {
                    out.push_str("//");
                }
                if let Some(user) = &self.userinfo {
                    out.push_str(user);
                    out.push('@');
                }
                out.push_str(&escape(&self.host, Mode::Host));
            }
            // Go's `EscapedPath`: the path as written where that is a
            // valid encoding of it.
            let path = if !self.raw_path.is_empty() && valid_encoded(&self.raw_path, Mode::Path) {
                self.raw_path.clone()
            } else if self.path == b"*" {
                "*".to_string()
            } else {
                escape(&self.path, Mode::Path)
            };
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                out.push('/');
            }
            if out.is_empty() && path.split('/').next().is_some_and(|segment| segment.contains(':')) {
                out.push_str("./");
            }
            out.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            if self.raw_fragment.is_empty() || !valid_encoded(&self.raw_fragment, Mode::Fragment) {
                out.push_str(&escape(&self.fragment, Mode::Fragment));
            } else {
                out.push_str(&self.raw_fragment);
            }
        }
        out
    }

    /// Go's `URL.EscapedPath`, the path as a request line writes it.
    pub(crate) fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(self.raw_path.as_bytes(), Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == b"*" {
            return "*".to_string();
        }
        escape(&self.path, Mode::Path)
    }

    /// Go's `URL.Hostname` and `URL.Port`.
    fn host_port(&self) -> (&[u8], &[u8]) {
        let mut host: &[u8] = &self.host;
        let mut port: &[u8] = b"";
        if let Some(colon) = host.iter().rposition(|&b| b == b':')
            && valid_optional_port(&host[colon..])
        {
            port = &host[colon + 1..];
            host = &host[..colon];
        }
        if host.len() >= 2 && host[0] == b'[' && host[host.len() - 1] == b']' {
            host = &host[1..host.len() - 1];
        }
        (host, port)
    }
}

/// Go's `url.Parse`; the error is Go's `*url.Error` text
/// (`parse "<url>": <reason>`).
pub(crate) fn go_parse(raw: &str) -> Result<GoUrl, String> {
    let (u, frag) = match raw.split_once('#') {
        Some((u, f)) => (u, f),
        None => (raw, ""),
    };
    let mut url = parse_no_fragment(u).map_err(|e| format!("parse {}: {e}", go_quote_bytes(u.as_bytes())))?;
    if !frag.is_empty() {
        url.fragment = unescape(frag.as_bytes(), Mode::Fragment)
            .map_err(|e| format!("parse {}: {e}", go_quote_bytes(raw.as_bytes())))?;
        if escape(&url.fragment, Mode::Fragment) != frag {
            url.raw_fragment = frag.to_string();
        }
    }
    Ok(url)
}

/// Go's `getScheme`: the scheme and the rest, or an error for a leading `:`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's internal `parse` (not via a request) of a URL without fragment.
fn parse_no_fragment(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        url.path = b"*".to_vec();
        return Ok(url);
    }
    let (scheme, rest) = split_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.bytes().filter(|&b| b == b'?').count() == 1 {
        rest = &rest[..rest.len() - 1];
        url.force_query = true;
    } else if let Some((r, q)) = rest.split_once('?') {
        rest = r;
        url.raw_query = q.to_string();
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, path) = match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        };
        url.host = parse_authority(&url.scheme, authority)?;
        url.userinfo = authority.rfind('@').map(|i| authority[..i].to_string());
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }
    url.path = unescape(rest.as_bytes(), Mode::Path)?;
    if escape(&url.path, Mode::Path) != rest {
        url.raw_path = rest.to_string();
    }
    Ok(url)
}

/// Go's `parseAuthority`: the host is checked first, then the user info
/// (which `uri.parse` does not return).
fn parse_authority(scheme: &str, authority: &str) -> Result<Vec<u8>, String> {
    let at = authority.rfind('@');
    let host = parse_host(scheme, &authority.as_bytes()[at.map_or(0, |i| i + 1)..])?;
    if let Some(i) = at {
        let userinfo = &authority[..i];
        let valid = userinfo.chars().all(|r| {
            r.is_ascii_alphanumeric()
                || matches!(
                    r,
                    '-' | '.'
                        | '_'
                        | ':'
                        | '~'
                        | '!'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '%'
                        | '@'
                )
        });
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        for part in userinfo.splitn(2, ':') {
            unescape(part.as_bytes(), Mode::UserPassword)?;
        }
    }
    Ok(host)
}

/// Go's `parseHost` (as of Go 1.26): `[` only opens an IPv6 literal, which
/// must parse as an IPv6 address (with an optional `%25` zone); for `http`
/// and `https` everything after the first colon is the port, for other
/// schemes what follows the last one.
fn parse_host(scheme: &str, host: &[u8]) -> Result<Vec<u8>, String> {
    if host.len() > 1 && host[1..].contains(&b'[') {
        return Err("invalid IP-literal".into());
    }
    if host.first() == Some(&b'[') {
        let Some(close) = host.iter().rposition(|&b| b == b']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote_bytes(colon_port)));
        }
        let inside = &host[..close];
        let decoded = match inside.windows(3).position(|w| w == b"%25") {
            Some(zone) => {
                let mut d = unescape(&host[..zone], Mode::Host)?;
                d.extend(unescape(&host[zone..close], Mode::Zone)?);
                d
            }
            None => unescape(inside, Mode::Host)?,
        };
        let addr = &decoded[1..];
        match parse_addr(addr) {
            Err(e) => return Err(format!("invalid host: {e}")),
            Ok(true) => return Err("invalid IP-literal".into()),
            Ok(false) => {}
        }
        let mut out = decoded;
        out.extend(unescape(&host[close..], Mode::Host)?);
        return Ok(out);
    }
    let colon = if scheme == "http" || scheme == "https" {
        host.iter().position(|&b| b == b':')
    } else {
        host.iter().rposition(|&b| b == b':')
    };
    if let Some(colon) = colon {
        let colon_port = &host[colon..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote_bytes(colon_port)));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `netip.ParseAddr`: `Ok(true)` for an IPv4 address, `Ok(false)` for
/// IPv6, or its error text.
fn parse_addr(s: &[u8]) -> Result<bool, String> {
    let err = |msg: &str, at: &[u8]| {
        if at.is_empty() {
            format!("ParseAddr({}): {msg}", go_quote_bytes(s))
        } else {
            format!("ParseAddr({}): {msg} (at {})", go_quote_bytes(s), go_quote_bytes(at))
        }
    };
    for &c in s {
        match c {
            b'.' => return parse_ipv4_fields(s, s).map(|_| true),
            b':' => return parse_ipv6(s, &err).map(|_| false),
            b'%' => return Err(err("missing IPv6 address", b"")),
            _ => {}
        }
    }
    Err(err("unable to parse IP", b""))
}

/// Go's `parseIPv4Fields` of `part` (a suffix of `input`, which errors name).
fn parse_ipv4_fields(input: &[u8], part: &[u8]) -> Result<(), String> {
    let err = |msg: &str, at: &[u8]| {
        if at.is_empty() {
            format!("ParseAddr({}): {msg}", go_quote_bytes(input))
        } else {
            format!(
                "ParseAddr({}): {msg} (at {})",
                go_quote_bytes(input),
                go_quote_bytes(at)
            )
        }
    };
    let (mut val, mut pos, mut digits) = (0u32, 0usize, 0usize);
    for (i, &c) in part.iter().enumerate() {
        if c.is_ascii_digit() {
            if digits == 1 && val == 0 {
                return Err(err("IPv4 field has octet with leading zero", b""));
            }
            val = val * 10 + u32::from(c - b'0');
            digits += 1;
            if val > 255 {
                return Err(err("IPv4 field has value >255", b""));
            }
        } else if c == b'.' {
            if i == 0 || i == part.len() - 1 || part[i - 1] == b'.' {
                return Err(err("IPv4 field must have at least one digit", &part[i..]));
            }
            if pos == 3 {
                return Err(err("IPv4 address too long", b""));
            }
            pos += 1;
            val = 0;
            digits = 0;
        } else {
            return Err(err("unexpected character", &part[i..]));
        }
    }
    if pos < 3 {
        return Err(err("IPv4 address too short", b""));
    }
    Ok(())
}

/// Go's `parseIPv6`, errors only.
fn parse_ipv6(input: &[u8], err: &dyn Fn(&str, &[u8]) -> String) -> Result<(), String> {
    let mut s = input;
    let mut zone_len = None;
    if let Some(i) = s.iter().position(|&b| b == b'%') {
        if i + 1 == s.len() {
            return Err(err("zone must be a non-empty string", b""));
        }
        zone_len = Some(s.len() - i - 1);
        s = &s[..i];
    }
    let mut ellipsis: Option<usize> = None;
    if s.len() >= 2 && s[0] == b':' && s[1] == b':' {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return Ok(());
        }
    }
    let mut i = 0usize;
    while i < 16 {
        let mut off = 0;
        while off < s.len() && s[off].is_ascii_hexdigit() {
            if off > 3 {
                return Err(err("each group must have 4 or less digits", s));
            }
            off += 1;
        }
        if off == 0 {
            return Err(err("each colon-separated field must have at least one digit", s));
        }
        if off < s.len() && s[off] == b'.' {
            if ellipsis.is_none() && i != 12 {
                return Err(err(
                    "embedded IPv4 address must replace the final 2 fields of the address",
                    s,
                ));
            }
            if i + 4 > 16 {
                return Err(err(
                    "too many hex fields to fit an embedded IPv4 at the end of the address",
                    s,
                ));
            }
            let end = input.len() - zone_len.map_or(0, |z| z + 1);
            parse_ipv4_fields(input, &input[end - s.len()..end])?;
            s = b"";
            i += 4;
            break;
        }
        i += 2;
        s = &s[off..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' {
            return Err(err("unexpected character, want colon", s));
        } else if s.len() == 1 {
            return Err(err("colon must be followed by more characters", s));
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return Err(err("multiple :: in address", s));
            }
            ellipsis = Some(i);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return Err(err("trailing garbage after address", s));
    }
    if i < 16 {
        if ellipsis.is_none() {
            return Err(err("address string too short", b""));
        }
    } else if ellipsis.is_some() {
        return Err(err("the :: must expand to at least one field of zeros", s));
    }
    Ok(())
}

/// Bytes as Go's JSON encoder writes a string of them: each byte that is
/// not part of valid UTF-8 becomes U+FFFD.
pub(crate) fn go_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or(""));
                out.push('\u{fffd}');
                rest = &tail[1..];
            }
        }
    }
    out
}

/// `uri.parse(s)` as OPA answers: the non-empty parts of the URL; an error
/// where Go's `url.Parse` fails.
fn parse(args: &[Value]) -> anyhow::Result<Value> {
    let text = string("uri.parse", args, 1)?;
    let url = go_parse(text).map_err(|e| anyhow::anyhow!("uri.parse: {e}"))?;
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            out.insert(Value::from(k), Value::from(v));
        }
    };
    let (hostname, port) = url.host_port();
    put("scheme", url.scheme.clone());
    put("hostname", go_lossy(hostname));
    put("port", go_lossy(port));
    put("path", go_lossy(&url.path));
    let raw_path = if url.raw_path.is_empty() {
        go_lossy(&url.path)
    } else {
        url.raw_path.clone()
    };
    put("raw_path", raw_path);
    put("raw_query", url.raw_query.clone());
    put("fragment", go_lossy(&url.fragment));
    Ok(Value::from(out))
}

/// `uri.is_valid(s)` as OPA answers: true for a non-empty string Go's
/// `url.Parse` accepts, false otherwise (also for a non-string).
fn is_valid(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(match &args[0] {
        Value::String(s) => !s.is_empty() && go_parse(s).is_ok(),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    fn parsed(url: &str) -> regorus::Value {
        eval(&format!("uri.parse({url:?})")).unwrap()
    }

    fn error(url: &str) -> String {
        eval(&format!("uri.parse({url:?})")).unwrap_err().to_string()
    }

    #[test]
    fn parts_are_returned_when_not_empty() {
        assert_eq!(
            parsed("https://user:pw@example.com:8443/p%20a/b?q=1&q=2#frag"),
            json(
                r#"{"fragment":"frag","hostname":"example.com","path":"/p a/b","port":"8443",
                    "raw_path":"/p a/b","raw_query":"q=1&q=2","scheme":"https"}"#
            )
        );
        // Opaque URLs give their scheme, query and fragment only; `?` and
        // `#` with nothing after them give nothing.
        assert_eq!(
            parsed("mailto:x@y?subject=hi#f"),
            json(r#"{"fragment":"f","raw_query":"subject=hi","scheme":"mailto"}"#)
        );
        assert_eq!(
            parsed("http://ab/x?#"),
            json(r#"{"hostname":"ab","path":"/x","raw_path":"/x","scheme":"http"}"#)
        );
        assert_eq!(parsed(""), json("{}"));
        assert_eq!(
            parsed("http://:80/"),
            json(r#"{"path":"/","port":"80","raw_path":"/","scheme":"http"}"#)
        );
    }

    #[test]
    fn raw_path_is_the_path_as_written_unless_go_would_write_it_so() {
        assert_eq!(parsed("http://h/x%2Fy")["raw_path"], json(r#""/x%2Fy""#));
        assert_eq!(parsed("http://h/x%2Fy")["path"], json(r#""/x/y""#));
        assert_eq!(parsed("http://h/a%41")["raw_path"], json(r#""/a%41""#));
        assert_eq!(parsed("http://h/%C3%A9")["raw_path"], json(r#""/é""#));
        // Each byte that does not decode as UTF-8 is one U+FFFD.
        assert_eq!(parsed("http://h/%e2%82x")["path"], json("\"/\u{fffd}\u{fffd}x\""));
    }

    #[test]
    fn the_port_rule_depends_on_the_scheme() {
        assert!(error("http://a:1:2/").ends_with(r#"parse "http://a:1:2/": invalid port ":1:2" after host"#));
        assert_eq!(parsed("foo://a:1:2/")["hostname"], json(r#""a:1""#));
        assert_eq!(parsed("//a:1:2")["port"], json(r#""2""#));
        assert!(error("foo://a:x/").ends_with(r#"invalid port ":x" after host"#));
    }

    #[test]
    fn brackets_hold_only_ipv6_addresses() {
        assert_eq!(parsed("http://[::1%25eth0]:80/x")["hostname"], json(r#""::1%eth0""#));
        assert!(error("http://[1.2.3.4]/").ends_with("invalid IP-literal"));
        assert!(error("http://a[::1]/").ends_with("invalid IP-literal"));
        assert!(error("http://[abc]/").ends_with(r#"invalid host: ParseAddr("abc"): unable to parse IP"#));
        assert!(error("http://[::1%25]/").ends_with(r#"ParseAddr("::1%"): zone must be a non-empty string"#));
        assert!(error("http://[1::2::3]/").ends_with(r#"multiple :: in address (at ":3")"#));
        assert!(error("http://[12345::]/").ends_with(r#"each group must have 4 or less digits (at "12345::")"#));
        assert!(error("http://[::1%25%2Fx]/").ends_with(r#"invalid URL escape "%2F""#));
    }

    #[test]
    fn errors_quote_the_url_as_go_does() {
        let error = |url: &str| super::go_parse(url).unwrap_err();
        assert_eq!(
            error("http://ab/\u{1}#x"),
            r#"parse "http://ab/\x01": net/url: invalid control character in URL"#
        );
        assert_eq!(
            error("x\u{a0}:y"),
            r#"parse "x\u00a0:y": first path segment in URL cannot contain colon"#
        );
        assert_eq!(
            error("http://a%aé/"),
            r#"parse "http://a%aé/": invalid URL escape "%a\xc3""#
        );
        assert_eq!(
            error("http://h#%yy"),
            r#"parse "http://h#%yy": invalid URL escape "%yy""#
        );
    }

    #[test]
    fn validity_is_a_successful_parse_of_a_non_empty_string() {
        assert_eq!(
            eval(
                r##"[uri.is_valid("x"), uri.is_valid("#"), uri.is_valid(""), uri.is_valid("::bad"), uri.is_valid(1)]"##
            )
            .unwrap(),
            json("[true, true, false, false, false]")
        );
    }
}

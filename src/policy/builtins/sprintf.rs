//! `sprintf` as OPA computes it: Go's `fmt` over the arguments converted as
//! OPA converts them. A number is an `int64` when it is an integer that
//! fits, a big integer when it is an integer that does not, a `float64`
//! otherwise; a string is a string; anything else is its Rego text
//! (`{"a": [1, 2]}`, `{1, 2, 3}`, `true`, `null`) as a string. A verb that
//! does not fit its argument prints Go's `%!d(string=str)`, a missing
//! argument `%!s(MISSING)`, extra ones `%!(EXTRA string=two)`.

use regorus::Value;

use super::{Builtin, go_quote, operand, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("sprintf", 2, sprintf),
    ("internal.template_string", 1, template_string),
];

/// Widest field or precision a format may ask for (Go's own limit is 1e6).
const MAX_WIDTH: usize = 10_000;

/// An argument as Go's `fmt` sees it.
enum Arg {
    Int(i64),
    /// Decimal digits of an integer beyond 64 bits, with its sign.
    Big(String),
    Float(f64),
    Str(String),
}

impl Arg {
    fn of(v: &Value) -> anyhow::Result<Arg> {
        Ok(match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Arg::Int(i)
                } else if let Some(big) = n.as_big() {
                    // Held as an integer: written with digits, not `1e21`.
                    Arg::Big(big.to_string())
                } else {
                    Arg::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Arg::Str(s.to_string()),
            other => Arg::Str(rego_text(other)),
        })
    }

    /// `%!v(type=value)`'s parenthesised part.
    fn describe(&self) -> String {
        match self {
            Arg::Int(i) => format!("int64={i}"),
            Arg::Big(b) => format!("*big.Int={b}"),
            Arg::Float(f) => format!("float64={}", go_float(*f, 'g', None)),
            Arg::Str(s) => format!("string={s}"),
        }
    }
}

/// A value's Rego text: JSON with `", "` and `": "` between members, and
/// sets as `{…}` (`set()` when empty).
fn rego_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => v.to_json_str().unwrap_or_default(),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!("[{}]", a.iter().map(rego_text).collect::<Vec<_>>().join(", ")),
        Value::Set(s) if s.is_empty() => "set()".into(),
        Value::Set(s) => format!("{{{}}}", s.iter().map(rego_text).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", rego_text(k), rego_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Undefined => String::new(),
    }
}

/// Go's `strconv.FormatFloat` for `e`, `f` and `g` (`%v` is `%g`).
pub(crate) fn go_float(f: f64, verb: char, precision: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    match verb {
        'f' => format!("{:.*}", precision.unwrap_or(6), f),
        'e' => go_exponent(&format!("{:.*e}", precision.unwrap_or(6), f)),
        _ => {
            // Shortest digits that read back as the same double.
            let sci = match precision {
                Some(p) => format!("{:.*e}", p.max(1) - 1, f),
                None => format!("{f:e}"),
            };
            let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let digits = mantissa.trim_start_matches('-').replace('.', "").len() as i32;
            // Go: the shortest form switches to an exponent from 1e6
            // (and under 1e-4), a given precision from that many digits.
            let limit = match precision {
                Some(p) => p.max(1) as i32,
                None => 6,
            };
            if exp < -4 || exp >= limit {
                let m = if precision.is_some() {
                    trim_fraction(mantissa)
                } else {
                    mantissa.to_string()
                };
                go_exponent(&format!("{m}e{exp}"))
            } else {
                let decimals = (digits - 1 - exp).max(0) as usize;
                let fixed = format!("{:.*}", decimals, f);
                if precision.is_some() {
                    trim_fraction(&fixed)
                } else {
                    fixed
                }
            }
        }
    }
}

fn trim_fraction(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Rust's `1.5e3` as Go's `1.5e+03`.
fn go_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s.to_string(),
    }
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return s };
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let fill = width - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, rest) = match s.strip_prefix(['-', '+']) {
            Some(rest) => (&s[..1], rest),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn signed(s: String, spec: &Spec) -> String {
    if s.starts_with('-') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

/// One verb applied to one argument, or `None` when they do not fit.
fn apply(verb: char, arg: &Arg, spec: &Spec) -> Option<String> {
    let radix = |digits: &str, prefix: &str| {
        let (neg, d) = match digits.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, digits),
        };
        let p = if spec.sharp { prefix } else { "" };
        format!("{}{p}{d}", if neg { "-" } else { "" })
    };
    let out = match (verb, arg) {
        ('v' | 's', Arg::Str(s)) => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('q', Arg::Str(s)) => go_quote(s),
        ('x', Arg::Str(s)) => hex::encode(s.as_bytes()),
        ('X', Arg::Str(s)) => hex::encode_upper(s.as_bytes()),
        ('d' | 'v', Arg::Int(i)) => signed(i.to_string(), spec),
        ('d' | 'v', Arg::Big(b)) => signed(b.clone(), spec),
        ('x', Arg::Int(i)) => radix(&format_radix(*i, 16), "0x"),
        ('X', Arg::Int(i)) => radix(&format_radix(*i, 16).to_uppercase(), "0X"),
        ('o', Arg::Int(i)) => radix(&format_radix(*i, 8), "0"),
        ('b', Arg::Int(i)) => radix(&format_radix(*i, 2), "0b"),
        ('c', Arg::Int(i)) => char::from_u32(u32::try_from(*i).ok()?)
            .unwrap_or('\u{fffd}')
            .to_string(),
        ('U', Arg::Int(i)) => format!("U+{:04X}", i),
        ('q', Arg::Int(i)) => format!("'{}'", char::from_u32(u32::try_from(*i).ok()?).unwrap_or('\u{fffd}')),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'v', Arg::Float(f)) => {
            let lower = verb.to_ascii_lowercase();
            let s = signed(
                go_float(*f, if lower == 'v' { 'v' } else { lower }, spec.precision),
                spec,
            );
            if verb.is_ascii_uppercase() { s.to_uppercase() } else { s }
        }
        _ => return None,
    };
    let numeric = !matches!(arg, Arg::Str(_));
    Some(pad(out, spec, numeric))
}

fn format_radix(i: i64, radix: u32) -> String {
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(std::char::from_digit((n % u64::from(radix)) as u32, radix).unwrap_or('0'));
        n /= u64::from(radix);
    }
    digits.reverse();
    let s: String = digits.into_iter().collect();
    if neg { format!("-{s}") } else { s }
}

fn sprintf(args: &[Value]) -> anyhow::Result<Value> {
    let format = string("sprintf", args, 1)?;
    let values = match &args[1] {
        Value::Array(a) => a,
        other => return Err(operand("sprintf", 2, "array", other)),
    };
    let values: Vec<Arg> = values.iter().map(Arg::of).collect::<anyhow::Result<_>>()?;
    let mut out = String::with_capacity(format.len() + 16);
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| -> anyhow::Result<Option<usize>> {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                let v = n.unwrap_or(0) * 10 + d as usize;
                if v > MAX_WIDTH {
                    anyhow::bail!("sprintf: width or precision over {MAX_WIDTH}");
                }
                n = Some(v);
                chars.next();
            }
            Ok(n)
        };
        spec.width = number(&mut chars)?;
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars)?.unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match values.get(next) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(arg) => {
                match apply(verb, arg, &spec) {
                    Some(s) => out.push_str(&s),
                    None => out.push_str(&format!("%!{verb}({})", arg.describe())),
                }
                next += 1;
            }
        }
    }
    if next < values.len() {
        let extra: Vec<String> = values[next..].iter().map(Arg::describe).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(Value::from(out))
}

/// A value as `%v` prints it: a string as itself, a number as Go prints
/// the `int64`, big integer or `float64` OPA makes of it, anything else
/// in its Rego text.
fn v_text(v: &Value) -> anyhow::Result<String> {
    // `%v` takes every argument.
    Ok(apply('v', &Arg::of(v)?, &Spec::default()).unwrap_or_default())
}

/// `internal.template_string`, what OPA's compiler makes of a template
/// string (`$"…{x}…"`, see `policy::template_strings`): its parts joined,
/// a string as itself, a set (an expression's values) as its one member's
/// `%v` text or `<undefined>` when empty, a number, boolean or null in its
/// text. An array or object part is an error, as in OPA.
fn template_string(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "internal.template_string";
    let parts = match &args[0] {
        Value::Array(a) => a,
        other => return Err(operand(NAME, 1, "array", other)),
    };
    let mut out = String::new();
    for part in parts.iter() {
        match part {
            Value::Set(values) => match values.len() {
                0 => out.push_str("<undefined>"),
                1 => out.push_str(&v_text(values.iter().next().unwrap_or(&Value::Null))?),
                _ => anyhow::bail!("template-strings must not produce multiple outputs"),
            },
            Value::Array(_) | Value::Object(_) => {
                anyhow::bail!("illegal argument type: {}", super::type_name(part))
            }
            other => out.push_str(&v_text(other)?),
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    fn s(expr: &str) -> String {
        match eval(expr).unwrap() {
            regorus::Value::String(s) => s.to_string(),
            other => panic!("{expr}: {other}"),
        }
    }

    #[test]
    fn verbs_print_as_go_prints_them() {
        assert_eq!(s(r#"sprintf("%d items", [3])"#), "3 items");
        assert_eq!(
            s(r#"sprintf("%f|%.2f|%e|%g", [3.14159, 3.14159, 1234.5678, 0.000001234])"#),
            "3.141590|3.14|1.234568e+03|1.234e-06"
        );
        assert_eq!(
            s(r#"sprintf("%x|%X|%o|%b|%c|%U", [255, 255, 8, 5, 65, 65])"#),
            "ff|FF|10|101|A|U+0041"
        );
        assert_eq!(s(r#"sprintf("%x|%q", ["hi", "quo\"te"])"#), "6869|\"quo\\\"te\"");
        assert_eq!(s(r#"sprintf("[%5d|%-5s|%05d]", [42, "ab", 7])"#), "[   42|ab   |00007]");
        assert_eq!(
            s(r#"sprintf("%v|%v|%v|%v", [{"a": [1, 2]}, {3, 1, 2}, null, 0.1])"#),
            r#"{"a": [1, 2]}|{1, 2, 3}|null|0.1"#
        );
        assert_eq!(
            s(r#"sprintf("%d", [123456789012345678901234567890])"#),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn misfits_print_go_s_markers() {
        assert_eq!(s(r#"sprintf("%s", [12])"#), "%!s(int64=12)");
        assert_eq!(s(r#"sprintf("%d", [3.5])"#), "%!d(float64=3.5)");
        assert_eq!(s(r#"sprintf("%t", [true])"#), "%!t(string=true)");
        assert_eq!(s(r#"sprintf("%s %s", ["one"])"#), "one %!s(MISSING)");
        assert_eq!(s(r#"sprintf("%s", ["one", "two"])"#), "one%!(EXTRA string=two)");
        assert_eq!(s(r#"sprintf("100%%", [])"#), "100%");
        assert_eq!(
            eval(r#"sprintf("%v|%v", [0.000012, 1234567.5])"#).unwrap(),
            json(r#""1.2e-05|1.2345675e+06""#)
        );
    }
}

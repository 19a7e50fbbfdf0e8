//! Time, as Go's `time` package computes it.

use chrono::{DateTime, Datelike, Duration, FixedOffset, Local, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::OffsetName;
use regorus::Value;

use super::{Builtin, golayout, operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("time.add_date", 4, add_date),
    ("time.parse_duration_ns", 1, parse_duration_ns),
    ("time.format", 1, format),
    ("time.parse_ns", 2, parse_ns),
];

/// A layout argument: one of OPA's names for Go's layouts, or a layout.
fn layout<'a>(name: &str, text: &'a str) -> anyhow::Result<&'a str> {
    if text.len() > golayout::MAX_LAYOUT {
        anyhow::bail!("{name}: layout longer than {} bytes", golayout::MAX_LAYOUT);
    }
    Ok(golayout::named(text))
}

/// `time.format(ns)`, `time.format([ns, tz])`, `time.format([ns, tz,
/// layout])`: RFC 3339 with nanoseconds unless a layout is given; the zone
/// is UTC, `Local` or an IANA name, and `MST` in a layout writes the
/// zone's abbreviation.
fn format(args: &[Value]) -> anyhow::Result<Value> {
    let name = "time.format";
    let ns_of = |v: &Value| match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{name}: timestamp out of range")),
        other => Err(operand(name, 1, "number", other)),
    };
    let (ns, zone, text) = match &args[0] {
        Value::Number(_) => (ns_of(&args[0])?, "UTC", "RFC3339Nano"),
        Value::Array(a) => {
            let items: Vec<&Value> = a.iter().collect();
            let s = |i: usize| match items.get(i) {
                Some(Value::String(s)) => Ok(Some(s.as_ref())),
                Some(other) => Err(anyhow::anyhow!(
                    "{name}: element {} of the array must be a string but got {}",
                    i + 1,
                    super::type_name(other)
                )),
                None => Ok(None),
            };
            if items.is_empty() || items.len() > 3 {
                anyhow::bail!("{name}: the array must be [ns], [ns, tz] or [ns, tz, layout]");
            }
            (ns_of(items[0])?, s(1)?.unwrap_or("UTC"), s(2)?.unwrap_or("RFC3339Nano"))
        }
        other => return Err(operand(name, 1, "one of {number, array}", other)),
    };
    let layout = layout(name, text)?;
    let utc = Utc.timestamp_nanos(ns);
    let (t, abbreviation): (DateTime<FixedOffset>, Option<String>) = match zone {
        "UTC" | "" => (utc.fixed_offset(), Some("UTC".to_string())),
        "Local" => {
            let t = utc.with_timezone(&Local).fixed_offset();
            let utc_name = (t.offset().fix().local_minus_utc() == 0).then(|| "UTC".to_string());
            (t, utc_name)
        }
        iana => {
            let tz: chrono_tz::Tz = iana
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: unknown time zone {iana:?}"))?;
            let t = utc.with_timezone(&tz);
            let abbreviation = t.offset().abbreviation().map(str::to_string);
            (t.fixed_offset(), abbreviation)
        }
    };
    Ok(Value::from(golayout::format(&t, abbreviation.as_deref(), layout)))
}

/// `time.parse_ns(layout, value)`, as Go's `time.Parse`.
fn parse_ns(args: &[Value]) -> anyhow::Result<Value> {
    let name = "time.parse_ns";
    let layout = layout(name, super::string(name, args, 1)?)?;
    let value = super::string(name, args, 2)?;
    golayout::parse(layout, value)
        .map(Value::from)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

fn integer(name: &str, args: &[Value], position: usize) -> anyhow::Result<i64> {
    match &args[position - 1] {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{name}: operand {position} must be an integer")),
        other => Err(operand(name, position, "number", other)),
    }
}

/// Go's `AddDate`: years and months are added to the calendar fields and
/// the date is then normalized, so January 31 plus one month is March 2
/// (March 1 in a leap year), not the end of February.
fn add_date(args: &[Value]) -> anyhow::Result<Value> {
    let name = "time.add_date";
    let ns = integer(name, args, 1)?;
    let (years, months, days) = (
        integer(name, args, 2)?,
        integer(name, args, 3)?,
        integer(name, args, 4)?,
    );
    let out_of_range = || anyhow::anyhow!("{name}: time outside of valid range");
    let t = Utc.timestamp_nanos(ns);
    let month_index = i64::from(t.year())
        .checked_mul(12)
        .and_then(|m| m.checked_add(i64::from(t.month0())))
        .and_then(|m| m.checked_add(years.checked_mul(12)?))
        .and_then(|m| m.checked_add(months))
        .ok_or_else(out_of_range)?;
    let year = i32::try_from(month_index.div_euclid(12)).map_err(|_| out_of_range())?;
    let month = month_index.rem_euclid(12) as u32 + 1;
    let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(out_of_range)?;
    let offset = i64::from(t.day() - 1).checked_add(days).ok_or_else(out_of_range)?;
    let date = first
        .checked_add_signed(Duration::try_days(offset).ok_or_else(out_of_range)?)
        .ok_or_else(out_of_range)?;
    let result = date.and_time(t.time()).and_utc();
    let ns = result.timestamp_nanos_opt().ok_or_else(out_of_range)?;
    Ok(Value::from(ns))
}

/// Nanoseconds in one unit of a duration: Go's units, and the days, weeks
/// and 365-day years OPA adds to them.
fn unit_ns(unit: &str) -> Option<u64> {
    const SECOND: u64 = 1_000_000_000;
    const DAY: u64 = 24 * 3600 * SECOND;
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => SECOND,
        "m" => 60 * SECOND,
        "h" => 3600 * SECOND,
        "d" => DAY,
        "w" => 7 * DAY,
        "y" => 365 * DAY,
        _ => return None,
    })
}

/// `time.parse_duration_ns`, Go's `time.ParseDuration` with OPA's `d`, `w`
/// and `y`: a signed sequence of decimal amounts, each with a unit
/// (`1h30m`, `-1.5d`); a bare `0` is zero; anything past ±2^63 ns fails.
fn parse_duration_ns(args: &[Value]) -> anyhow::Result<Value> {
    let name = "time.parse_duration_ns";
    let orig = super::string(name, args, 1)?;
    let invalid = || anyhow::anyhow!("{name}: time: invalid duration {orig:?}");
    const LIMIT: u64 = 1 << 63;
    let mut s = orig;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Value::from(0u64));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &b[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(c - b'0')))
                .filter(|w| *w <= LIMIT)
                .ok_or_else(invalid)?;
        }
        let mut rest = &s[int_len..];
        // The fraction, as many digits as fit.
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if let Some(after) = rest.strip_prefix('.') {
            frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in after[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match frac.checked_mul(10).map(|f| f + u64::from(c - b'0')) {
                    Some(f) if f <= LIMIT && frac <= (LIMIT - 1) / 10 => {
                        frac = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &after[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            anyhow::bail!("{name}: time: missing unit in duration {orig:?}");
        }
        let unit = &rest[..unit_len];
        let per =
            unit_ns(unit).ok_or_else(|| anyhow::anyhow!("{name}: time: unknown unit {unit:?} in duration {orig:?}"))?;
        if whole > LIMIT / per {
            return Err(invalid());
        }
        let mut v = whole * per;
        if frac > 0 {
            v += (frac as f64 * (per as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).filter(|t| *t <= LIMIT).ok_or_else(invalid)?;
        s = &rest[unit_len..];
    }
    if negative {
        return Ok(Value::from(-(total as i128)));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(Value::from(total))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn month_ends_overflow_as_in_go() {
        // 2024-01-31 + 1 month = 2024-03-02 (2024 is a leap year: Feb 29 + 2).
        assert_eq!(
            eval(r#"time.date(time.add_date(time.parse_rfc3339_ns("2024-01-31T00:00:00Z"), 0, 1, 0))"#).unwrap(),
            json("[2024, 3, 2]")
        );
        assert_eq!(
            eval(r#"time.date(time.add_date(time.parse_rfc3339_ns("2024-02-29T10:00:00Z"), 1, 0, 0))"#).unwrap(),
            json("[2025, 3, 1]")
        );
        assert_eq!(eval("time.add_date(0, 0, 0, 1)").unwrap(), json("86400000000000"));
    }

    #[test]
    fn durations_parse_as_opa_reads_them() {
        for (text, want) in [
            ("1h30m", "5400000000000"),
            ("1.5d", "129600000000000"),
            ("1w", "604800000000000"),
            ("1y", "31536000000000000"),
            ("1h1d", "90000000000000"),
            ("-1d", "-86400000000000"),
            (".5h", "1800000000000"),
            ("1.h", "3600000000000"),
            ("2\u{b5}s", "2000"),
            ("0.1ns", "0"),
            ("+0", "0"),
            ("9223372036854775807ns", "9223372036854775807"),
        ] {
            assert_eq!(
                eval(&format!(r#"time.parse_duration_ns("{text}")"#)).unwrap(),
                json(want),
                "{text}"
            );
        }
        for (text, message) in [
            ("1D", "unknown unit"),
            ("1mo", "unknown unit"),
            ("1", "missing unit"),
            ("", "invalid duration"),
            ("300y", "invalid duration"),
            ("9223372036854775808ns", "invalid duration"),
            ("5 minutes", "duration"),
        ] {
            let e = eval(&format!(r#"time.parse_duration_ns("{text}")"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn format_and_parse_follow_go_layouts() {
        let ts = "1709210096123456789";
        for (args, want) in [
            (ts.to_string(), "2024-02-29T12:34:56.123456789Z"),
            (
                format!(r#"[{ts}, "Europe/London", "RFC1123"]"#),
                "Thu, 29 Feb 2024 12:34:56 GMT",
            ),
            (
                format!(r#"[{ts}, "America/Los_Angeles", "RFC850"]"#),
                "Thursday, 29-Feb-24 04:34:56 PST",
            ),
            (format!(r#"[{ts}, "UTC", "3:04PM MST"]"#), "12:34PM UTC"),
        ] {
            assert_eq!(
                eval(&format!("time.format({args})")).unwrap(),
                json(&format!("{want:?}")),
                "{args}"
            );
        }
        assert!(eval(r#"time.format([0, "Mars/Base"])"#).is_err());
        assert_eq!(
            eval(r#"time.parse_ns("RFC822", "02 Jan 06 15:04 MST")"#).unwrap(),
            json("1136214240000000000")
        );
        assert!(eval(r#"time.parse_ns("2006-01-02", "15/03/2024")"#).is_err());
    }
}

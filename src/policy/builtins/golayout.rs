//! Go's reference-time layouts (`2006-01-02 15:04:05 MST`), formatting and
//! parsing as Go's `time` package does, for `time.format` and
//! `time.parse_ns`: 12-hour clocks with `pm`, zone abbreviations (a zone
//! Go does not know parses at offset zero, as in OPA), `_2` padding, and
//! fractional seconds with `.000` or `.999`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};

/// One element of a layout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// `Z` for UTC, else a numeric offset: (colons, seconds, hours only).
    Iso(bool, bool, bool),
    /// A numeric offset: (colons, seconds, hours only).
    Num(bool, bool, bool),
    /// Fractional seconds: digits, and whether trailing zeros are trimmed.
    Frac(usize, bool),
}

/// OPA's names for Go's predefined layouts.
pub(super) fn named(layout: &str) -> &str {
    match layout {
        "ANSIC" => "Mon Jan _2 15:04:05 2006",
        "UnixDate" => "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate" => "Mon Jan 02 15:04:05 -0700 2006",
        "RFC822" => "02 Jan 06 15:04 MST",
        "RFC822Z" => "02 Jan 06 15:04 -0700",
        "RFC850" => "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "RFC1123Z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        "RFC3339" => "2006-01-02T15:04:05Z07:00",
        "RFC3339Nano" => "2006-01-02T15:04:05.999999999Z07:00",
        other => other,
    }
}

fn lower_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_lowercase)
}

fn digit_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// The layout up to its next element, the element, and what follows.
fn next_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let l = layout.as_bytes();
    let has = |i: usize, s: &str| layout.get(i..i + s.len()) == Some(s);
    for i in 0..l.len() {
        let found: Option<(Std, usize)> = match l[i] {
            b'J' if has(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if has(i, "Jan") && !lower_at(l, i + 3) => Some((Std::Month, 3)),
            b'M' if has(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if has(i, "Mon") && !lower_at(l, i + 3) => Some((Std::WeekDay, 3)),
            b'M' if has(i, "MST") => Some((Std::Tz, 3)),
            b'0' if matches!(l.get(i + 1), Some(b'1'..=b'6')) => Some((
                [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(l[i + 1] - b'1')],
                2,
            )),
            b'0' if has(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if has(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if has(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if has(i, "_2006") => return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]),
            b'_' if has(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if has(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if has(i, "PM") => Some((Std::PM, 2)),
            b'p' if has(i, "pm") => Some((Std::Pm, 2)),
            b'-' | b'Z' => {
                let iso = l[i] == b'Z';
                let make = |c, s, h| if iso { Std::Iso(c, s, h) } else { Std::Num(c, s, h) };
                [
                    ("070000", make(false, true, false)),
                    ("07:00:00", make(true, true, false)),
                    ("0700", make(false, false, false)),
                    ("07:00", make(true, false, false)),
                    ("07", make(false, false, true)),
                ]
                .into_iter()
                .find(|(pat, _)| has(i + 1, pat))
                .map(|(pat, std)| (std, pat.len() + 1))
            }
            b'.' | b',' if matches!(l.get(i + 1), Some(b'0' | b'9')) => {
                let ch = l[i + 1];
                let mut j = i + 1;
                while j < l.len() && l[j] == ch {
                    j += 1;
                }
                if digit_at(l, j) {
                    None
                } else {
                    Some((Std::Frac(j - i - 1, ch == b'9'), j - i))
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Most bytes of layout `time.format` and `time.parse_ns` take.
pub(super) const MAX_LAYOUT: usize = 1024;

/// `t` written in `layout`; `zone` is the zone's abbreviation, when known.
pub(super) fn format(t: &DateTime<FixedOffset>, zone: Option<&str>, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 16);
    let mut rest = layout;
    let offset = t.offset().local_minus_utc();
    while !rest.is_empty() {
        let (prefix, std, after) = next_chunk(rest);
        out.push_str(prefix);
        rest = after;
        let Some(std) = std else { break };
        let hour = t.hour();
        match std {
            Std::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            Std::LongYear => out.push_str(&format!("{:04}", t.year())),
            Std::Month => out.push_str(&MONTHS[t.month0() as usize][..3]),
            Std::LongMonth => out.push_str(MONTHS[t.month0() as usize]),
            Std::NumMonth => out.push_str(&t.month().to_string()),
            Std::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            Std::WeekDay => out.push_str(&DAYS[t.weekday().num_days_from_sunday() as usize][..3]),
            Std::LongWeekDay => out.push_str(DAYS[t.weekday().num_days_from_sunday() as usize]),
            Std::Day => out.push_str(&t.day().to_string()),
            Std::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Std::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Std::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Std::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Std::Hour => out.push_str(&format!("{hour:02}")),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = if hour.is_multiple_of(12) { 12 } else { hour % 12 };
                out.push_str(&if std == Std::Hour12 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                });
            }
            Std::Minute => out.push_str(&t.minute().to_string()),
            Std::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Std::Second => out.push_str(&t.second().to_string()),
            Std::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Std::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Std::Iso(..) if offset == 0 => out.push('Z'),
            Std::Iso(colons, seconds, short) | Std::Num(colons, seconds, short) => {
                numeric_zone(&mut out, offset, colons, seconds, short);
            }
            Std::Tz => match zone {
                Some(name) => out.push_str(name),
                None => numeric_zone(&mut out, offset, false, false, false),
            },
            Std::Frac(digits, trim) => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut d = &nanos[..digits.min(9)];
                if trim {
                    d = d.trim_end_matches('0');
                    if d.is_empty() {
                        continue;
                    }
                }
                out.push_str(&layout_separator(layout, prefix, rest));
                out.push_str(d);
            }
        }
    }
    out
}

/// The separator (`.` or `,`) before a fractional-second element: the
/// byte just before the element in the layout.
fn layout_separator(layout: &str, prefix: &str, rest: &str) -> String {
    // The element spans from the end of `prefix` to the start of `rest`.
    let start = prefix.as_ptr() as usize + prefix.len() - layout.as_ptr() as usize;
    let end = rest.as_ptr() as usize - layout.as_ptr() as usize;
    layout
        .get(start..end)
        .and_then(|e| e.get(..1))
        .unwrap_or(".")
        .to_string()
}

fn numeric_zone(out: &mut String, offset: i32, colons: bool, seconds: bool, short: bool) {
    out.push(if offset < 0 { '-' } else { '+' });
    let abs = offset.unsigned_abs();
    out.push_str(&format!("{:02}", abs / 3600));
    if short {
        return;
    }
    if colons {
        out.push(':');
    }
    out.push_str(&format!("{:02}", abs / 60 % 60));
    if seconds {
        if colons {
            out.push(':');
        }
        out.push_str(&format!("{:02}", abs % 60));
    }
}

/// Go's `time.Parse(layout, value)` as Unix nanoseconds (wrapping past
/// the 64-bit range, as Go's `UnixNano` does).
pub(super) fn parse(layout: &str, value: &str) -> Result<i64, String> {
    let bad = |what: &str| format!("parsing time {value:?} as {layout:?}: cannot parse {what}");
    let mut rest_layout = layout;
    let mut v = value;
    let (mut year, mut month, mut day, mut yday) = (0i32, 0u32, 0u32, 0u32);
    let (mut month_set, mut day_set) = (false, false);
    let (mut hour, mut min, mut sec, mut nsec) = (0u32, 0u32, 0u32, 0u32);
    let (mut pm, mut am) = (false, false);
    let mut offset: Option<i32> = None;
    loop {
        let (prefix, std, after) = next_chunk(rest_layout);
        v = skip(v, prefix).ok_or_else(|| bad(&format!("{v:?} as {prefix:?}")))?;
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(format!("parsing time {value:?}: extra text: {v:?}"));
            }
            break;
        };
        rest_layout = after;
        let here = v;
        let fail = || bad(&format!("{here:?}"));
        let b = v.as_bytes();
        match std {
            Std::Year => {
                if b.len() < 2 || !b[..2].iter().all(u8::is_ascii_digit) {
                    return Err(fail());
                }
                let n: i32 = v[..2].parse().map_err(|_| fail())?;
                year = if n >= 69 { 1900 + n } else { 2000 + n };
                v = &v[2..];
            }
            Std::LongYear => {
                if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) {
                    return Err(fail());
                }
                year = v[..4].parse().map_err(|_| fail())?;
                v = &v[4..];
            }
            Std::Month | Std::LongMonth => {
                let (i, n) = lookup(v, &MONTHS, std == Std::Month).ok_or_else(fail)?;
                month = i as u32 + 1;
                month_set = true;
                v = &v[n..];
            }
            Std::WeekDay | Std::LongWeekDay => {
                let (_, n) = lookup(v, &DAYS, std == Std::WeekDay).ok_or_else(fail)?;
                v = &v[n..];
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (n, r) = getnum(v, std == Std::ZeroMonth).ok_or_else(fail)?;
                if !(1..=12).contains(&n) {
                    return Err(format!("parsing time {value:?}: month out of range"));
                }
                month = n;
                month_set = true;
                v = r;
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay && b.first() == Some(&b' ') {
                    v = &v[1..];
                }
                let (n, r) = getnum(v, std == Std::ZeroDay).ok_or_else(fail)?;
                day = n;
                day_set = true;
                v = r;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                let mut w = v;
                if std == Std::UnderYearDay {
                    for _ in 0..2 {
                        if let Some(r) = w.strip_prefix(' ') {
                            w = r;
                        }
                    }
                }
                let n = w.bytes().take(3).take_while(u8::is_ascii_digit).count();
                if n == 0 || (std == Std::ZeroYearDay && n < 3) {
                    return Err(fail());
                }
                yday = w[..n].parse().map_err(|_| fail())?;
                v = &w[n..];
            }
            Std::Hour => {
                let (n, r) = getnum(v, false).ok_or_else(fail)?;
                if n >= 24 {
                    return Err(format!("parsing time {value:?}: hour out of range"));
                }
                hour = n;
                v = r;
            }
            Std::Hour12 | Std::ZeroHour12 => {
                let (n, r) = getnum(v, std == Std::ZeroHour12).ok_or_else(fail)?;
                if n > 12 {
                    return Err(format!("parsing time {value:?}: hour out of range"));
                }
                hour = n;
                v = r;
            }
            Std::Minute | Std::ZeroMinute => {
                let (n, r) = getnum(v, std == Std::ZeroMinute).ok_or_else(fail)?;
                if n >= 60 {
                    return Err(format!("parsing time {value:?}: minute out of range"));
                }
                min = n;
                v = r;
            }
            Std::Second | Std::ZeroSecond => {
                let (n, r) = getnum(v, std == Std::ZeroSecond).ok_or_else(fail)?;
                if n >= 60 {
                    return Err(format!("parsing time {value:?}: second out of range"));
                }
                sec = n;
                v = r;
                // A fraction the layout does not name is read anyway.
                let rb = v.as_bytes();
                if rb.len() >= 2 && matches!(rb[0], b'.' | b',') && rb[1].is_ascii_digit() {
                    let (_, next, _) = next_chunk(rest_layout);
                    if !matches!(next, Some(Std::Frac(..))) {
                        let n = 1 + rb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        nsec = nanos(&v[1..n]);
                        v = &v[n..];
                    }
                }
            }
            Std::PM | Std::Pm => {
                let (p, a) = if std == Std::PM { ("PM", "AM") } else { ("pm", "am") };
                match v.get(..2) {
                    Some(s) if s == p => pm = true,
                    Some(s) if s == a => am = true,
                    _ => return Err(fail()),
                }
                v = &v[2..];
            }
            Std::Iso(..) if b.first() == Some(&b'Z') => {
                offset = Some(0);
                v = &v[1..];
            }
            Std::Iso(colons, seconds, short) | Std::Num(colons, seconds, short) => {
                let (o, r) = parse_offset(v, colons, seconds, short).ok_or_else(fail)?;
                offset = Some(o);
                v = r;
            }
            Std::Tz => {
                if v.starts_with("UTC") {
                    offset = Some(0);
                    v = &v[3..];
                } else {
                    let n = zone_length(v).ok_or_else(fail)?;
                    let name = &v[..n];
                    // Go knows no zone by name here: offset zero, but for
                    // `GMT+h`.
                    let hours = name
                        .strip_prefix("GMT")
                        .and_then(|h| h.parse::<i32>().ok())
                        .unwrap_or(0);
                    offset = Some(hours * 3600);
                    v = &v[n..];
                }
            }
            Std::Frac(digits, trim) => {
                if trim {
                    let rb = v.as_bytes();
                    if rb.len() < 2 || !matches!(rb[0], b'.' | b',') || !rb[1].is_ascii_digit() {
                        continue;
                    }
                    let n = 1 + rb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nsec = nanos(&v[1..n]);
                    v = &v[n..];
                } else {
                    let n = digits + 1;
                    let rb = v.as_bytes();
                    if rb.len() < n || !matches!(rb[0], b'.' | b',') || !rb[1..n].iter().all(u8::is_ascii_digit) {
                        return Err(fail());
                    }
                    nsec = nanos(&v[1..n]);
                    v = &v[n..];
                }
            }
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday > 0 {
        let date = NaiveDate::from_yo_opt(year, yday)
            .ok_or_else(|| format!("parsing time {value:?}: day-of-year out of range"))?;
        if (month_set && date.month() != month) || (day_set && date.day() != day) {
            return Err(format!(
                "parsing time {value:?}: day-of-year does not match month or day"
            ));
        }
        month = date.month();
        day = date.day();
    }
    let month = if month == 0 { 1 } else { month };
    let day = if day_set { day } else { 1 };
    let date =
        NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| format!("parsing time {value:?}: day out of range"))?;
    let secs = date
        .and_hms_opt(hour, min, sec)
        .ok_or_else(|| format!("parsing time {value:?}: out of range"))?;
    let unix = secs.and_utc().timestamp() - i64::from(offset.unwrap_or(0));
    Ok(unix.wrapping_mul(1_000_000_000).wrapping_add(i64::from(nsec)))
}

/// Go's `skip`: the layout's literal text must be there; a space in the
/// layout takes any run of spaces.
fn skip<'a>(mut v: &'a str, mut prefix: &str) -> Option<&'a str> {
    while let Some(c) = prefix.chars().next() {
        if c == ' ' {
            if !v.is_empty() && !v.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            v = v.trim_start_matches(' ');
            continue;
        }
        v = v.strip_prefix(c)?;
        prefix = &prefix[c.len_utf8()..];
    }
    Some(v)
}

/// Go's `getnum`: one or two digits, exactly two when `fixed`.
fn getnum(v: &str, fixed: bool) -> Option<(u32, &str)> {
    let b = v.as_bytes();
    if !digit_at(b, 0) {
        return None;
    }
    if !digit_at(b, 1) {
        if fixed {
            return None;
        }
        return Some((u32::from(b[0] - b'0'), &v[1..]));
    }
    Some((u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'), &v[2..]))
}

/// A name from `names` at the start of `v`, case-insensitively: the first
/// three letters when `short`.
fn lookup(v: &str, names: &[&str], short: bool) -> Option<(usize, usize)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let name = if short { &name[..3] } else { name };
        v.get(..name.len())
            .filter(|s| s.eq_ignore_ascii_case(name))
            .map(|_| (i, name.len()))
    })
}

/// Up to nine digits of a fraction as nanoseconds.
fn nanos(digits: &str) -> u32 {
    let d: String = digits.chars().take(9).collect();
    let n: u32 = d.parse().unwrap_or(0);
    n * 10u32.pow(9 - d.len() as u32)
}

/// A numeric zone offset in seconds east of UTC.
fn parse_offset(v: &str, colons: bool, seconds: bool, short: bool) -> Option<(i32, &str)> {
    let b = v.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |i: usize| -> Option<i32> {
        (digit_at(b, i) && digit_at(b, i + 1)).then(|| i32::from(b[i] - b'0') * 10 + i32::from(b[i + 1] - b'0'))
    };
    let hh = two(1)?;
    if short {
        return Some((sign * hh * 3600, &v[3..]));
    }
    let mut i = 3;
    if colons {
        (b.get(i) == Some(&b':')).then_some(())?;
        i += 1;
    }
    let mm = two(i)?;
    i += 2;
    let mut ss = 0;
    if seconds {
        if colons {
            (b.get(i) == Some(&b':')).then_some(())?;
            i += 1;
        }
        ss = two(i)?;
        i += 2;
    }
    Some((sign * (hh * 3600 + mm * 60 + ss), &v[i..]))
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start
/// of `v` (`MST`, `CEST`, `ChST`, `GMT+3`, `+03`).
fn zone_length(v: &str) -> Option<usize> {
    let b = v.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if v.starts_with("ChST") || v.starts_with("MeST") {
        return Some(4);
    }
    if v.starts_with("GMT") {
        let rest = &b[3..];
        if let Some(&s) = rest.first()
            && (s == b'+' || s == b'-')
        {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if (1..=2).contains(&n) {
                return Some(4 + n);
            }
        }
        return Some(3);
    }
    if b[0] == b'+' || b[0] == b'-' {
        let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        return matches!(n, 2 | 4).then_some(1 + n);
    }
    let upper = b.iter().take(6).take_while(|c| c.is_ascii_uppercase()).count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || v.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, TimeZone};

    use super::{format, parse};

    #[test]
    fn layouts_format_as_go_writes_them() {
        let t = FixedOffset::west_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2024, 2, 29, 4, 34, 56)
            .unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(
            format(&t, Some("PST"), "Mon, 02 Jan 2006 15:04:05 MST"),
            "Thu, 29 Feb 2024 04:34:56 PST"
        );
        assert_eq!(
            format(&t, None, "2006-01-02T15:04:05.999999999Z07:00"),
            "2024-02-29T04:34:56.123456789-08:00"
        );
        assert_eq!(
            format(&t, None, "Jan _2 3:04pm .000 -0700 __2"),
            "Feb 29 4:34am .123 -0800  60"
        );
        assert_eq!(
            format(&t, None, "Monday January 2 06 15h"),
            "Thursday February 29 24 04h"
        );
    }

    #[test]
    fn layouts_parse_as_go_reads_them() {
        assert_eq!(parse("2006-01-02", "2024-03-15").unwrap(), 1_710_460_800_000_000_000);
        // An abbreviation Go does not know is offset zero.
        assert_eq!(
            parse("02 Jan 06 15:04 MST", "02 Jan 06 15:04 MST").unwrap(),
            1_136_214_240_000_000_000
        );
        assert_eq!(
            parse("Jan 2, 2006 at 3:04pm (MST)", "Feb 3, 2013 at 7:54pm (PST)").unwrap(),
            1_359_921_240_000_000_000
        );
        assert_eq!(
            parse("2006-01-02T15:04:05Z07:00", "2024-01-01T01:00:00.5+01:00").unwrap(),
            1_704_067_200_500_000_000
        );
        assert!(parse("2006-01-02", "15/03/2024").is_err());
        assert!(parse("2006-01-02", "2024-02-30").is_err());
        assert!(parse("2006-01-02", "2024-01-01 extra").is_err());
    }
}

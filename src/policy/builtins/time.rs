//! Time, as Go's `time` package computes it.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use regorus::Value;

use super::{Builtin, operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("time.add_date", 4, add_date)];

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
}

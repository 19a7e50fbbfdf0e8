//! Decimal arithmetic for numbers that are not integers. OPA computes with
//! exact decimals, so `0.1 + 0.2 == 0.3` and `sum([0.1, 0.2, 0.3])` is
//! `0.6`; regorus's binary floats answered `0.30000000000000004`. Each
//! float operand is read as the shortest decimal that round-trips it (the
//! literal `0.1` is `1e-1`), the operation is exact on those decimals, and
//! the result is the float nearest to it, or an integer when it is one.
//!
//! What stays binary: a quotient that has no finite decimal (`1 / 3`), and
//! results past 38 significant digits or a 10^±300 scale, which fall back
//! to the float operation. Literals with more than 17 significant digits
//! were already rounded by the parser.

use regorus::Value;

/// A finite decimal: `mantissa × 10^exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decimal {
    mantissa: i128,
    exp: i32,
}

/// Largest power of ten an exact operation may scale by.
const MAX_SCALE: u32 = 36;

impl Decimal {
    /// The shortest decimal that reads back as this number.
    pub(super) fn of(v: &Value) -> Option<Decimal> {
        let Value::Number(n) = v else { return None };
        if let Some(i) = n.as_i64().filter(|_| n.is_integer()) {
            return Some(Decimal {
                mantissa: i128::from(i),
                exp: 0,
            });
        }
        let f = n.as_f64()?;
        if !f.is_finite() {
            return None;
        }
        // `{:e}` writes the shortest round-trip digits: `1.2345e-7`.
        let text = format!("{f:e}");
        let (digits, exp) = text.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            mantissa,
            exp: exp - i32::try_from(frac.len()).ok()?,
        })
    }

    fn scaled(self, exp: i32) -> Option<i128> {
        // `self` written with exponent `exp` (<= self.exp).
        let shift = u32::try_from(self.exp - exp).ok().filter(|s| *s <= MAX_SCALE)?;
        self.mantissa.checked_mul(10i128.checked_pow(shift)?)
    }

    pub(super) fn add(self, other: Decimal) -> Option<Decimal> {
        let exp = self.exp.min(other.exp);
        Some(Decimal {
            mantissa: self.scaled(exp)?.checked_add(other.scaled(exp)?)?,
            exp,
        })
    }

    pub(super) fn sub(self, other: Decimal) -> Option<Decimal> {
        self.add(Decimal {
            mantissa: other.mantissa.checked_neg()?,
            exp: other.exp,
        })
    }

    pub(super) fn mul(self, other: Decimal) -> Option<Decimal> {
        Some(Decimal {
            mantissa: self.mantissa.checked_mul(other.mantissa)?,
            exp: self.exp.checked_add(other.exp)?,
        })
    }

    /// The exact quotient when it has a finite decimal within reach.
    pub(super) fn div(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        for extra in 0..=MAX_SCALE {
            let Some(num) = self.mantissa.checked_mul(10i128.checked_pow(extra)?) else {
                break;
            };
            if num % other.mantissa == 0 {
                return Some(Decimal {
                    mantissa: num / other.mantissa,
                    exp: self
                        .exp
                        .checked_sub(other.exp)?
                        .checked_sub(i32::try_from(extra).ok()?)?,
                });
            }
        }
        None
    }

    /// The value: an integer when the decimal is whole and fits 64 bits,
    /// else the nearest float.
    pub(super) fn value(self) -> Option<Value> {
        if self.exp.abs() > 330 {
            return None;
        }
        let (mut m, mut e) = (self.mantissa, self.exp);
        while m != 0 && m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        if m == 0 {
            return Some(Value::from(0u64));
        }
        if (0..=18).contains(&e)
            && let Some(whole) = m.checked_mul(10i128.pow(e as u32))
            && let Ok(i) = i64::try_from(whole)
        {
            return Some(Value::from(i));
        }
        let f: f64 = format!("{m}e{e}").parse().ok()?;
        f.is_finite().then(|| Value::from(f))
    }
}

/// `a op b` on decimals when either is not an integer; `None` to leave it
/// to the binary operation (integers, which regorus computes exactly at
/// any size, and the cases the module comment lists).
pub(super) fn arith(op: &str, a: &Value, b: &Value) -> Option<Value> {
    let (Value::Number(na), Value::Number(nb)) = (a, b) else {
        return None;
    };
    if na.is_integer() && nb.is_integer() {
        return None;
    }
    let (x, y) = (Decimal::of(a)?, Decimal::of(b)?);
    let r = match op {
        "plus" => x.add(y),
        "minus" => x.sub(y),
        "mul" => x.mul(y),
        "div" => x.div(y),
        _ => None,
    }?;
    r.value()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn decimals_add_up_as_opa_adds_them() {
        for (expr, want) in [
            ("0.1 + 0.2", "0.3"),
            ("0.1 + 0.2 == 0.3", "true"),
            ("0.1 + 0.2 + 0.3 + 0.4", "1"),
            ("0.3 - 0.1", "0.2"),
            ("0.1 * 3", "0.3"),
            ("2.5 * 2", "5"),
            ("0.3 / 0.1", "3"),
            ("1.1 * 1.1", "1.21"),
            ("sum([0.1, 0.2, 0.3])", "0.6"),
            ("product([0.1, 0.1])", "0.01"),
            ("sprintf(\"%v\", [0.1 + 0.2])", "\"0.3\""),
            // Integers stay exact at any size; a third stays a float.
            ("18446744073709551615 + 1 == 18446744073709551616", "true"),
            ("1 / 4", "0.25"),
            ("1 / 3", "0.3333333333333333"),
        ] {
            assert_eq!(eval(expr).unwrap(), json(want), "{expr}");
        }
    }
}

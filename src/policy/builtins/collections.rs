//! Arrays, sets, and the builtins OPA names its operators by.

use regorus::Value;

use super::{Builtin, operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("array.flatten", 1, array_flatten),
    ("plus", 2, plus),
    ("minus", 2, minus),
    ("mul", 2, mul),
    ("div", 2, div),
    ("rem", 2, rem),
    ("and", 2, and),
    ("or", 2, or),
    ("equal", 2, equal),
    ("neq", 2, neq),
    ("lt", 2, lt),
    ("lte", 2, lte),
    ("gt", 2, gt),
    ("gte", 2, gte),
];

/// One level: the elements of nested arrays take their place.
fn array_flatten(args: &[Value]) -> anyhow::Result<Value> {
    let Value::Array(items) = &args[0] else {
        return Err(operand("array.flatten", 1, "array", &args[0]));
    };
    let mut out = Vec::with_capacity(items.len());
    for v in items.iter() {
        match v {
            Value::Array(inner) => out.extend(inner.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    Ok(Value::from(out))
}

fn numbers<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<(&'a Value, &'a Value)> {
    for (i, v) in args.iter().enumerate() {
        if !matches!(v, Value::Number(_)) {
            return Err(operand(name, i + 1, "number", v));
        }
    }
    Ok((&args[0], &args[1]))
}

fn arith(name: &str, args: &[Value]) -> anyhow::Result<Value> {
    let (Value::Number(a), Value::Number(b)) = numbers(name, args)? else {
        unreachable!("checked by numbers()")
    };
    let r = match name {
        "plus" => a.add(b),
        "minus" => a.sub(b),
        "mul" => a.mul(b),
        "div" => {
            if b.as_f64() == Some(0.0) {
                anyhow::bail!("div: divide by zero");
            }
            a.clone().divide(b)
        }
        _ => {
            if !a.is_integer() || !b.is_integer() {
                anyhow::bail!("rem: modulo on floating-point number");
            }
            if b.as_f64() == Some(0.0) {
                anyhow::bail!("rem: modulo by zero");
            }
            a.clone().modulo(b)
        }
    };
    Ok(Value::from(r.map_err(|e| anyhow::anyhow!("{name}: {e}"))?))
}

fn plus(args: &[Value]) -> anyhow::Result<Value> {
    arith("plus", args)
}

/// Numbers subtract; sets take the difference.
fn minus(args: &[Value]) -> anyhow::Result<Value> {
    match (&args[0], &args[1]) {
        (Value::Set(a), Value::Set(b)) => Ok(a.difference(b).into_value()),
        (Value::Set(_), other) => Err(operand("minus", 2, "set", other)),
        _ => arith("minus", args),
    }
}

fn mul(args: &[Value]) -> anyhow::Result<Value> {
    arith("mul", args)
}

fn div(args: &[Value]) -> anyhow::Result<Value> {
    arith("div", args)
}

fn rem(args: &[Value]) -> anyhow::Result<Value> {
    arith("rem", args)
}

fn sets<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<(&'a regorus::value::Set, &'a regorus::value::Set)> {
    match (&args[0], &args[1]) {
        (Value::Set(a), Value::Set(b)) => Ok((a, b)),
        (Value::Set(_), other) => Err(operand(name, 2, "set", other)),
        (other, _) => Err(operand(name, 1, "set", other)),
    }
}

fn and(args: &[Value]) -> anyhow::Result<Value> {
    let (a, b) = sets("and", args)?;
    Ok(a.intersection(b).into_value())
}

fn or(args: &[Value]) -> anyhow::Result<Value> {
    let (a, b) = sets("or", args)?;
    Ok(a.union(b).into_value())
}

fn equal(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] == args[1]))
}

fn neq(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] != args[1]))
}

fn lt(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] < args[1]))
}

fn lte(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] <= args[1]))
}

fn gt(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] > args[1]))
}

fn gte(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(args[0] >= args[1]))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn operators_answer_by_their_names() {
        assert_eq!(eval("plus(1, 2)").unwrap(), json("3"));
        assert_eq!(eval("minus({1, 2}, {2})").unwrap(), eval("{1}").unwrap());
        assert_eq!(eval("and({1, 2}, {2, 3})").unwrap(), eval("{2}").unwrap());
        assert_eq!(eval("or({1}, {2})").unwrap(), eval("{1, 2}").unwrap());
        assert_eq!(eval("rem(-9, 4)").unwrap(), json("-1"));
        assert!(eval("div(1, 0)").unwrap_err().to_string().contains("divide by zero"));
        assert_eq!(eval(r#"gt("b", "a")"#).unwrap(), json("true"));
    }

    #[test]
    fn flatten_takes_one_level() {
        assert_eq!(
            eval(r#"array.flatten([1, [2, [3, [4]]], [], "x"])"#).unwrap(),
            json(r#"[1, 2, [3, [4]], "x"]"#)
        );
    }
}

//! Arrays, sets, objects, and the builtins OPA names its operators by.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

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
    ("eq", 2, equal),
    ("sort", 1, sort),
    ("object.subset", 2, object_subset),
    ("json.remove", 2, json_remove),
    ("json.patch", 2, json_patch),
    ("internal.member_2", 2, member_2),
    ("internal.member_3", 3, member_3),
    ("sum", 1, sum),
    ("product", 1, product),
];

/// The numbers of an array or set, or OPA's type error.
fn numbers_of<'a>(name: &str, v: &'a Value) -> anyhow::Result<Vec<&'a Value>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        other => return Err(operand(name, 1, "one of {array, set}", other)),
    };
    if let Some(bad) = items.iter().find(|v| !matches!(v, Value::Number(_))) {
        return Err(operand(name, 1, "collection of numbers", bad));
    }
    Ok(items)
}

/// Folds with `op`, as decimals where the operands are not integers.
fn fold(name: &str, op: &str, start: u64, args: &[Value]) -> anyhow::Result<Value> {
    let mut acc = Value::from(start);
    for v in numbers_of(name, &args[0])? {
        acc = arith(op, &[acc, v.clone()]).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    Ok(acc)
}

/// `sum`: `sum([0.1, 0.2, 0.3])` is `0.6`, as in OPA.
fn sum(args: &[Value]) -> anyhow::Result<Value> {
    fold("sum", "plus", 0, args)
}

fn product(args: &[Value]) -> anyhow::Result<Value> {
    fold("product", "mul", 1, args)
}

/// OPA's rank of a type in its total order: sets sort after objects (in
/// regorus, before).
fn rank(v: &Value) -> u8 {
    match v {
        Value::Undefined => 0,
        Value::Null => 1,
        Value::Bool(_) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
        Value::Set(_) => 7,
    }
}

/// OPA's order of values: by type, then by value; collections element by
/// element (an object key, then its value), a shorter prefix first.
pub(crate) fn opa_cmp(a: &Value, b: &Value) -> Ordering {
    fn seq<'a>(a: impl Iterator<Item = &'a Value>, b: impl Iterator<Item = &'a Value>) -> Ordering {
        let (mut a, mut b) = (a, b);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => match opa_cmp(x, y) {
                    Ordering::Equal => {}
                    other => return other,
                },
            }
        }
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => seq(x.iter(), y.iter()),
        (Value::Set(x), Value::Set(y)) => {
            let mut x: Vec<&Value> = x.iter().collect();
            let mut y: Vec<&Value> = y.iter().collect();
            x.sort_by(|p, q| opa_cmp(p, q));
            y.sort_by(|p, q| opa_cmp(p, q));
            seq(x.into_iter(), y.into_iter())
        }
        (Value::Object(x), Value::Object(y)) => {
            let (x, y) = (sorted_pairs(x), sorted_pairs(y));
            seq(
                x.iter().flat_map(|(k, v)| [*k, *v]),
                y.iter().flat_map(|(k, v)| [*k, *v]),
            )
        }
        _ if rank(a) != rank(b) => rank(a).cmp(&rank(b)),
        _ => a.cmp(b),
    }
}

fn sorted_pairs(o: &regorus::value::Object) -> Vec<(&Value, &Value)> {
    let mut pairs: Vec<(&Value, &Value)> = o.iter().collect();
    pairs.sort_by(|p, q| opa_cmp(p.0, q.0));
    pairs
}

/// `sort`: an array or a set as an array in OPA's order.
fn sort(args: &[Value]) -> anyhow::Result<Value> {
    let mut items: Vec<Value> = match &args[0] {
        Value::Array(a) => a.iter().cloned().collect(),
        Value::Set(s) => s.iter().cloned().collect(),
        other => return Err(operand("sort", 1, "one of {array, set}", other)),
    };
    items.sort_by(opa_cmp);
    Ok(Value::from(items))
}

/// `object.subset(super, sub)`: objects key by key (nested collections of
/// the same type recursively, anything else by equality), sets by
/// inclusion, arrays as a contiguous run, a set's elements all in an array.
/// Any other pair is OPA's type error.
fn object_subset(args: &[Value]) -> anyhow::Result<Value> {
    let name = "object.subset";
    let (sup, sub) = (&args[0], &args[1]);
    for (i, v) in args.iter().enumerate() {
        if !matches!(v, Value::Object(_) | Value::Set(_) | Value::Array(_)) {
            return Err(operand(name, i + 1, "one of {object, set, array}", v));
        }
    }
    let same = std::mem::discriminant(sup) == std::mem::discriminant(sub);
    if !(same || matches!((sup, sub), (Value::Array(_), Value::Set(_)))) {
        anyhow::bail!("{name}: both arguments {name} must be of the same type or array and set");
    }
    Ok(Value::from(is_subset(sup, sub)))
}

fn is_subset(sup: &Value, sub: &Value) -> bool {
    match (sup, sub) {
        (Value::Object(a), Value::Object(b)) => b.iter().all(|(k, bv)| match a.get(k) {
            None => false,
            Some(av) if std::mem::discriminant(av) == std::mem::discriminant(bv) => match av {
                Value::Object(_) | Value::Set(_) | Value::Array(_) => is_subset(av, bv),
                _ => av == bv,
            },
            Some(_) => false,
        }),
        (Value::Set(a), Value::Set(b)) => b.iter().all(|v| a.contains(v)),
        (Value::Array(a), Value::Set(b)) => b.iter().all(|v| a.contains(v)),
        (Value::Array(a), Value::Array(b)) => {
            let (a, b): (Vec<&Value>, Vec<&Value>) = (a.iter().collect(), b.iter().collect());
            b.is_empty() || a.windows(b.len()).any(|w| w == b.as_slice())
        }
        _ => false,
    }
}

/// Most paths one `json.remove` call takes.
const MAX_REMOVE_PATHS: usize = 10_000;

/// `json.remove(object, paths)`: each path a JSON pointer string (`a/b`,
/// `~1` for `/`, `~0` for `~`) or an array of keys; array elements are
/// named by index. Paths that lead nowhere remove nothing.
fn json_remove(args: &[Value]) -> anyhow::Result<Value> {
    let name = "json.remove";
    let Value::Object(_) = &args[0] else {
        return Err(operand(name, 1, "object", &args[0]));
    };
    let list: Vec<&Value> = match &args[1] {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        other => return Err(operand(name, 2, "one of {array, set}", other)),
    };
    if list.len() > MAX_REMOVE_PATHS {
        anyhow::bail!("{name}: more than {MAX_REMOVE_PATHS} paths");
    }
    let mut paths: Vec<Vec<Value>> = Vec::with_capacity(list.len());
    for p in list {
        match p {
            Value::String(s) => {
                let s = s.strip_prefix('/').unwrap_or(s);
                if s.is_empty() {
                    continue;
                }
                paths.push(
                    s.split('/')
                        .map(|seg| Value::from(seg.replace("~1", "/").replace("~0", "~")))
                        .collect(),
                );
            }
            Value::Array(a) if !a.is_empty() => paths.push(a.iter().cloned().collect()),
            Value::Array(_) => {}
            other => anyhow::bail!(
                "{name}: operand 2 must be one of {{set, array}} containing string paths or array of path segments but got {}",
                super::type_name(other)
            ),
        }
    }
    let refs: Vec<&[Value]> = paths.iter().map(Vec::as_slice).collect();
    Ok(remove_paths(&args[0], &refs).unwrap_or(Value::Undefined))
}

/// The value without what the paths name; `None` when a path ends here.
fn remove_paths(v: &Value, paths: &[&[Value]]) -> Option<Value> {
    if paths.iter().any(|p| p.is_empty()) {
        return None;
    }
    if paths.is_empty() {
        return Some(v.clone());
    }
    let tails = |key: &dyn Fn(&Value) -> bool| -> Vec<&[Value]> {
        paths.iter().filter(|p| key(&p[0])).map(|p| &p[1..]).collect()
    };
    Some(match v {
        Value::Object(o) => {
            let mut out = BTreeMap::new();
            for (k, child) in o.iter() {
                let t = tails(&|h| h == k);
                if let Some(kept) = remove_paths(child, &t) {
                    out.insert(k.clone(), kept);
                }
            }
            Value::from(out)
        }
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, child) in a.iter().enumerate() {
                let t = tails(&|h| match h {
                    Value::String(s) => s.parse::<usize>().ok() == Some(i),
                    Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()) == Some(i),
                    _ => false,
                });
                if let Some(kept) = remove_paths(child, &t) {
                    out.push(kept);
                }
            }
            Value::from(out)
        }
        Value::Set(s) => {
            let mut out = BTreeSet::new();
            for child in s.iter() {
                let t = tails(&|h| h == child);
                if let Some(kept) = remove_paths(child, &t) {
                    out.insert(kept);
                }
            }
            Value::from(out)
        }
        other => other.clone(),
    })
}

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
    if name == "div" && b.as_f64() == Some(0.0) {
        anyhow::bail!("div: divide by zero");
    }
    if let Some(exact) = super::decimal::arith(name, &args[0], &args[1]) {
        return Ok(exact);
    }
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

/// `x in c`: an element of an array or set, a value of an object; false
/// for anything else, as in OPA.
fn member_2(args: &[Value]) -> anyhow::Result<Value> {
    let (x, c) = (&args[0], &args[1]);
    Ok(Value::from(match c {
        Value::Array(a) => a.iter().any(|v| v == x),
        Value::Set(s) => s.contains(x),
        Value::Object(o) => o.iter().any(|(_, v)| v == x),
        _ => false,
    }))
}

/// `k, v in c`: `c[k]` is `v` (an array's index, an object's key, a set's
/// element as both).
fn member_3(args: &[Value]) -> anyhow::Result<Value> {
    let (k, v, c) = (&args[0], &args[1], &args[2]);
    Ok(Value::from(match c {
        Value::Array(a) => match k {
            Value::Number(n) => n
                .as_u64()
                .filter(|_| n.is_integer())
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| a.get(i))
                .is_some_and(|x| x == v),
            _ => false,
        },
        Value::Object(o) => o.get(k).is_some_and(|x| x == v),
        Value::Set(s) => k == v && s.contains(v),
        _ => false,
    }))
}

/// Most operations one `json.patch` call applies.
const MAX_PATCH_OPS: usize = 10_000;

/// A patch path: a JSON pointer (`/a/0`, `~1` for `/`, `~0` for `~`) or an
/// array of keys.
fn patch_path(name: &str, field: &str, v: &Value) -> anyhow::Result<Vec<Value>> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .strip_prefix('/')
            .unwrap_or(s)
            .split('/')
            .map(|seg| Value::from(seg.replace("~1", "/").replace("~0", "~")))
            .collect()),
        Value::Array(a) => Ok(a.iter().cloned().collect()),
        other => anyhow::bail!(
            "{name}: {field} must be a string or an array of path segments, not {}",
            super::type_name(other)
        ),
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_default(),
    }
}

/// The array index a key names: digits, in bounds (`len` allowed when
/// inserting); `-` is the end.
fn array_index(name: &str, key: &Value, len: usize, inserting: bool) -> anyhow::Result<usize> {
    let i = match key {
        Value::String(s) if inserting && s.as_ref() == "-" => return Ok(len),
        Value::String(s) => s.parse::<usize>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    match i {
        Some(i) if i < len || (inserting && i == len) => Ok(i),
        _ if inserting => anyhow::bail!("{name}: index for array insertion out of bounds"),
        _ => anyhow::bail!("{name}: index {} out of bounds", key_text(key)),
    }
}

/// The value at `path`, or the error OPA gives for a path that is not there.
fn patch_get<'v>(name: &str, doc: &'v Value, path: &[Value]) -> anyhow::Result<&'v Value> {
    let mut at = doc;
    for k in path {
        at = match at {
            Value::Object(o) => o
                .get(k)
                .ok_or_else(|| anyhow::anyhow!("{name}: path {:?} does not exist", key_text(k)))?,
            Value::Array(a) => {
                let i = array_index(name, k, a.len(), false)?;
                &a[i]
            }
            Value::Set(s) => s
                .get(k)
                .ok_or_else(|| anyhow::anyhow!("{name}: path {:?} does not exist in set", key_text(k)))?,
            other => anyhow::bail!(
                "{name}: cannot index {} with {:?}",
                super::type_name(other),
                key_text(k)
            ),
        };
    }
    Ok(at)
}

/// `doc` with `f` applied to the container holding the last key of `path`.
fn patch_at(
    name: &str,
    doc: &Value,
    path: &[Value],
    f: &mut dyn FnMut(&Value, &Value) -> anyhow::Result<Value>,
) -> anyhow::Result<Value> {
    let (key, rest) = match path {
        [] => anyhow::bail!("{name}: the document root has no parent"),
        [key] => return f(doc, key),
        [head, rest @ ..] => (head, rest),
    };
    match doc {
        Value::Object(o) => {
            let child = o
                .get(key)
                .ok_or_else(|| anyhow::anyhow!("{name}: path {:?} does not exist in object", key_text(key)))?;
            let mut out: BTreeMap<Value, Value> = o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            out.insert(key.clone(), patch_at(name, child, rest, f)?);
            Ok(Value::from(out))
        }
        Value::Array(a) => {
            let i = array_index(name, key, a.len(), false)?;
            let mut out: Vec<Value> = a.iter().cloned().collect();
            out[i] = patch_at(name, &out[i], rest, f)?;
            Ok(Value::from(out))
        }
        other => anyhow::bail!(
            "{name}: cannot descend into {} at {:?}",
            super::type_name(other),
            key_text(key)
        ),
    }
}

fn patch_add(name: &str, doc: &Value, path: &[Value], value: &Value) -> anyhow::Result<Value> {
    if path.is_empty() {
        return Ok(value.clone());
    }
    patch_at(name, doc, path, &mut |parent, key| match parent {
        Value::Object(o) => {
            let mut out: BTreeMap<Value, Value> = o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            out.insert(key.clone(), value.clone());
            Ok(Value::from(out))
        }
        Value::Array(a) => {
            let i = array_index(name, key, a.len(), true)?;
            let mut out: Vec<Value> = a.iter().cloned().collect();
            out.insert(i, value.clone());
            Ok(Value::from(out))
        }
        Value::Set(s) => {
            if key != value && key_text(key) != key_text(value) {
                anyhow::bail!(
                    "{name}: set key {:?} does not equal value to be inserted {}",
                    key_text(key),
                    key_text(value)
                );
            }
            let mut out: BTreeSet<Value> = s.iter().cloned().collect();
            out.insert(value.clone());
            Ok(Value::from(out))
        }
        other => anyhow::bail!("{name}: cannot add to {}", super::type_name(other)),
    })
}

fn patch_remove(name: &str, doc: &Value, path: &[Value]) -> anyhow::Result<(Value, Value)> {
    let mut removed = Value::Undefined;
    let out = patch_at(name, doc, path, &mut |parent, key| match parent {
        Value::Object(o) => {
            let mut out: BTreeMap<Value, Value> = o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            removed = out.remove(key).ok_or_else(|| {
                anyhow::anyhow!(
                    "{name}: cannot delete child key {:?} that does not exist",
                    key_text(key)
                )
            })?;
            Ok(Value::from(out))
        }
        Value::Array(a) => {
            let i = array_index(name, key, a.len(), false)?;
            let mut out: Vec<Value> = a.iter().cloned().collect();
            removed = out.remove(i);
            Ok(Value::from(out))
        }
        Value::Set(s) => {
            let member = s
                .get(key)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{name}: cannot delete child key {:?} that does not exist",
                        key_text(key)
                    )
                })?
                .clone();
            let out: BTreeSet<Value> = s.iter().filter(|v| **v != member).cloned().collect();
            removed = member;
            Ok(Value::from(out))
        }
        other => anyhow::bail!("{name}: cannot delete from {}", super::type_name(other)),
    })?;
    Ok((out, removed))
}

/// `json.patch(doc, ops)`: RFC 6902 (`add`, `remove`, `replace`, `move`,
/// `copy`, `test`), paths as JSON pointers or key arrays; any operation
/// that cannot apply, a failed `test` among them, is an error, as in OPA
/// (regorus answered undefined).
fn json_patch(args: &[Value]) -> anyhow::Result<Value> {
    let name = "json.patch";
    let Value::Array(ops) = &args[1] else {
        return Err(operand(name, 2, "array", &args[1]));
    };
    if ops.len() > MAX_PATCH_OPS {
        anyhow::bail!("{name}: more than {MAX_PATCH_OPS} operations");
    }
    let mut doc = args[0].clone();
    for op in ops.iter() {
        let Value::Object(o) = op else {
            return Err(operand(name, 2, "array of objects", op));
        };
        let field = |f: &str| {
            o.get(&Value::from(f))
                .ok_or_else(|| anyhow::anyhow!("{name}: missing required attribute '{f}'"))
        };
        let kind = match field("op")? {
            Value::String(s) => s.to_string(),
            other => anyhow::bail!("{name}: op must be a string, not {}", super::type_name(other)),
        };
        let path = patch_path(name, "path", field("path")?)?;
        doc = match kind.as_str() {
            "add" => patch_add(name, &doc, &path, field("value")?)?,
            "remove" => patch_remove(name, &doc, &path)?.0,
            "replace" => {
                let value = field("value")?;
                if path.is_empty() {
                    value.clone()
                } else {
                    let (without, _) = patch_remove(name, &doc, &path)?;
                    patch_add(name, &without, &path, value)?
                }
            }
            "move" => {
                let from = patch_path(name, "from", field("from")?)?;
                let (without, moved) = patch_remove(name, &doc, &from)?;
                patch_add(name, &without, &path, &moved)?
            }
            "copy" => {
                let from = patch_path(name, "from", field("from")?)?;
                let copied = patch_get(name, &doc, &from)?.clone();
                patch_add(name, &doc, &path, &copied)?
            }
            "test" => {
                let expected = field("value")?;
                let found = patch_get(name, &doc, &path)?;
                if found != expected {
                    anyhow::bail!(
                        "{name}: value from EditTree != patch value.\n\nExpected: {}\n\nFound: {}",
                        key_text(expected),
                        key_text(found)
                    );
                }
                doc
            }
            other => anyhow::bail!("{name}: unrecognized op: '{other}'"),
        };
    }
    Ok(doc)
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

    #[test]
    fn sort_orders_types_as_opa_does() {
        assert_eq!(
            eval(
                r#"sort([{"a": 1}, [1], "s", 1, true, false, null, {1}, {"a": 0}, [0, 5], {0, 9}])
                   == [null, false, true, 1, "s", [0, 5], [1], {"a": 0}, {"a": 1}, {0, 9}, {1}]"#
            )
            .unwrap(),
            json("true")
        );
        assert!(eval("sort(1)").is_err());
    }

    #[test]
    fn subset_follows_each_pair_of_types() {
        for (expr, want) in [
            (
                r#"object.subset({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})"#,
                "true",
            ),
            (r#"object.subset({"a": [1, 2, 3]}, {"a": [1, 2]})"#, "true"),
            (r#"object.subset({"a": [1, 2, 3]}, {"a": {1}})"#, "false"),
            ("object.subset([1, 2, 3], [2, 3])", "true"),
            ("object.subset([1, 2, 3], [1, 3])", "false"),
            ("object.subset([3, 1, 2], {1, 2})", "true"),
            ("object.subset({1, 2, 3}, {1, 3})", "true"),
        ] {
            assert_eq!(eval(expr).unwrap(), json(want), "{expr}");
        }
        let e = eval("object.subset({1, 2, 3}, [3, 1])").unwrap_err().to_string();
        assert!(e.contains("must be of the same type or array and set"), "{e}");
        assert!(eval(r#"object.subset([1, 2], {})"#).is_err());
    }

    #[test]
    fn json_remove_reads_pointers_and_key_arrays() {
        assert_eq!(
            eval(r#"json.remove({"a/b": 1, "c~d": 2, "x": 3}, ["a~1b", "c~0d"])"#).unwrap(),
            json(r#"{"x": 3}"#)
        );
        assert_eq!(
            eval(r#"json.remove({"a": [1, 2, 3], "b": {"c": 1}}, ["a/1", "a/5", "zz/1", ["b", "c"]])"#).unwrap(),
            json(r#"{"a": [1, 3], "b": {}}"#)
        );
        assert_eq!(
            eval(r#"json.remove({"a": {"b": 1}}, ["", "a/"])"#).unwrap(),
            json(r#"{"a": {"b": 1}}"#)
        );
        assert_eq!(eval(r#"json.remove({"a": 1}, ["/a"])"#).unwrap(), json("{}"));
        assert!(eval(r#"json.remove([1], ["0"])"#).is_err());
    }

    #[test]
    fn eq_is_equality_by_name() {
        assert_eq!(eval("eq(1, 1)").unwrap(), json("true"));
        assert_eq!(eval(r#"eq([1], ["1"])"#).unwrap(), json("false"));
    }

    #[test]
    fn json_patch_applies_rfc_6902_and_fails_where_opa_fails() {
        for (expr, want) in [
            (
                r#"json.patch({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3}])"#,
                r#"{"a": [1, 2, 3]}"#,
            ),
            (
                r#"json.patch({"a": {"b": 1}}, [{"op": "move", "from": "/a/b", "path": "/c"}])"#,
                r#"{"a": {}, "c": 1}"#,
            ),
            (
                r#"json.patch({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}])"#,
                r#"{"a": {"b": 1}, "c": {"b": 1}}"#,
            ),
            (
                r#"json.patch({"a": 1}, [{"op": "add", "path": ["x"], "value": 2}])"#,
                r#"{"a": 1, "x": 2}"#,
            ),
            (r#"json.patch({"a/b": 1}, [{"op": "remove", "path": "/a~1b"}])"#, "{}"),
            (
                r#"json.patch({"a": [1, 2, 3]}, [{"op": "remove", "path": "/a/1"}])"#,
                r#"{"a": [1, 3]}"#,
            ),
            (
                r#"json.patch([1], [{"op": "add", "path": "/0", "value": 0}])"#,
                "[0, 1]",
            ),
            (r#"json.patch({"a": 1}, [{"op": "add", "path": "", "value": 5}])"#, "5"),
            (
                r#"json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "/a", "value": 2}])"#,
                r#"{"a": 2}"#,
            ),
        ] {
            assert_eq!(eval(expr).unwrap(), json(want), "{expr}");
        }
        for (expr, message) in [
            (
                r#"json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])"#,
                "value from EditTree != patch value",
            ),
            (
                r#"json.patch({"a": [1, 2]}, [{"op": "add", "path": "/a/5", "value": 3}])"#,
                "out of bounds",
            ),
            (
                r#"json.patch({"a": 1}, [{"op": "remove", "path": "/b"}])"#,
                "does not exist",
            ),
            (
                r#"json.patch({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}])"#,
                "does not exist",
            ),
            (
                r#"json.patch({"a": 1}, [{"op": "add", "path": "/x/y", "value": 2}])"#,
                "does not exist",
            ),
            (
                r#"json.patch({"a": 1}, [{"op": "bogus", "path": "/a"}])"#,
                "unrecognized op",
            ),
            (
                r#"json.patch({"a": 1}, [{"path": "/a", "value": 1}])"#,
                "missing required attribute 'op'",
            ),
        ] {
            let e = eval(expr).unwrap_err().to_string();
            assert!(e.contains(message), "{expr}: {e}");
        }
    }

    #[test]
    fn membership_as_a_value_is_undefined_where_the_collection_is() {
        assert_eq!(eval(r#"[x | x := "a" in ["a", "b"]]"#).unwrap(), json("[true]"));
        assert_eq!(eval(r#"[x | x := "a" in {"k": "b"}]"#).unwrap(), json("[false]"));
        assert_eq!(eval(r#"[x | x := "a" in input.missing]"#).unwrap(), json("[]"));
        assert_eq!(eval(r#"internal.member_3(1, "b", ["a", "b"])"#).unwrap(), json("true"));
        assert_eq!(
            eval(r#"internal.member_3("k", "b", {"k": "b"})"#).unwrap(),
            json("true")
        );
        assert_eq!(eval(r#"internal.member_2(1, "abc")"#).unwrap(), json("false"));
    }
}

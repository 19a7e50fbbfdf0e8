//! Network addresses.

use std::net::IpAddr;

use regorus::Value;

use super::{Builtin, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("net.cidr_intersects", 2, cidr_intersects),
    ("net.cidr_merge", 1, cidr_merge),
    ("net.cidr_contains_matches", 2, cidr_contains_matches),
];

/// Most addresses one `net.cidr_merge` call takes.
const MAX_MERGE: usize = 100_000;

/// A CIDR as (family is v6, network bits as u128, prefix length).
fn cidr(name: &str, text: &str) -> anyhow::Result<(bool, u128, u32)> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("{name}: invalid CIDR address: {text}"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| anyhow::anyhow!("{name}: invalid CIDR address: {text}"))?;
    let (v6, bits, width) = match addr {
        IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (true, u128::from(a), 128),
    };
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= width)
        .ok_or_else(|| anyhow::anyhow!("{name}: invalid CIDR address: {text}"))?;
    let mask = if len == 0 {
        0
    } else {
        (u128::MAX << (width - len)) & (u128::MAX >> (128 - width))
    };
    Ok((v6, bits & mask, len))
}

/// Two CIDR blocks either nest or are apart: they intersect when the
/// shorter prefix holds the other's network address.
fn cidr_intersects(args: &[Value]) -> anyhow::Result<Value> {
    let name = "net.cidr_intersects";
    let (a6, a, alen) = cidr(name, string(name, args, 1)?)?;
    let (b6, b, blen) = cidr(name, string(name, args, 2)?)?;
    if a6 != b6 {
        return Ok(Value::from(false));
    }
    let width = if a6 { 128 } else { 32 };
    let shorter = alen.min(blen);
    let mask = if shorter == 0 {
        0
    } else {
        (u128::MAX << (width - shorter)) & (u128::MAX >> (128 - width))
    };
    Ok(Value::from(a & mask == b & mask))
}

fn mask(width: u32, len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX << (width - len)) & (u128::MAX >> (128 - width))
    }
}

/// IPv4 blocks merge among IPv6 ones as Go holds them, mapped into
/// `::ffff:0:0/96`: `::/0` covers every IPv4 block.
const V4_MAPPED: u128 = 0xffff << 32;

/// A block to merge, in the 128-bit space: (network, prefix length, the
/// address as given). A CIDR's network is its masked address; an IPv4
/// address alone takes Go's default (classful) mask, as OPA reads it, and
/// keeps its host bits: `10.1.2.3` is `10.1.2.3/8`. A bare IPv6 address is
/// refused.
fn block(text: &str) -> anyhow::Result<(u128, u32, u128)> {
    let name = "net.cidr_merge";
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let bad = || anyhow::anyhow!("{name}: invalid CIDR address: {text}");
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let (bits, len, bare) = match (addr, len) {
        (IpAddr::V4(a), len) => {
            let len: u32 = match len {
                Some(l) => l.parse().ok().filter(|l| *l <= 32).ok_or_else(bad)?,
                None => match a.octets()[0] {
                    0..=127 => 8,
                    128..=191 => 16,
                    _ => 24,
                },
            };
            (V4_MAPPED | u128::from(u32::from(a)), len + 96, !text.contains('/'))
        }
        (IpAddr::V6(a), Some(l)) => {
            let len: u32 = l.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?;
            (u128::from(a), len, false)
        }
        (IpAddr::V6(_), None) => anyhow::bail!("{name}: IPv6 invalid: needs prefix length"),
    };
    let net = bits & mask(128, len);
    Ok((net, len, if bare { bits } else { net }))
}

/// A block as text: IPv4 when it lies in the mapped range.
fn block_text(addr: u128, len: u32) -> Value {
    Value::from(if len >= 96 && addr & !u128::from(u32::MAX) == V4_MAPPED {
        format!("{}/{}", std::net::Ipv4Addr::from(addr as u32), len - 96)
    } else {
        format!("{}/{}", std::net::Ipv6Addr::from(addr), len)
    })
}

/// One block while merging: network, prefix length, and the address as
/// given while no other block has touched it.
struct Merging {
    net: u128,
    len: u32,
    given: Option<u128>,
}

/// The fewest CIDR blocks covering the same addresses, as a set: blocks
/// inside others dropped, adjacent halves joined. A block no other touched
/// is answered as it was given (a bare address with its host bits), as OPA
/// answers.
fn cidr_merge(args: &[Value]) -> anyhow::Result<Value> {
    let name = "net.cidr_merge";
    let items: Vec<&Value> = match &args[0] {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        other => return Err(super::operand(name, 1, "one of {array, set}", other)),
    };
    if items.len() > MAX_MERGE {
        anyhow::bail!("{name}: more than {MAX_MERGE} addresses");
    }
    let mut blocks = Vec::with_capacity(items.len());
    for v in items {
        let Value::String(s) = v else {
            return Err(super::operand(name, 1, "set or array of strings", v));
        };
        let (net, len, given) = block(s)?;
        blocks.push(Merging {
            net,
            len,
            given: Some(given),
        });
    }
    blocks.sort_by_key(|b| (b.net, b.len));
    // Drop blocks inside an earlier (wider or equal) one.
    let mut kept: Vec<Merging> = Vec::with_capacity(blocks.len());
    for b in blocks {
        if let Some(prev) = kept.last_mut()
            && prev.len <= b.len
            && b.net & mask(128, prev.len) == prev.net
        {
            prev.given = None;
            continue;
        }
        kept.push(b);
    }
    // Join sibling halves until none are left.
    loop {
        let mut joined = false;
        let mut next: Vec<Merging> = Vec::with_capacity(kept.len());
        let mut rest = kept.into_iter().peekable();
        while let Some(b) = rest.next() {
            let sibling = rest.peek().is_some_and(|n| {
                b.len > 0
                    && n.len == b.len
                    && b.net & mask(128, b.len - 1) == b.net
                    && n.net == b.net | (1u128 << (128 - b.len))
            });
            if sibling {
                rest.next();
                next.push(Merging {
                    net: b.net,
                    len: b.len - 1,
                    given: None,
                });
                joined = true;
            } else {
                next.push(b);
            }
        }
        kept = next;
        if !joined {
            break;
        }
    }
    let out: std::collections::BTreeSet<Value> = kept
        .into_iter()
        .map(|b| block_text(b.given.unwrap_or(b.net), b.len))
        .collect();
    Ok(Value::from(out))
}

/// Most addresses on one side of `net.cidr_contains_matches`.
const MAX_MATCH_SIDE: usize = 10_000;

/// (is IPv6, network bits, prefix length).
type Block = (bool, u128, u32);

/// An address or a block: (is IPv6, network bits, prefix length); an
/// address alone is a block of one.
fn address_or_block(name: &str, text: &str) -> anyhow::Result<Block> {
    if text.contains('/') {
        return cidr(name, text).map_err(|_| {
            anyhow::anyhow!("{name}: not a valid textual representation of an IP address or CIDR: {text}")
        });
    }
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok((false, u128::from(u32::from(a)), 32)),
        Ok(IpAddr::V6(a)) => Ok((true, u128::from(a), 128)),
        Err(_) => anyhow::bail!("{name}: not a valid textual representation of an IP address or CIDR: {text}"),
    }
}

/// The side of a match: (key in the answer, the address or block). A
/// string is its own key; an array's elements are keyed by index, a set's
/// by themselves, an object's by key; an element is a string or an array
/// whose first element is one.
fn match_side(name: &str, position: usize, v: &Value) -> anyhow::Result<Vec<(Value, Block)>> {
    let text_of = |e: &Value| -> anyhow::Result<String> {
        match e {
            Value::String(s) => Ok(s.to_string()),
            Value::Array(a) => match a.iter().next() {
                Some(Value::String(s)) => Ok(s.to_string()),
                _ => Err(super::operand(
                    name,
                    position,
                    "string or array whose first element is a string",
                    e,
                )),
            },
            other => Err(super::operand(name, position, "string or array", other)),
        }
    };
    let entries: Vec<(Value, &Value)> = match v {
        Value::String(_) => vec![(v.clone(), v)],
        Value::Array(a) => a.iter().enumerate().map(|(i, e)| (Value::from(i as u64), e)).collect(),
        Value::Set(s) => s.iter().map(|e| (e.clone(), e)).collect(),
        Value::Object(o) => o.iter().map(|(k, e)| (k.clone(), e)).collect(),
        other => {
            return Err(super::operand(
                name,
                position,
                "one of {string, array, set, object}",
                other,
            ));
        }
    };
    if entries.len() > MAX_MATCH_SIDE {
        anyhow::bail!("{name}: more than {MAX_MATCH_SIDE} addresses in operand {position}");
    }
    entries
        .into_iter()
        .map(|(k, e)| Ok((k, address_or_block(name, &text_of(e)?)?)))
        .collect()
}

/// `net.cidr_contains_matches(cidrs, cidrs_or_ips)`: the pairs of keys
/// `[i, j]` where block `i` holds all of `j`, as a set.
fn cidr_contains_matches(args: &[Value]) -> anyhow::Result<Value> {
    let name = "net.cidr_contains_matches";
    let blocks = match_side(name, 1, &args[0])?;
    let items = match_side(name, 2, &args[1])?;
    let mut out = std::collections::BTreeSet::new();
    for (bk, (b6, bnet, blen)) in &blocks {
        let width = if *b6 { 128 } else { 32 };
        let m = mask(width, *blen);
        for (ik, (i6, inet, ilen)) in &items {
            if b6 == i6 && ilen >= blen && inet & m == bnet & m {
                out.insert(Value::from(vec![bk.clone(), ik.clone()]));
            }
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn nested_blocks_intersect_and_apart_ones_do_not() {
        assert_eq!(
            eval(r#"net.cidr_intersects("192.168.1.0/24", "192.168.1.128/25")"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"net.cidr_intersects("192.168.1.0/24", "192.168.2.0/24")"#).unwrap(),
            json("false")
        );
        assert_eq!(
            eval(r#"net.cidr_intersects("2001:db8::/32", "2001:db8:1::/48")"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"net.cidr_intersects("0.0.0.0/0", "10.0.0.0/8")"#).unwrap(),
            json("true")
        );
    }

    #[test]
    fn merge_joins_halves_and_drops_covered_blocks() {
        assert_eq!(
            eval(r#"net.cidr_merge(["192.0.128.0/24", "192.0.129.0/24", "192.0.128.5/32", "2001:db8::/33", "2001:db8:8000::/33"]) == {"192.0.128.0/23", "2001:db8::/32"}"#).unwrap(),
            json("true")
        );
        // A bare address takes Go's classful default mask, as OPA reads it;
        // one block alone comes back as given.
        assert_eq!(
            eval(r#"net.cidr_merge({"10.1.2.3"}) == {"10.1.2.3/8"}"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"net.cidr_merge(["10.1.2.3", "11.2.3.4"]) == {"10.0.0.0/7"}"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"net.cidr_merge(["224.0.0.1"]) == {"224.0.0.1/24"}"#).unwrap(),
            json("true")
        );
        assert_eq!(
            eval(r#"net.cidr_merge(["0.0.0.0/0", "::/0"]) == {"::/0"}"#).unwrap(),
            json("true")
        );
        // Untouched blocks keep their host bits; the answer is a set.
        assert_eq!(
            eval(r#"net.cidr_merge(["5.6.7.8", "1.2.3.4", "1.2.3.4"]) == {"1.0.0.0/8", "5.6.7.8/8"}"#).unwrap(),
            json("true")
        );
        assert!(eval(r#"net.cidr_merge(["2001:db8::1"])"#).is_err());
        assert!(eval(r#"net.cidr_merge(["300.1.1.1/8"])"#).is_err());
        assert!(eval(r#"net.cidr_merge([1])"#).is_err());
    }

    #[test]
    fn contains_matches_pairs_the_keys_of_each_side() {
        for (expr, want) in [
            (
                r#"net.cidr_contains_matches("10.0.0.0/8", "10.1.2.3")"#,
                r#"{["10.0.0.0/8", "10.1.2.3"]}"#,
            ),
            (
                r#"net.cidr_contains_matches(["10.0.0.0/8", "192.168.0.0/16"], ["10.1.2.3", "192.168.1.0/24", "8.8.8.8"])"#,
                "{[0, 0], [1, 1]}",
            ),
            (
                r#"net.cidr_contains_matches({"a": "10.0.0.0/8", "b": ["192.168.0.0/16", "x"]}, {"10.1.1.1", "192.168.0.1"})"#,
                r#"{["a", "10.1.1.1"], ["b", "192.168.0.1"]}"#,
            ),
            (r#"net.cidr_contains_matches("10.0.0.0/8", "10.0.0.0/7")"#, "set()"),
            (
                r#"net.cidr_contains_matches(["2001:db8::/32"], ["2001:db8::1", "10.0.0.1"])"#,
                "{[0, 0]}",
            ),
        ] {
            assert_eq!(eval(&format!("{expr} == {want}")).unwrap(), json("true"), "{expr}");
        }
        let e = eval(r#"net.cidr_contains_matches("10.0.0.0/8", "bad")"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid textual representation"), "{e}");
    }
}

//! Network addresses.

use std::net::IpAddr;

use regorus::Value;

use super::{Builtin, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("net.cidr_intersects", 2, cidr_intersects)];

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
}

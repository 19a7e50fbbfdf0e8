//! `uuid.parse` as OPA answers it: version and variant for every UUID, and
//! the time, clock sequence and node of the time-based versions 1 and 2.

use std::collections::BTreeMap;

use regorus::Value;

use super::{Builtin, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("uuid.parse", 1, parse)];

/// 100-ns intervals from 1582-10-15 (the Gregorian reform, UUIDs' epoch)
/// to 1970-01-01.
const GREGORIAN_TO_UNIX_100NS: i64 = 0x01B2_1DD2_1381_4000;

/// The 16 bytes of `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, bare, braced
/// or as `urn:uuid:`, in either case; `None` for anything else.
fn bytes_of(text: &str) -> Option<[u8; 16]> {
    let t = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
        .unwrap_or(text);
    let b = t.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    hex::decode_to_slice(&hex, &mut out).ok()?;
    Some(out)
}

fn parse(args: &[Value]) -> anyhow::Result<Value> {
    let text = string("uuid.parse", args, 1)?;
    // OPA: a string that is not a UUID makes the call undefined.
    let Some(b) = bytes_of(text) else {
        return Ok(Value::Undefined);
    };
    let version = b[6] >> 4;
    let variant = match b[8] {
        v if v & 0x80 == 0 => "Reserved, NCS backward compatibility",
        v if v & 0xc0 == 0x80 => "RFC4122",
        v if v & 0xe0 == 0xc0 => "Reserved, Microsoft Corporation backward compatibility",
        _ => "Reserved, future definition",
    };
    let mut out = BTreeMap::new();
    out.insert(Value::from("version"), Value::from(u64::from(version)));
    out.insert(Value::from("variant"), Value::from(variant));
    if version == 1 || version == 2 {
        let low = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let mid = u64::from(u16::from_be_bytes([b[4], b[5]]));
        let high = u64::from(u16::from_be_bytes([b[6], b[7]]) & 0x0fff);
        let ticks = (high << 48) | (mid << 32) | low;
        let unix_ns = (ticks as i64 - GREGORIAN_TO_UNIX_100NS).saturating_mul(100);
        let node = &b[10..16];
        out.insert(Value::from("time"), Value::from(unix_ns));
        out.insert(
            Value::from("clocksequence"),
            Value::from(u64::from(u16::from_be_bytes([b[8], b[9]]) & 0x3fff)),
        );
        out.insert(
            Value::from("nodeid"),
            Value::from(node.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join("-")),
        );
        let scope = if node[0] & 0x02 == 0 { "global" } else { "local" };
        let cast = if node[0] & 0x01 == 0 { "unicast" } else { "multicast" };
        out.insert(Value::from("macvariables"), Value::from(format!("{scope}:{cast}")));
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn time_based_uuids_carry_their_time_and_node() {
        assert_eq!(
            eval(r#"uuid.parse("{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}")"#).unwrap(),
            json(
                r#"{"clocksequence": 180, "macvariables": "global:unicast", "nodeid": "00-c0-4f-d4-30-c8",
                    "time": 886630433151182400, "variant": "RFC4122", "version": 1}"#
            )
        );
        assert_eq!(
            eval(r#"uuid.parse("01890a5d-ac96-774b-bcce-b302099a8057")"#).unwrap(),
            json(r#"{"variant": "RFC4122", "version": 7}"#)
        );
        assert_eq!(eval(r#"uuid.parse("not-a-uuid")"#).unwrap(), regorus::Value::Undefined);
    }
}

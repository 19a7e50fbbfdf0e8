//! Digests and MACs: `crypto.md5`, `crypto.sha1`, `crypto.sha256`,
//! `crypto.hmac.{md5,sha1,sha256,sha512}` and `crypto.hmac.equal`.

use hmac::{Hmac, Mac};
use regorus::Value;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::{Answer, Builtin, str_arg};

pub(crate) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.md5", 1, md5),
    ("crypto.sha1", 1, sha1),
    ("crypto.sha256", 1, sha256),
    ("crypto.hmac.md5", 2, hmac_md5),
    ("crypto.hmac.sha1", 2, hmac_sha1),
    ("crypto.hmac.sha256", 2, hmac_sha256),
    ("crypto.hmac.sha512", 2, hmac_sha512),
    ("crypto.hmac.equal", 2, hmac_equal),
];

fn digest_hex<D: Digest>(args: &[Value]) -> Answer {
    let x = str_arg(args, 0)?;
    Ok(Value::from(hex::encode(D::digest(x.as_bytes()))))
}

/// `crypto.md5(x)`: the MD5 digest of the string `x`, lower-case hex.
fn md5(args: &[Value]) -> Answer {
    digest_hex::<md5::Md5>(args)
}

/// `crypto.sha1(x)`: the SHA-1 digest of the string `x`, lower-case hex.
fn sha1(args: &[Value]) -> Answer {
    digest_hex::<sha1::Sha1>(args)
}

/// `crypto.sha256(x)`: the SHA-256 digest of the string `x`, lower-case hex.
fn sha256(args: &[Value]) -> Answer {
    digest_hex::<sha2::Sha256>(args)
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(args: &[Value]) -> Answer {
    let x = str_arg(args, 0)?;
    let key = str_arg(args, 1)?;
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).map_err(|e| anyhow::anyhow!("hmac key: {e}"))?;
    mac.update(x.as_bytes());
    Ok(Value::from(hex::encode(mac.finalize().into_bytes())))
}

/// `crypto.hmac.md5(x, key)`: HMAC-MD5 of `x` under `key`, lower-case hex.
fn hmac_md5(args: &[Value]) -> Answer {
    hmac_hex::<Hmac<md5::Md5>>(args)
}

/// `crypto.hmac.sha1(x, key)`: HMAC-SHA1 of `x` under `key`, lower-case hex.
fn hmac_sha1(args: &[Value]) -> Answer {
    hmac_hex::<Hmac<sha1::Sha1>>(args)
}

/// `crypto.hmac.sha256(x, key)`: HMAC-SHA256 of `x` under `key`, hex.
fn hmac_sha256(args: &[Value]) -> Answer {
    hmac_hex::<Hmac<sha2::Sha256>>(args)
}

/// `crypto.hmac.sha512(x, key)`: HMAC-SHA512 of `x` under `key`, hex.
fn hmac_sha512(args: &[Value]) -> Answer {
    hmac_hex::<Hmac<sha2::Sha512>>(args)
}

/// `crypto.hmac.equal(mac1, mac2)`: whether the two strings are equal,
/// compared in time that does not depend on where they differ (Go's
/// `hmac.Equal` on their bytes).
fn hmac_equal(args: &[Value]) -> Answer {
    let a = str_arg(args, 0)?;
    let b = str_arg(args, 1)?;
    Ok(Value::from(bool::from(a.as_bytes().ct_eq(b.as_bytes()))))
}

//! OPA's JSON Web Token builtins: `io.jwt.decode`, `io.jwt.decode_verify`,
//! `io.jwt.verify_{hs,rs,ps,es}{256,384,512}`, `io.jwt.verify_eddsa`,
//! `io.jwt.encode_sign` and `io.jwt.encode_sign_raw`. Only the JWS compact
//! serialization is read; a JWE is a builtin error, as in OPA.

use regorus::Value;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use super::keys::{self, Jwk, JwkMaterial, Key, VerificationKey};
use super::{Answer, Builtin, b64url_decode, b64url_encode, gojson, json_value, str_arg};

/// The algorithms OPA knows (`tokenAlgorithms`).
pub(crate) const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "EdDSA",
];

/// Nested tokens (`cty: JWT`) deeper than this are a builtin error.
const MAX_NESTING: usize = 32;

pub(crate) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("io.jwt.decode", 1, decode),
    ("io.jwt.decode_verify", 2, decode_verify),
    ("io.jwt.verify_hs256", 2, verify_hs256),
    ("io.jwt.verify_hs384", 2, verify_hs384),
    ("io.jwt.verify_hs512", 2, verify_hs512),
    ("io.jwt.verify_rs256", 2, verify_rs256),
    ("io.jwt.verify_rs384", 2, verify_rs384),
    ("io.jwt.verify_rs512", 2, verify_rs512),
    ("io.jwt.verify_ps256", 2, verify_ps256),
    ("io.jwt.verify_ps384", 2, verify_ps384),
    ("io.jwt.verify_ps512", 2, verify_ps512),
    ("io.jwt.verify_es256", 2, verify_es256),
    ("io.jwt.verify_es384", 2, verify_es384),
    ("io.jwt.verify_es512", 2, verify_es512),
    ("io.jwt.verify_eddsa", 2, verify_eddsa),
    ("io.jwt.encode_sign", 3, encode_sign),
    ("io.jwt.encode_sign_raw", 3, encode_sign_raw),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hash {
    S256,
    S384,
    S512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::S256 => sha2::Sha256::digest(msg).to_vec(),
            Hash::S384 => sha2::Sha384::digest(msg).to_vec(),
            Hash::S512 => sha2::Sha512::digest(msg).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        use hmac::Hmac;
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(msg);
                    m.finalize().into_bytes().to_vec()
                }
                // HMAC takes keys of any length; this is not reached.
                Err(_) => Vec::new(),
            }
        }
        match self {
            Hash::S256 => run::<Hmac<sha2::Sha256>>(key, msg),
            Hash::S384 => run::<Hmac<sha2::Sha384>>(key, msg),
            Hash::S512 => run::<Hmac<sha2::Sha512>>(key, msg),
        }
    }

    fn pkcs1(self) -> Pkcs1v15Sign {
        match self {
            Hash::S256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::S384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::S512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    fn pss(self, salt: usize) -> Pss {
        match self {
            Hash::S256 => Pss::new_with_salt::<sha2::Sha256>(salt),
            Hash::S384 => Pss::new_with_salt::<sha2::Sha384>(salt),
            Hash::S512 => Pss::new_with_salt::<sha2::Sha512>(salt),
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::S256 => 32,
            Hash::S384 => 48,
            Hash::S512 => 64,
        }
    }
}

/// The signing algorithm an `alg` names.
#[derive(Clone, Copy)]
enum Alg {
    Hs(Hash),
    Rs(Hash),
    Ps(Hash),
    Es(Hash),
    EdDsa,
}

fn alg_of(name: &str) -> Option<Alg> {
    Some(match name {
        "HS256" => Alg::Hs(Hash::S256),
        "HS384" => Alg::Hs(Hash::S384),
        "HS512" => Alg::Hs(Hash::S512),
        "RS256" => Alg::Rs(Hash::S256),
        "RS384" => Alg::Rs(Hash::S384),
        "RS512" => Alg::Rs(Hash::S512),
        "PS256" => Alg::Ps(Hash::S256),
        "PS384" => Alg::Ps(Hash::S384),
        "PS512" => Alg::Ps(Hash::S512),
        "ES256" => Alg::Es(Hash::S256),
        "ES384" => Alg::Es(Hash::S384),
        "ES512" => Alg::Es(Hash::S512),
        "EdDSA" => Alg::EdDsa,
        _ => return None,
    })
}

/// The three sections of a compact JWS, still encoded.
struct Token<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Token<'a> {
    fn split(s: &'a str) -> anyhow::Result<Self> {
        if !s.contains('.') {
            anyhow::bail!("encoded JWT had no period separators");
        }
        let parts: Vec<&str> = s.split('.').collect();
        match parts.as_slice() {
            [header, payload, signature] => Ok(Token {
                header,
                payload,
                signature,
            }),
            _ => anyhow::bail!("encoded JWT must have 3 sections, found {}", parts.len()),
        }
    }

    fn signing_input(&self) -> Vec<u8> {
        format!("{}.{}", self.header, self.payload).into_bytes()
    }

    fn signature(&self) -> anyhow::Result<Vec<u8>> {
        b64url_decode(self.signature)
    }

    /// The header as a JSON object; a JWE (`enc` present) is refused.
    fn decoded_header(&self) -> anyhow::Result<Value> {
        let header = json_object(&b64url_decode(self.header)?)?;
        if get(&header, "enc").is_some() {
            anyhow::bail!("JWT is a JWE object, which is not supported");
        }
        Ok(header)
    }
}

fn json_object(bytes: &[u8]) -> anyhow::Result<Value> {
    let v = json_value(bytes)?;
    match v {
        Value::Object(_) => Ok(v),
        _ => anyhow::bail!("decoded JSON type was not an Object"),
    }
}

fn get<'v>(obj: &'v Value, key: &str) -> Option<&'v Value> {
    match obj {
        Value::Object(fields) => fields.get(&Value::from(key)),
        _ => None,
    }
}

/// The JOSE header fields OPA interprets.
#[derive(Default)]
struct Header {
    alg: String,
    kid: String,
    cty: String,
    crit: Vec<String>,
    unknown: Vec<String>,
}

impl Header {
    /// Reads the fields; a known field of the wrong type is a builtin error.
    fn parse(header: &Value) -> anyhow::Result<Self> {
        let mut h = Header::default();
        let Value::Object(fields) = header else {
            anyhow::bail!("header must be an object");
        };
        for (k, v) in fields.iter() {
            let name = keys::value_str(k, "header name")?;
            match name {
                "alg" => h.alg = keys::value_str(v, "alg")?.to_string(),
                "kid" => h.kid = keys::value_str(v, "kid")?.to_string(),
                "typ" => {
                    keys::value_str(v, "typ")?;
                }
                "cty" => h.cty = keys::value_str(v, "cty")?.to_string(),
                "crit" => {
                    let Value::Array(items) = v else {
                        anyhow::bail!("crit: must be a list");
                    };
                    h.crit = items
                        .iter()
                        .filter_map(|i| match i {
                            Value::String(s) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect();
                    if h.crit.is_empty() {
                        anyhow::bail!("crit: must be a nonempty list");
                    }
                }
                other => h.unknown.push(other.to_string()),
            }
        }
        Ok(h)
    }

    /// RFC 7515: `alg` must be present, and every critical parameter must be
    /// one OPA understands.
    fn valid(&self) -> bool {
        !self.alg.is_empty() && !self.unknown.iter().any(|u| self.crit.contains(u))
    }
}

/// `io.jwt.decode(jwt)`: `[header, payload, signature]` of a compact JWS,
/// without verifying it; the signature is lower-case hex. A header with
/// `cty: "JWT"` means the payload is itself a token (quotes around it are
/// trimmed), which is decoded in its place.
fn decode(args: &[Value]) -> Answer {
    decode_at(str_arg(args, 0)?, 0)
}

fn decode_at(jwt: &str, depth: usize) -> Answer {
    if depth > MAX_NESTING {
        anyhow::bail!("JWT nested too deeply");
    }
    let token = Token::split(jwt)?;
    let header = token.decoded_header()?;
    let payload = b64url_decode(token.payload)?;
    if let Some(cty) = get(&header, "cty")
        && keys::value_str(cty, "cty")? == "JWT"
    {
        let inner = String::from_utf8_lossy(&payload);
        let inner = inner.trim_matches(|c| c == '"' || c == '\'');
        return decode_at(inner, depth + 1);
    }
    let payload = json_object(&payload)?;
    let signature = hex::encode(token.signature()?);
    Ok(Value::from(vec![header, payload, Value::from(signature)]))
}

// ---- signature checks -------------------------------------------------

fn rsa_pkcs1_ok(key: &rsa::RsaPublicKey, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    key.verify(hash.pkcs1(), &hash.digest(msg), sig).is_ok()
}

/// RSASSA-PSS with the salt length read from the signature, as Go's
/// `rsa.VerifyPSS` does with `PSSSaltLengthAuto`.
fn rsa_pss_ok(key: &rsa::RsaPublicKey, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    match pss_salt_len(key, hash, sig) {
        Some(salt) => key.verify(hash.pss(salt), &hash.digest(msg), sig).is_ok(),
        None => false,
    }
}

fn pss_salt_len(key: &rsa::RsaPublicKey, hash: Hash, sig: &[u8]) -> Option<usize> {
    let k = key.size();
    if sig.len() != k {
        return None;
    }
    let s = BigUint::from_bytes_be(sig);
    if &s >= key.n() {
        return None;
    }
    let m = s.modpow(key.e(), key.n()).to_bytes_be();
    let em_bits = key.n().bits().checked_sub(1)?;
    let em_len = em_bits.div_ceil(8);
    if m.len() > em_len {
        return None;
    }
    let mut em = vec![0u8; em_len - m.len()];
    em.extend_from_slice(&m);
    let h_len = hash.len();
    if em_len < h_len + 2 || em.last() != Some(&0xbc) {
        return None;
    }
    let db_len = em_len - h_len - 1;
    let h = em.get(db_len..db_len + h_len)?.to_vec();
    let mut db = em.get(..db_len)?.to_vec();
    let mut counter: u32 = 0;
    let mut filled = 0;
    while filled < db_len {
        let mut input = h.clone();
        input.extend_from_slice(&counter.to_be_bytes());
        for b in hash.digest(&input) {
            if filled == db_len {
                break;
            }
            db[filled] ^= b;
            filled += 1;
        }
        counter = counter.checked_add(1)?;
    }
    db[0] &= 0xffu8.checked_shr((8 * em_len - em_bits) as u32).unwrap_or(0);
    let one = db.iter().position(|&b| b != 0)?;
    (db[one] == 1).then(|| db_len - one - 1)
}

/// r and s as fixed-width big-endian scalars of `size` bytes each.
fn ec_scalars(sig: &[u8], size: usize) -> Option<Vec<u8>> {
    let n = sig.len() / 2;
    let mut out = Vec::with_capacity(2 * size);
    for part in [&sig[..n], &sig[n..]] {
        let first = part.iter().position(|&b| b != 0).unwrap_or(part.len());
        let trimmed = &part[first..];
        if trimmed.len() > size {
            return None;
        }
        out.extend(std::iter::repeat_n(0, size - trimmed.len()));
        out.extend_from_slice(trimmed);
    }
    Some(out)
}

/// ECDSA over `digest`, the signature being r and s as its two halves (any
/// length, as Go's `ecdsa.Verify` takes them).
fn ecdsa_ok(key: &Key, digest: &[u8], sig: &[u8]) -> bool {
    use ecdsa_verify::PrehashVerifier as _;
    match key {
        Key::P256(k) => ec_scalars(sig, 32)
            .and_then(|b| p256::ecdsa::Signature::from_slice(&b).ok())
            .is_some_and(|s| k.verify_prehash(digest, &s).is_ok()),
        Key::P384(k) => ec_scalars(sig, 48)
            .and_then(|b| p384::ecdsa::Signature::from_slice(&b).ok())
            .is_some_and(|s| k.verify_prehash(digest, &s).is_ok()),
        Key::P521(k) => ec_scalars(sig, 66)
            .and_then(|b| p521::ecdsa::Signature::from_slice(&b).ok())
            .is_some_and(|s| k.verify_prehash(digest, &s).is_ok()),
        _ => false,
    }
}

mod ecdsa_verify {
    pub(super) use p256::ecdsa::signature::hazmat::PrehashVerifier;
}

fn ec_size(key: &Key) -> usize {
    match key {
        Key::P256(_) => 32,
        Key::P384(_) => 48,
        Key::P521(_) => 66,
        _ => 0,
    }
}

fn ed25519_ok(key: &Key, msg: &[u8], sig: &[u8]) -> bool {
    let Key::Ed25519(k) = key else {
        return false;
    };
    match ed25519_dalek::Signature::from_slice(sig) {
        // Go's ed25519.Verify: cofactorless, canonical s, no small-order
        // checks on the key.
        Ok(s) => ed25519_dalek::Verifier::verify(k, msg, &s).is_ok(),
        Err(_) => false,
    }
}

/// What `io.jwt.verify_*` checks with a public key.
#[derive(Clone, Copy)]
enum Check {
    Rs(Hash),
    Ps(Hash),
    Es(Hash),
    EdDsa,
}

impl Check {
    fn verify(self, key: &Key, msg: &[u8], sig: &[u8]) -> bool {
        match (self, key) {
            (Check::Rs(h), Key::Rsa(k)) => rsa_pkcs1_ok(k, h, msg, sig),
            (Check::Ps(h), Key::Rsa(k)) => rsa_pss_ok(k, h, msg, sig),
            (Check::Es(h), _) => ecdsa_ok(key, &h.digest(msg), sig),
            (Check::EdDsa, _) => ed25519_ok(key, msg, sig),
            _ => false,
        }
    }
}

/// `io.jwt.verify_{rs,ps,es}*` and `verify_eddsa`: whether the token's
/// signature verifies with the certificate, PEM public key, JWK or JWK Set.
/// With a JWK Set, a key whose `kid` matches the header's is the only one
/// tried; otherwise every key whose `alg` is absent or equals the header's.
/// The header's `alg` is not compared with the function's.
fn verify_public(args: &[Value], check: Check) -> Answer {
    let token = Token::split(str_arg(args, 0)?)?;
    let keys = keys::verification_keys(str_arg(args, 1)?)?;
    let sig = token.signature()?;
    let header = Header::parse(&token.decoded_header()?)?;
    let msg = token.signing_input();
    if !header.kid.is_empty()
        && let Some(k) = keys.iter().find(|k| k.kid == header.kid)
    {
        return Ok(Value::from(check.verify(&k.key, &msg, &sig)));
    }
    let ok = keys
        .iter()
        .filter(|k| k.alg.is_empty() || k.alg == header.alg)
        .any(|k| check.verify(&k.key, &msg, &sig));
    Ok(Value::from(ok))
}

/// `io.jwt.verify_hs*(jwt, secret)`: whether the HMAC over the first two
/// sections under `secret` equals the signature (compared in constant
/// time). The header is not read.
fn verify_hs(args: &[Value], hash: Hash) -> Answer {
    let jwt = str_arg(args, 0)?;
    let secret = str_arg(args, 1)?;
    let token = Token::split(jwt)?;
    let mac = hash.hmac(secret.as_bytes(), &token.signing_input());
    let sig = token.signature()?;
    Ok(Value::from(bool::from(sig.ct_eq(&mac))))
}

/// `io.jwt.verify_hs256(jwt, secret)`.
fn verify_hs256(args: &[Value]) -> Answer {
    verify_hs(args, Hash::S256)
}
/// `io.jwt.verify_hs384(jwt, secret)`.
fn verify_hs384(args: &[Value]) -> Answer {
    verify_hs(args, Hash::S384)
}
/// `io.jwt.verify_hs512(jwt, secret)`.
fn verify_hs512(args: &[Value]) -> Answer {
    verify_hs(args, Hash::S512)
}
/// `io.jwt.verify_rs256(jwt, certificate)`: RSASSA-PKCS1-v1_5 with SHA-256.
fn verify_rs256(args: &[Value]) -> Answer {
    verify_public(args, Check::Rs(Hash::S256))
}
/// `io.jwt.verify_rs384(jwt, certificate)`: RSASSA-PKCS1-v1_5 with SHA-384.
fn verify_rs384(args: &[Value]) -> Answer {
    verify_public(args, Check::Rs(Hash::S384))
}
/// `io.jwt.verify_rs512(jwt, certificate)`: RSASSA-PKCS1-v1_5 with SHA-512.
fn verify_rs512(args: &[Value]) -> Answer {
    verify_public(args, Check::Rs(Hash::S512))
}
/// `io.jwt.verify_ps256(jwt, certificate)`: RSASSA-PSS with SHA-256.
fn verify_ps256(args: &[Value]) -> Answer {
    verify_public(args, Check::Ps(Hash::S256))
}
/// `io.jwt.verify_ps384(jwt, certificate)`: RSASSA-PSS with SHA-384.
fn verify_ps384(args: &[Value]) -> Answer {
    verify_public(args, Check::Ps(Hash::S384))
}
/// `io.jwt.verify_ps512(jwt, certificate)`: RSASSA-PSS with SHA-512.
fn verify_ps512(args: &[Value]) -> Answer {
    verify_public(args, Check::Ps(Hash::S512))
}
/// `io.jwt.verify_es256(jwt, certificate)`: ECDSA with SHA-256.
fn verify_es256(args: &[Value]) -> Answer {
    verify_public(args, Check::Es(Hash::S256))
}
/// `io.jwt.verify_es384(jwt, certificate)`: ECDSA with SHA-384.
fn verify_es384(args: &[Value]) -> Answer {
    verify_public(args, Check::Es(Hash::S384))
}
/// `io.jwt.verify_es512(jwt, certificate)`: ECDSA with SHA-512.
fn verify_es512(args: &[Value]) -> Answer {
    verify_public(args, Check::Es(Hash::S512))
}
/// `io.jwt.verify_eddsa(jwt, certificate)`: Ed25519.
fn verify_eddsa(args: &[Value]) -> Answer {
    verify_public(args, Check::EdDsa)
}

/// A signature check by the header's `alg`, as `io.jwt.decode_verify` does
/// it: the key must suit the algorithm, an ECDSA signature must be exactly
/// twice the curve's size.
fn verify_by_alg(key: &Key, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    let key = match key {
        Key::Private(public) => public.as_ref(),
        k => k,
    };
    match (alg_of(alg), key) {
        (Some(Alg::Hs(h)), Key::Secret(secret)) => bool::from(h.hmac(secret, msg).ct_eq(sig)),
        (Some(Alg::Rs(h)), Key::Rsa(k)) => rsa_pkcs1_ok(k, h, msg, sig),
        (Some(Alg::Ps(h)), Key::Rsa(k)) => rsa_pss_ok(k, h, msg, sig),
        (Some(Alg::Es(h)), k) => {
            let size = ec_size(k);
            size != 0 && sig.len() == 2 * size && ecdsa_ok(k, &h.digest(msg), sig)
        }
        (Some(Alg::EdDsa), k) => ed25519_ok(k, msg, sig),
        _ => false,
    }
}

/// The constraints object of `io.jwt.decode_verify`.
#[derive(Default)]
struct Constraints {
    keys: Option<Vec<VerificationKey>>,
    secret: String,
    alg: String,
    iss: String,
    aud: String,
    time: Option<f64>,
}

impl Constraints {
    fn parse(v: &Value) -> anyhow::Result<Self> {
        let Value::Object(fields) = v else {
            anyhow::bail!("operand 2 must be object");
        };
        let mut c = Constraints::default();
        for (k, v) in fields.iter() {
            match keys::value_str(k, "constraint name")? {
                "cert" => c.keys = Some(keys::verification_keys(keys::value_str(v, "cert constraint")?)?),
                "secret" => c.secret = keys::value_str(v, "secret constraint")?.to_string(),
                "alg" => c.alg = keys::value_str(v, "alg constraint")?.to_string(),
                "iss" => c.iss = keys::value_str(v, "iss constraint")?.to_string(),
                "aud" => c.aud = keys::value_str(v, "aud constraint")?.to_string(),
                "time" => c.time = Some(time_of(v)?),
                other => anyhow::bail!("unknown token validation constraint: {other}"),
            }
        }
        let key_constraints = usize::from(c.keys.is_some()) + usize::from(!c.secret.is_empty());
        if key_constraints > 1 {
            anyhow::bail!("duplicate key constraints");
        }
        if key_constraints < 1 {
            anyhow::bail!("no key constraint");
        }
        Ok(c)
    }

    fn verify(&self, kid: &str, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
        if let Some(keys) = &self.keys {
            if !kid.is_empty()
                && let Some(k) = keys.iter().find(|k| k.kid == kid)
            {
                return verify_by_alg(&k.key, alg, msg, sig);
            }
            return keys
                .iter()
                .filter(|k| k.alg.is_empty() || k.alg == alg)
                .any(|k| verify_by_alg(&k.key, alg, msg, sig));
        }
        verify_by_alg(&Key::Secret(self.secret.as_bytes().to_vec()), alg, msg, sig)
    }

    fn audience_ok(&self, aud: &Value) -> bool {
        match aud {
            Value::String(s) => s.as_ref() == self.aud,
            Value::Array(items) => items
                .iter()
                .any(|i| matches!(i, Value::String(s) if s.as_ref() == self.aud)),
            _ => false,
        }
    }
}

fn time_of(v: &Value) -> anyhow::Result<f64> {
    let t = number_f64(v, "token time constraint")?;
    if t < 0.0 {
        anyhow::bail!("token time constraint: must not be negative");
    }
    Ok(t)
}

/// The decision's time (captured with it, so a replay sees the same).
fn now_ns() -> f64 {
    crate::policy::compiled::evaluation_now_ns() as f64
}

/// A number as the nearest `f64` (integers beyond 2^53 included, as Go's
/// `big.Float.Float64` rounds them).
fn number_f64(v: &Value, what: &str) -> anyhow::Result<f64> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) => Ok(f),
            None => Ok(v.to_json_str()?.parse::<f64>()?),
        },
        _ => anyhow::bail!("{what}: must be a number"),
    }
}

/// `io.jwt.decode_verify(jwt, constraints)`: `[valid, header, payload]`.
///
/// `constraints` holds exactly one of `cert` (PEM certificate, PEM public
/// key, JWK or JWK Set) and `secret` (HMAC key), and optionally `alg`,
/// `iss`, `aud` and `time` (nanoseconds since the epoch; the wall clock
/// otherwise). `valid` is true when the signature verifies under the
/// header's `alg`, `alg`/`iss` match when constrained, the token's `aud`
/// (if any) contains the constrained `aud` (a token with an `aud` fails
/// when none is constrained), `time < exp` and `time >= nbf`; otherwise the
/// answer is `[false, {}, {}]`. Malformed tokens, unknown constraints and
/// non-numeric `exp`/`nbf` are builtin errors. Nested tokens (`cty: JWT`)
/// are verified layer by layer; the innermost header is returned.
fn decode_verify(args: &[Value]) -> Answer {
    let mut jwt = str_arg(args, 0)?.to_string();
    let constraints = Constraints::parse(args.get(1).unwrap_or(&Value::Undefined))?;
    let unverified = || {
        Ok(Value::from(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ]))
    };
    let mut depth = 0;
    let (header, payload) = loop {
        depth += 1;
        if depth > MAX_NESTING {
            anyhow::bail!("JWT nested too deeply");
        }
        let token = Token::split(&jwt)?;
        let header = token.decoded_header()?;
        let fields = Header::parse(&header)?;
        if !fields.valid() {
            return unverified();
        }
        if !constraints.alg.is_empty() && constraints.alg != fields.alg {
            return unverified();
        }
        let sig = token.signature()?;
        if !constraints.verify(&fields.kid, &fields.alg, &token.signing_input(), &sig) {
            return unverified();
        }
        let payload = b64url_decode(token.payload)?;
        if fields.cty.eq_ignore_ascii_case("JWT") {
            jwt = String::from_utf8_lossy(&payload).into_owned();
            continue;
        }
        break (header, json_object(&payload)?);
    };
    if !constraints.iss.is_empty() {
        match get(&payload, "iss") {
            Some(iss) => {
                if keys::value_str(iss, "iss")? != constraints.iss {
                    return unverified();
                }
            }
            None => return unverified(),
        }
    }
    match get(&payload, "aud") {
        Some(aud) => {
            if !constraints.audience_ok(aud) {
                return unverified();
            }
        }
        None => {
            if !constraints.aud.is_empty() {
                return unverified();
            }
        }
    }
    let now = constraints.time.unwrap_or_else(now_ns) / 1e9;
    if let Some(exp) = get(&payload, "exp")
        && now >= number_f64(exp, "exp value")?
    {
        return unverified();
    }
    if let Some(nbf) = get(&payload, "nbf")
        && now < number_f64(nbf, "nbf value")?
    {
        return unverified();
    }
    Ok(Value::from(vec![Value::from(true), header, payload]))
}

// ---- signing ----------------------------------------------------------

/// A random source for RSASSA-PSS salts, from the operating system.
struct OsRandom;

impl rand_core::RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A failing system random source leaves zeroes: the salt is then
        // predictable, which weakens nothing PSS relies on for security.
        let _ = getrandom::fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        getrandom::fill(dest).map_err(|e| {
            rand_core::Error::from(
                std::num::NonZeroU32::new(e.raw_os_error().unwrap_or(1).unsigned_abs().max(1))
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )
        })
    }
}

impl rand_core::CryptoRng for OsRandom {}

fn sign(jwk: &Jwk, alg: &str, msg: &[u8]) -> anyhow::Result<Vec<u8>> {
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    let Some(a) = alg_of(alg) else {
        anyhow::bail!("unknown JWS algorithm: {alg}");
    };
    let wrong = || anyhow::anyhow!("the key does not suit algorithm {alg}");
    Ok(match (a, &jwk.material) {
        (Alg::Hs(h), JwkMaterial::Oct(k)) => h.hmac(k, msg),
        (Alg::Rs(h), JwkMaterial::Rsa { private: Some(k), .. }) => k.sign(h.pkcs1(), &h.digest(msg))?,
        (Alg::Ps(h), JwkMaterial::Rsa { private: Some(k), .. }) => {
            k.sign_with_rng(&mut OsRandom, h.pss(h.len()), &h.digest(msg))?
        }
        // The curve is the key's and the hash the algorithm's, as in Go.
        (Alg::Es(h), JwkMaterial::P256(_, Some(k))) => {
            let s: p256::ecdsa::Signature = k.sign_prehash(&h.digest(msg))?;
            s.to_bytes().to_vec()
        }
        (Alg::Es(h), JwkMaterial::P384(_, Some(k))) => {
            let s: p384::ecdsa::Signature = k.sign_prehash(&h.digest(msg))?;
            s.to_bytes().to_vec()
        }
        (Alg::Es(h), JwkMaterial::P521(_, Some(k))) => {
            let s: p521::ecdsa::Signature = k.sign_prehash(&h.digest(msg))?;
            s.to_bytes().to_vec()
        }
        (Alg::EdDsa, JwkMaterial::Ed25519(_, Some(k))) => ed25519_dalek::Signer::sign(k, msg).to_bytes().to_vec(),
        _ => return Err(wrong()),
    })
}

/// Signs `payload` under `headers` with the first key of the JWK (Set)
/// `jwk`: `base64url(headers) "." base64url(payload) "." base64url(sig)`.
fn encode_sign_bytes(headers: &[u8], payload: &[u8], jwk: &str) -> Answer {
    let keys = keys::parse_jwk_set(jwk)?;
    let key = keys
        .first()
        .ok_or_else(|| anyhow::anyhow!("no keys found in JWK set"))?;
    let parsed: serde_json::Value = serde_json::from_slice(headers)?;
    let alg = parsed
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(|| anyhow::anyhow!("missing or invalid 'alg' header"))?;
    if !ALGORITHMS.contains(&alg) {
        anyhow::bail!("unknown JWS algorithm: {alg}");
    }
    let typ = parsed.get("typ").and_then(|t| t.as_str());
    if (typ.is_none() || typ == Some("JWT")) && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_err() {
        anyhow::bail!("type is JWT but payload is not JSON");
    }
    let input = format!("{}.{}", b64url_encode(headers), b64url_encode(payload));
    let sig = sign(key, alg, input.as_bytes())?;
    Ok(Value::from(format!("{input}.{}", b64url_encode(&sig))))
}

/// `io.jwt.encode_sign(headers, payload, key)`: a compact JWS of the
/// objects `headers` and `payload` (rendered as Go's JSON, keys sorted),
/// signed with the JWK `key` by the header's `alg`. HS* and RS* and EdDSA
/// tokens are deterministic; ES* and PS* signatures differ on each call.
fn encode_sign(args: &[Value]) -> Answer {
    let arg = |i: usize| gojson::to_go_json(args.get(i).unwrap_or(&Value::Undefined));
    let headers = arg(0)?;
    let payload = arg(1)?;
    let key = arg(2)?;
    encode_sign_bytes(headers.as_bytes(), payload.as_bytes(), &key)
}

/// `io.jwt.encode_sign_raw(headers, payload, key)`: as `encode_sign`, with
/// the header and payload JSON text and the JWK text signed as given.
fn encode_sign_raw(args: &[Value]) -> Answer {
    let headers = str_arg(args, 0)?;
    let payload = str_arg(args, 1)?;
    let key = str_arg(args, 2)?;
    encode_sign_bytes(headers.as_bytes(), payload.as_bytes(), key)
}

/// Whether `sig` over `tbs` verifies with `key` under the X.509 signature
/// algorithm `alg_oid`. SHA-1 and MD5 signatures are refused, as Go does.
pub(crate) fn verify_certificate_signature(key: &Key, alg_oid: &str, tbs: &[u8], sig: &[u8]) -> bool {
    let ecdsa_der = |h: Hash| -> bool {
        let digest = h.digest(tbs);
        use ecdsa_verify::PrehashVerifier as _;
        match key {
            Key::P256(k) => p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            Key::P384(k) => p384::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            Key::P521(k) => p521::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            _ => false,
        }
    };
    match (alg_oid, key) {
        ("1.2.840.113549.1.1.11", Key::Rsa(k)) => rsa_pkcs1_ok(k, Hash::S256, tbs, sig),
        ("1.2.840.113549.1.1.12", Key::Rsa(k)) => rsa_pkcs1_ok(k, Hash::S384, tbs, sig),
        ("1.2.840.113549.1.1.13", Key::Rsa(k)) => rsa_pkcs1_ok(k, Hash::S512, tbs, sig),
        ("1.2.840.10045.4.3.2", _) => ecdsa_der(Hash::S256),
        ("1.2.840.10045.4.3.3", _) => ecdsa_der(Hash::S384),
        ("1.2.840.10045.4.3.4", _) => ecdsa_der(Hash::S512),
        ("1.3.101.112", _) => ed25519_ok(key, tbs, sig),
        _ => false,
    }
}

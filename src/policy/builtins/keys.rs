//! Keys as OPA's JWT and X.509 builtins accept them: PEM blocks (read as
//! Go's `encoding/pem` reads them), SubjectPublicKeyInfo, certificates, and
//! JWKs or JWK Sets (RFC 7517).

use base64::Engine as _;
use regorus::Value;
use rsa::BigUint;
use rsa::traits::PublicKeyParts as _;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::spki::SubjectPublicKeyInfoRef;

/// RSA moduli longer than this are refused: the work of one operation grows
/// with the cube of the size.
pub(crate) const MAX_RSA_BITS: usize = 16384;

/// JWK Sets with more keys than this are refused.
const MAX_JWKS_KEYS: usize = 256;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// A PEM block: its type label and decoded body.
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Finds the first PEM block in `text` as Go's `pem.Decode` does (anything
/// before it is skipped) and returns it with the text after it.
pub(crate) fn pem_decode(text: &str) -> Option<(PemBlock, &str)> {
    let mut from = 0;
    loop {
        let start = from + text.get(from..)?.find("-----BEGIN ")?;
        from = start + 1;
        if start > 0 && !text[..start].ends_with('\n') {
            continue;
        }
        let after_begin = &text[start + 11..];
        let Some(label_end) = after_begin.find("-----") else {
            continue;
        };
        let label = &after_begin[..label_end];
        let line_rest = &after_begin[label_end + 5..];
        let body_start = match line_rest.find('\n') {
            Some(i) if line_rest[..i].trim().is_empty() => &line_rest[i + 1..],
            None if line_rest.trim().is_empty() => "",
            _ => continue,
        };
        let end_marker = format!("-----END {label}-----");
        let Some(end_at) = body_start.find(&end_marker) else {
            continue;
        };
        let body = &body_start[..end_at];
        // Headers ("Proc-Type: ...") end at the first blank line.
        let body = if body.lines().next().is_some_and(|l| l.contains(':')) {
            match body.find("\n\n") {
                Some(i) => &body[i + 2..],
                None => continue,
            }
        } else {
            body
        };
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) else {
            continue;
        };
        let mut rest = &body_start[end_at + end_marker.len()..];
        // The rest of the END line, up to and including its line break.
        let line_end = rest.find('\n').map(|i| i + 1).unwrap_or(rest.len());
        if rest[..line_end].trim().is_empty() {
            rest = &rest[line_end..];
        }
        return Some((
            PemBlock {
                label: label.to_string(),
                der,
            },
            rest,
        ));
    }
}

/// A public key, or what a JWK holds.
#[derive(Clone)]
pub(crate) enum Key {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    /// A symmetric key (a JWK of type "oct").
    Secret(Vec<u8>),
    /// A private JWK: its public half. Go's `jwk.Export` yields the private
    /// key, which OPA's `io.jwt.verify_*` reject as the wrong key type.
    Private(Box<Key>),
    /// A key type Warden does not verify with (e.g. X25519).
    Unsupported,
}

/// A key with the `alg` and `kid` its JWK named (empty otherwise).
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub key: Key,
    pub alg: String,
    pub kid: String,
}

fn big(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_be(bytes)
}

pub(crate) fn rsa_public(n: &[u8], e: &[u8]) -> anyhow::Result<rsa::RsaPublicKey> {
    let n = big(n);
    if n.bits() > MAX_RSA_BITS {
        anyhow::bail!("RSA key larger than {MAX_RSA_BITS} bits");
    }
    Ok(rsa::RsaPublicKey::new_with_max_size(n, big(e), MAX_RSA_BITS)?)
}

/// Parses a DER SubjectPublicKeyInfo (Go's `x509.ParsePKIXPublicKey`).
pub(crate) fn parse_spki(der: &[u8]) -> anyhow::Result<Key> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)?;
    spki_key(&spki)
}

pub(crate) fn spki_key(spki: &SubjectPublicKeyInfoRef<'_>) -> anyhow::Result<Key> {
    let oid = spki.algorithm.oid.to_string();
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| anyhow::anyhow!("public key bit string is not whole bytes"))?;
    match oid.as_str() {
        OID_RSA => {
            let k = rsa::pkcs1::RsaPublicKey::from_der(bits)?;
            Ok(Key::Rsa(rsa_public(
                k.modulus.as_bytes(),
                k.public_exponent.as_bytes(),
            )?))
        }
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|e| anyhow::anyhow!("EC parameters: {e}"))?
                .to_string();
            ec_point(&curve, bits)
        }
        OID_ED25519 => {
            let raw: [u8; 32] = bits
                .try_into()
                .map_err(|_| anyhow::anyhow!("Ed25519 key must be 32 bytes"))?;
            Ok(Key::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&raw)?))
        }
        _ => anyhow::bail!("unknown public key algorithm"),
    }
}

fn ec_point(curve_oid: &str, sec1: &[u8]) -> anyhow::Result<Key> {
    Ok(match curve_oid {
        OID_P256 => Key::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)?),
        OID_P384 => Key::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1)?),
        OID_P521 => Key::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(sec1)?),
        _ => anyhow::bail!("unsupported elliptic curve"),
    })
}

/// The public key of a DER certificate.
pub(crate) fn cert_key(der: &[u8]) -> anyhow::Result<Key> {
    let cert = x509_cert::Certificate::from_der(der)?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    parse_spki(&spki)
}

/// The keys in `text` as OPA's JWT verification reads them: a PEM
/// certificate, a PEM public key, a JWK or a JWK Set. A PEM block must be
/// the whole text; JWK Set members whose `alg` OPA does not know are skipped.
pub(crate) fn verification_keys(text: &str) -> anyhow::Result<Vec<VerificationKey>> {
    if let Some((block, rest)) = pem_decode(text) {
        if !rest.is_empty() {
            anyhow::bail!("extra data after a PEM certificate block");
        }
        let key = match block.label.as_str() {
            "CERTIFICATE" => cert_key(&block.der)?,
            "PUBLIC KEY" => parse_spki(&block.der)?,
            _ => anyhow::bail!("failed to extract a Key from the PEM certificate"),
        };
        return Ok(vec![VerificationKey {
            key,
            alg: String::new(),
            kid: String::new(),
        }]);
    }
    let mut keys = Vec::new();
    for jwk in parse_jwk_set(text)? {
        let alg = jwk.alg.clone();
        if !alg.is_empty() && !super::jwt::ALGORITHMS.contains(&alg.as_str()) {
            continue;
        }
        keys.push(VerificationKey {
            key: jwk.public_key()?,
            alg,
            kid: jwk.kid.clone(),
        });
    }
    Ok(keys)
}

/// One parsed JWK.
pub(crate) struct Jwk {
    pub alg: String,
    pub kid: String,
    pub material: JwkMaterial,
}

pub(crate) enum JwkMaterial {
    Rsa {
        public: rsa::RsaPublicKey,
        private: Option<Box<rsa::RsaPrivateKey>>,
    },
    P256(p256::ecdsa::VerifyingKey, Option<p256::ecdsa::SigningKey>),
    P384(p384::ecdsa::VerifyingKey, Option<p384::ecdsa::SigningKey>),
    P521(p521::ecdsa::VerifyingKey, Option<p521::ecdsa::SigningKey>),
    Ed25519(ed25519_dalek::VerifyingKey, Option<ed25519_dalek::SigningKey>),
    Oct(Vec<u8>),
    Unsupported,
}

impl Jwk {
    fn public_key(&self) -> anyhow::Result<Key> {
        let (public, private) = match &self.material {
            JwkMaterial::Rsa { public, private } => (Key::Rsa(public.clone()), private.is_some()),
            JwkMaterial::P256(v, s) => (Key::P256(*v), s.is_some()),
            JwkMaterial::P384(v, s) => (Key::P384(*v), s.is_some()),
            JwkMaterial::P521(v, s) => (Key::P521(v.clone()), s.is_some()),
            JwkMaterial::Ed25519(v, s) => (Key::Ed25519(*v), s.is_some()),
            JwkMaterial::Oct(k) => (Key::Secret(k.clone()), false),
            JwkMaterial::Unsupported => (Key::Unsupported, false),
        };
        Ok(if private {
            Key::Private(Box::new(public))
        } else {
            public
        })
    }
}

/// Decodes a JWK member: base64url, padded or not (standard-alphabet
/// characters accepted too).
fn jwk_b64(obj: &serde_json::Map<String, serde_json::Value>, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = obj
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("JWK member {name:?} missing"))?;
    jwk_b64_str(s)
}

fn jwk_b64_opt(obj: &serde_json::Map<String, serde_json::Value>, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(_) => jwk_b64(obj, name).map(Some),
    }
}

pub(crate) fn jwk_b64_str(s: &str) -> anyhow::Result<Vec<u8>> {
    let cleaned: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    Ok(engine.decode(cleaned.as_bytes())?)
}

fn fixed<const N: usize>(bytes: &[u8]) -> anyhow::Result<[u8; N]> {
    // Coordinates may come shorter than the field; pad them on the left.
    if bytes.len() > N {
        anyhow::bail!("JWK coordinate too long");
    }
    let mut out = [0u8; N];
    out[N - bytes.len()..].copy_from_slice(bytes);
    Ok(out)
}

fn ec_sec1(x: &[u8], y: &[u8], size: usize) -> anyhow::Result<Vec<u8>> {
    if x.len() > size || y.len() > size {
        anyhow::bail!("JWK coordinate too long");
    }
    let mut out = vec![4u8];
    out.extend(std::iter::repeat_n(0, size - x.len()));
    out.extend_from_slice(x);
    out.extend(std::iter::repeat_n(0, size - y.len()));
    out.extend_from_slice(y);
    Ok(out)
}

/// Parses one JWK object.
fn parse_jwk(obj: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<Jwk> {
    let text = |name: &str| -> anyhow::Result<String> {
        match obj.get(name) {
            None => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => anyhow::bail!("JWK member {name:?} must be a string"),
        }
    };
    let alg = text("alg")?;
    let kid = text("kid")?;
    let kty = text("kty")?;
    let material = match kty.as_str() {
        "RSA" => {
            let n = jwk_b64(obj, "n")?;
            let e = jwk_b64(obj, "e")?;
            let public = rsa_public(&n, &e)?;
            let private = match jwk_b64_opt(obj, "d")? {
                None => None,
                Some(d) => {
                    if d.len() > n.len() {
                        anyhow::bail!("RSA private exponent longer than the modulus");
                    }
                    let mut primes = Vec::new();
                    if let (Some(p), Some(q)) = (jwk_b64_opt(obj, "p")?, jwk_b64_opt(obj, "q")?) {
                        primes = vec![big(&p), big(&q)];
                    }
                    let key =
                        rsa::RsaPrivateKey::from_components(public.n().clone(), public.e().clone(), big(&d), primes)?;
                    Some(Box::new(key))
                }
            };
            JwkMaterial::Rsa { public, private }
        }
        "EC" => {
            let crv = text("crv")?;
            let x = jwk_b64(obj, "x")?;
            let y = jwk_b64(obj, "y")?;
            let d = jwk_b64_opt(obj, "d")?;
            match crv.as_str() {
                "P-256" => {
                    let v = p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec_sec1(&x, &y, 32)?)?;
                    let s = match d {
                        Some(d) => Some(p256::ecdsa::SigningKey::from_slice(&fixed::<32>(&d)?)?),
                        None => None,
                    };
                    JwkMaterial::P256(v, s)
                }
                "P-384" => {
                    let v = p384::ecdsa::VerifyingKey::from_sec1_bytes(&ec_sec1(&x, &y, 48)?)?;
                    let s = match d {
                        Some(d) => Some(p384::ecdsa::SigningKey::from_slice(&fixed::<48>(&d)?)?),
                        None => None,
                    };
                    JwkMaterial::P384(v, s)
                }
                "P-521" => {
                    let v = p521::ecdsa::VerifyingKey::from_sec1_bytes(&ec_sec1(&x, &y, 66)?)?;
                    let s = match d {
                        Some(d) => Some(p521::ecdsa::SigningKey::from_slice(&fixed::<66>(&d)?)?),
                        None => None,
                    };
                    JwkMaterial::P521(v, s)
                }
                _ => anyhow::bail!("unsupported curve {crv:?}"),
            }
        }
        "OKP" => {
            let crv = text("crv")?;
            let x = jwk_b64(obj, "x")?;
            match crv.as_str() {
                "Ed25519" => {
                    let v = ed25519_dalek::VerifyingKey::from_bytes(&fixed_exact::<32>(&x)?)?;
                    let s = match jwk_b64_opt(obj, "d")? {
                        Some(d) => Some(ed25519_dalek::SigningKey::from_bytes(&fixed_exact::<32>(&d)?)),
                        None => None,
                    };
                    JwkMaterial::Ed25519(v, s)
                }
                "X25519" => JwkMaterial::Unsupported,
                _ => anyhow::bail!("unsupported curve {crv:?}"),
            }
        }
        "oct" => JwkMaterial::Oct(jwk_b64(obj, "k")?),
        _ => anyhow::bail!("unsupported key type {kty:?}"),
    };
    Ok(Jwk { alg, kid, material })
}

fn fixed_exact<const N: usize>(bytes: &[u8]) -> anyhow::Result<[u8; N]> {
    bytes.try_into().map_err(|_| anyhow::anyhow!("key must be {N} bytes"))
}

/// Parses a JWK or a JWK Set (an object with `keys`).
pub(crate) fn parse_jwk_set(text: &str) -> anyhow::Result<Vec<Jwk>> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("a JWK must be a JSON object"))?;
    match obj.get("keys") {
        Some(serde_json::Value::Array(keys)) => {
            if keys.len() > MAX_JWKS_KEYS {
                anyhow::bail!("too many keys in the JWK Set");
            }
            keys.iter()
                .map(|k| {
                    k.as_object()
                        .ok_or_else(|| anyhow::anyhow!("a JWK must be a JSON object"))
                        .and_then(parse_jwk)
                })
                .collect()
        }
        Some(_) => anyhow::bail!("JWK Set \"keys\" must be an array"),
        None => Ok(vec![parse_jwk(obj)?]),
    }
}

/// A value's string, or an error naming what it should be.
pub(crate) fn value_str<'a>(v: &'a Value, what: &str) -> anyhow::Result<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        _ => anyhow::bail!("{what} must be a string"),
    }
}

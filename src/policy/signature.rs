//! OPA bundle signatures: verification and creation of `.signatures.json`.
//!
//! The format and the checks follow OPA's bundle signing ("Signing" in the bundle
//! management docs, and `bundle/verify.go`, `bundle/hash.go`, `bundle/sign.go` in OPA):
//!
//! * `.signatures.json` is `{"signatures": ["<compact JWS>"]}` with exactly one token.
//! * The JWS header carries `alg` and optionally `kid`; the payload carries
//!   `files: [{name, hash, algorithm}]` and optionally `keyid` (deprecated) and `scope`.
//! * The key is chosen by the header `kid`, else the payload `keyid`; when the token names
//!   no key and exactly one key is configured, that key is used (OPA's configured key id).
//! * The payload `scope` must equal the key's scope (an absent scope equals an empty one).
//! * Every bundle file except `.signatures.json` must be listed with a matching hash, and
//!   every listed file must be present in the bundle.
//! * File names are bundle paths without a leading `/` (`data.json`, `authz/policy.rego`).
//! * A file is hashed over its raw bytes, except files whose base name is `data.json`,
//!   `data.yaml`, `.manifest` or `signatures.json`: those are parsed as JSON and hashed
//!   over OPA's canonical encoding (object keys sorted byte-wise, no whitespace, strings
//!   escaped as Go's `encoding/json` does without HTML escaping, numbers kept exactly as
//!   written in the source).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// Name of the signatures file inside a bundle.
pub const SIGNATURES_FILE: &str = ".signatures.json";

/// Hash algorithm written by [`sign`] and used by [`file_hash`].
pub const DEFAULT_HASH_ALGORITHM: &str = "SHA-256";

/// Smallest RSA modulus accepted for signing or verification.
pub const MIN_RSA_BITS: usize = 2048;

/// Deepest JSON nesting accepted in a structured bundle file (the limit of Go's decoder).
const MAX_JSON_DEPTH: usize = 10_000;

/// Message signed and verified once when a key is registered, to prove it is usable.
const PROBE_MESSAGE: &[u8] = b"warden key probe";

/// A JWS algorithm usable for bundle signatures.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 signatures.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::RS256, Algorithm::ES256];

    /// The JWS `alg` name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
        }
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| SignatureError::UnsupportedAlgorithm { name: s.to_owned() })
    }
}

/// Why a bundle signature could not be verified or produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// `.signatures.json` or its JWT cannot be used as it is.
    #[error("malformed bundle signature: {0}")]
    Malformed(String),
    /// The token names a key that is not configured.
    #[error(
        "bundle is signed with key id {kid:?}, which is not a configured verification key; configure that key or re-sign the bundle with a configured one"
    )]
    UnknownKey { kid: String },
    /// The token names no key and the configured keys do not single one out.
    #[error(
        "bundle signature names no key id (no \"kid\" header and no \"keyid\" claim) and {configured} verification keys are configured; configure exactly one key or sign the bundle with a key id"
    )]
    NoKeyId { configured: usize },
    /// The cryptographic check failed.
    #[error(
        "bundle signature does not verify with key {key_id:?}; the bundle was signed with another key or the signature was altered"
    )]
    Invalid { key_id: String },
    /// A bundle file differs from the signed hash.
    #[error(
        "bundle file {name:?} does not match its signed hash; it changed after signing, so restore it or re-sign the bundle"
    )]
    FileMismatch { name: String },
    /// Files listed in the signature are absent from the bundle.
    #[error(
        "signed file(s) missing from the bundle: {}; add them back or re-sign the bundle",
        quoted_list(.names)
    )]
    FileMissing { names: Vec<String> },
    /// A bundle file is not covered by the signature.
    #[error("bundle file {name:?} is not covered by the signature; remove it or re-sign the bundle with it")]
    FileUnsigned { name: String },
    /// The same path appears twice in the bundle.
    #[error("bundle file {name:?} appears more than once; keep a single copy of it")]
    FileDuplicate { name: String },
    /// A structured bundle file (`data.json`, `.manifest`, ...) cannot be parsed.
    #[error("bundle file {name:?} cannot be hashed: {reason}")]
    FileInvalid { name: String, reason: String },
    /// The token's scope differs from the scope configured for its key.
    #[error(
        "bundle signature scope {} does not match scope {} of key {key_id:?}; re-sign with the key's scope or change the key's scope",
        scope_text(.found),
        scope_text(.expected)
    )]
    ScopeMismatch {
        key_id: String,
        expected: Option<String>,
        found: Option<String>,
    },
    /// A configured key cannot be used.
    #[error("key {key_id:?} is invalid: {reason}")]
    KeyInvalid { key_id: String, reason: String },
    /// An algorithm name that bundle signatures do not support.
    #[error("unsupported signature algorithm {name:?}; use one of EdDSA, RS256, ES256")]
    UnsupportedAlgorithm { name: String },
    /// The signing operation itself failed.
    #[error("signing with key {key_id:?} failed: {reason}")]
    SigningFailed { key_id: String, reason: String },
}

impl SignatureError {
    /// A stable snake-case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::UnknownKey { .. } | SignatureError::NoKeyId { .. } => "signature_unknown_key",
            SignatureError::Invalid { .. } => "signature_invalid",
            SignatureError::FileMismatch { .. } => "signature_file_mismatch",
            SignatureError::FileMissing { .. } => "signature_file_missing",
            SignatureError::FileUnsigned { .. } => "signature_file_unsigned",
            SignatureError::FileDuplicate { .. } => "signature_file_duplicate",
            SignatureError::FileInvalid { .. } => "signature_file_invalid",
            SignatureError::ScopeMismatch { .. } => "signature_scope_mismatch",
            SignatureError::KeyInvalid { .. } => "key_invalid",
            SignatureError::UnsupportedAlgorithm { .. } => "algorithm_unsupported",
            SignatureError::SigningFailed { .. } => "signing_failed",
        }
    }

    fn malformed(message: impl Into<String>) -> Self {
        SignatureError::Malformed(message.into())
    }

    fn key_invalid(key_id: &str, reason: impl Into<String>) -> Self {
        SignatureError::KeyInvalid {
            key_id: key_id.to_owned(),
            reason: reason.into(),
        }
    }
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scope_text(scope: &Option<String>) -> String {
    match scope.as_deref() {
        None | Some("") => "(none)".to_owned(),
        Some(scope) => format!("{scope:?}"),
    }
}

/// A public key that bundle signatures may be verified with.
#[derive(Clone)]
pub struct VerificationKey {
    /// The key id that tokens name in `kid` (or the deprecated `keyid` claim).
    pub key_id: String,
    /// The only algorithm accepted for this key.
    pub algorithm: Algorithm,
    /// The PEM text the key was built from.
    pub public_pem: String,
    /// The scope a token must carry; `None` requires a token without scope.
    pub scope: Option<String>,
    parsed_algorithm: Algorithm,
    decoding: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Parses a PEM public key (`BEGIN PUBLIC KEY`, or `BEGIN RSA PUBLIC KEY` for RS256)
    /// for `algorithm`. A key that does not fit the algorithm is refused here.
    pub fn new(
        key_id: &str,
        algorithm: Algorithm,
        public_pem: &str,
        scope: Option<&str>,
    ) -> Result<Self, SignatureError> {
        check_key_id(key_id)?;
        let label = pem_label(public_pem).ok_or_else(|| {
            SignatureError::key_invalid(key_id, "not a pem document; expected \"-----BEGIN PUBLIC KEY-----\"")
        })?;
        let rsa_pkcs1 = algorithm == Algorithm::RS256 && label == "RSA PUBLIC KEY";
        if label != "PUBLIC KEY" && !rsa_pkcs1 {
            let reason = if label.contains("PRIVATE KEY") {
                "this is a private key; configure the public key instead (openssl pkey -in key.pem -pubout)".to_owned()
            } else {
                format!("unsupported pem type {label:?}; expected \"PUBLIC KEY\"")
            };
            return Err(SignatureError::key_invalid(key_id, reason));
        }
        let pem = public_pem.as_bytes();
        let decoding = match algorithm {
            Algorithm::EdDSA => {
                let key = DecodingKey::from_ed_pem(pem)
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an ed25519 public key"))?;
                let raw_len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
                if raw_len != 32 {
                    return Err(SignatureError::key_invalid(
                        key_id,
                        "not an ed25519 public key (expected 32 key bytes)",
                    ));
                }
                probe_verification_key(key_id, &key, algorithm, "not a valid ed25519 public key")?;
                key
            }
            Algorithm::ES256 => {
                let key = DecodingKey::from_ec_pem(pem)
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an ec public key"))?;
                probe_verification_key(
                    key_id,
                    &key,
                    algorithm,
                    "not a p-256 public key; ES256 needs a prime256v1 key",
                )?;
                key
            }
            Algorithm::RS256 => {
                let key = DecodingKey::from_rsa_pem(pem)
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an rsa public key"))?;
                let der = key
                    .try_get_as_bytes()
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an rsa public key"))?;
                let public = rsa::RsaPublicKey::from_pkcs1_der(der).map_err(|err| {
                    SignatureError::key_invalid(key_id, format!("not a usable rsa public key: {err}"))
                })?;
                check_rsa_bits(key_id, public.n().bits())?;
                key
            }
        };
        Ok(VerificationKey {
            key_id: key_id.to_owned(),
            algorithm,
            public_pem: public_pem.to_owned(),
            scope: scope.filter(|s| !s.is_empty()).map(str::to_owned),
            parsed_algorithm: algorithm,
            decoding,
        })
    }
}

/// A private key that bundles are signed with.
#[derive(Clone)]
pub struct SigningKey {
    key_id: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PEM private key for `algorithm`: PKCS#8 (`BEGIN PRIVATE KEY`) for every
    /// algorithm, `BEGIN RSA PRIVATE KEY` for RS256 and `BEGIN EC PRIVATE KEY` for ES256.
    pub fn from_pem(key_id: &str, algorithm: Algorithm, private_pem: &str) -> Result<Self, SignatureError> {
        check_key_id(key_id)?;
        let label = pem_label(private_pem).ok_or_else(|| {
            SignatureError::key_invalid(key_id, "not a pem document; expected \"-----BEGIN PRIVATE KEY-----\"")
        })?;
        let accepted = match algorithm {
            Algorithm::EdDSA => label == "PRIVATE KEY",
            Algorithm::RS256 => label == "PRIVATE KEY" || label == "RSA PRIVATE KEY",
            Algorithm::ES256 => label == "PRIVATE KEY" || label == "EC PRIVATE KEY",
        };
        if !accepted {
            let reason = if label == "ENCRYPTED PRIVATE KEY" {
                "encrypted private keys are not supported; decrypt it first (openssl pkey -in key.pem -out plain.pem)"
                    .to_owned()
            } else if label.contains("PUBLIC KEY") {
                "this is a public key; signing needs the private key".to_owned()
            } else {
                format!("unsupported pem type {label:?} for {algorithm}; expected \"PRIVATE KEY\"")
            };
            return Err(SignatureError::key_invalid(key_id, reason));
        }
        let pem = private_pem.as_bytes();
        let encoding = match algorithm {
            Algorithm::EdDSA => {
                let key = EncodingKey::from_ed_pem(pem)
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an ed25519 private key"))?;
                jsonwebtoken::crypto::sign(PROBE_MESSAGE, &key, algorithm.jwt())
                    .map_err(|_| SignatureError::key_invalid(key_id, "not a usable ed25519 private key"))?;
                key
            }
            Algorithm::ES256 => {
                let block = pem_block(private_pem, label).unwrap_or(private_pem);
                let secret = if label == "EC PRIVATE KEY" {
                    p256::SecretKey::from_sec1_pem(block).ok()
                } else {
                    p256::SecretKey::from_pkcs8_pem(block).ok()
                }
                .ok_or_else(|| {
                    SignatureError::key_invalid(key_id, "not a p-256 private key; ES256 needs a prime256v1 key")
                })?;
                let der = secret
                    .to_pkcs8_der()
                    .map_err(|err| SignatureError::key_invalid(key_id, format!("cannot encode the ec key: {err}")))?;
                EncodingKey::from_ec_der(der.as_bytes())
            }
            Algorithm::RS256 => {
                let key = EncodingKey::from_rsa_pem(pem)
                    .map_err(|_| SignatureError::key_invalid(key_id, "not an rsa private key"))?;
                let private = rsa::RsaPrivateKey::from_pkcs1_der(key.as_bytes()).map_err(|err| {
                    SignatureError::key_invalid(key_id, format!("not a usable rsa private key: {err}"))
                })?;
                private.validate().map_err(|err| {
                    SignatureError::key_invalid(key_id, format!("inconsistent rsa private key: {err}"))
                })?;
                check_rsa_bits(key_id, private.n().bits())?;
                key
            }
        };
        Ok(SigningKey {
            key_id: key_id.to_owned(),
            algorithm,
            encoding,
        })
    }

    /// The key id written into the token's `kid` header and `keyid` claim.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn check_key_id(key_id: &str) -> Result<(), SignatureError> {
    if key_id.is_empty() {
        return Err(SignatureError::key_invalid(
            key_id,
            "the key id is empty; give the key a name",
        ));
    }
    Ok(())
}

fn check_rsa_bits(key_id: &str, bits: usize) -> Result<(), SignatureError> {
    if bits < MIN_RSA_BITS {
        return Err(SignatureError::key_invalid(
            key_id,
            format!("the rsa key has {bits} bits; use at least {MIN_RSA_BITS}"),
        ));
    }
    Ok(())
}

/// Runs one verification with a dummy signature: it fails only when the key itself is unusable.
fn probe_verification_key(
    key_id: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
    reason: &str,
) -> Result<(), SignatureError> {
    let dummy = URL_SAFE_NO_PAD.encode([0u8; 64]);
    jsonwebtoken::crypto::verify(&dummy, PROBE_MESSAGE, key, algorithm.jwt())
        .map(|_| ())
        .map_err(|_| SignatureError::key_invalid(key_id, reason))
}

/// The label of the first PEM block holding a key (`PUBLIC KEY`, `RSA PRIVATE KEY`, ...);
/// an `EC PARAMETERS` block, as `openssl ecparam -genkey` writes first, is skipped.
fn pem_label(pem: &str) -> Option<&str> {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = pem;
    loop {
        let start = rest.find(BEGIN)? + BEGIN.len();
        rest = rest.get(start..)?;
        let end = rest.find("-----")?;
        let label = rest.get(..end)?;
        if label != "EC PARAMETERS" {
            return Some(label);
        }
    }
}

/// The text of the first PEM block with this label, from its BEGIN line to its END line.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = start + pem.get(start..)?.find(&end)? + end.len();
    pem.get(start..stop)
}

/// The signature checked by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedSignature {
    /// The key that verified the token.
    pub key_id: String,
    /// The token's algorithm.
    pub algorithm: Algorithm,
    /// The token's scope, if any.
    pub scope: Option<String>,
    /// How many bundle files were checked against the signature.
    pub files: usize,
}

#[derive(Deserialize)]
struct SignaturesDocument {
    #[serde(default)]
    signatures: Option<Vec<String>>,
    #[serde(default)]
    plugin: Option<String>,
}

#[derive(Deserialize)]
struct TokenPayload {
    #[serde(default)]
    files: Option<Vec<SignedFile>>,
    #[serde(default)]
    keyid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct SignedFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
}

#[derive(Serialize)]
struct TokenHeaderOut<'a> {
    alg: &'a str,
    kid: &'a str,
}

#[derive(Serialize)]
struct TokenPayloadOut<'a> {
    files: Vec<SignedFileOut<'a>>,
    keyid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

#[derive(Serialize)]
struct SignedFileOut<'a> {
    name: &'a str,
    hash: String,
    algorithm: &'static str,
}

#[derive(Serialize)]
struct SignaturesDocumentOut<'a> {
    signatures: [&'a str; 1],
}

/// Verifies a bundle's `.signatures.json` against its files.
///
/// `files`: every file of the bundle except `.signatures.json`, with the path as it appears
/// in the tar with any leading "/" and "./" removed (e.g. ".manifest", "data.json",
/// "authz/policy.rego").
pub fn verify(
    signatures_json: &[u8],
    files: &[(String, Vec<u8>)],
    keys: &[VerificationKey],
) -> Result<VerifiedSignature, SignatureError> {
    let token = single_token(signatures_json)?;
    let jws = CompactJws::parse(&token)?;

    let named = jws
        .kid
        .as_deref()
        .filter(|kid| !kid.is_empty())
        .or_else(|| jws.payload.keyid.as_deref().filter(|kid| !kid.is_empty()));
    let key = match named {
        Some(kid) => keys
            .iter()
            .find(|key| key.key_id == kid)
            .ok_or_else(|| SignatureError::UnknownKey { kid: kid.to_owned() })?,
        None => match keys {
            [only] => only,
            _ => {
                return Err(SignatureError::NoKeyId { configured: keys.len() });
            }
        },
    };

    if key.algorithm != key.parsed_algorithm {
        return Err(SignatureError::key_invalid(
            &key.key_id,
            format!(
                "the key was parsed for {} but is now marked {}; register it again",
                key.parsed_algorithm, key.algorithm
            ),
        ));
    }
    if jws.alg != key.algorithm.as_str() {
        return Err(SignatureError::malformed(format!(
            "the token is signed with alg {:?} but key {:?} is configured for {}; sign with {} or fix the key's algorithm",
            jws.alg, key.key_id, key.algorithm, key.algorithm
        )));
    }
    let valid = jsonwebtoken::crypto::verify(
        jws.signature,
        jws.signing_input.as_bytes(),
        &key.decoding,
        key.algorithm.jwt(),
    )
    .unwrap_or(false);
    if !valid {
        return Err(SignatureError::Invalid {
            key_id: key.key_id.clone(),
        });
    }

    let expected_scope = key.scope.as_deref().unwrap_or("");
    let found_scope = jws.payload.scope.as_deref().unwrap_or("");
    if expected_scope != found_scope {
        return Err(SignatureError::ScopeMismatch {
            key_id: key.key_id.clone(),
            expected: Some(expected_scope.to_owned()).filter(|s| !s.is_empty()),
            found: Some(found_scope.to_owned()).filter(|s| !s.is_empty()),
        });
    }

    let mut signed: HashMap<&str, &SignedFile> = HashMap::new();
    for entry in jws.payload.files.iter().flatten() {
        signed.insert(entry.name.as_deref().unwrap_or(""), entry);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut checked = 0usize;
    for (raw_name, bytes) in files {
        let name = bundle_path(raw_name);
        if name == SIGNATURES_FILE {
            continue;
        }
        let Some(entry) = signed.remove(name) else {
            return Err(if seen.contains(name) {
                SignatureError::FileDuplicate { name: name.to_owned() }
            } else {
                SignatureError::FileUnsigned { name: name.to_owned() }
            });
        };
        seen.insert(name);
        check_file(name, bytes, entry)?;
        checked += 1;
    }
    if !signed.is_empty() {
        let mut names: Vec<String> = signed.into_keys().map(str::to_owned).collect();
        names.sort();
        return Err(SignatureError::FileMissing { names });
    }

    Ok(VerifiedSignature {
        key_id: key.key_id.clone(),
        algorithm: key.algorithm,
        scope: Some(found_scope.to_owned()).filter(|s| !s.is_empty()),
        files: checked,
    })
}

fn check_file(name: &str, bytes: &[u8], entry: &SignedFile) -> Result<(), SignatureError> {
    let algorithm = entry.algorithm.as_deref().unwrap_or("");
    if algorithm.is_empty() {
        return Err(SignatureError::malformed(format!(
            "the signed entry for {name:?} has no hash algorithm"
        )));
    }
    let hash = HashAlgorithm::from_name(algorithm).ok_or_else(|| {
        SignatureError::malformed(format!(
            "{name:?} is signed with hash algorithm {algorithm:?}, which is not supported; re-sign with {DEFAULT_HASH_ALGORITHM}"
        ))
    })?;
    let expected = hex::decode(entry.hash.as_deref().unwrap_or(""))
        .map_err(|_| SignatureError::malformed(format!("the signed hash of {name:?} is not hexadecimal")))?;
    let actual = hash.digest(&hash_input(name, bytes)?);
    if expected != actual {
        return Err(SignatureError::FileMismatch { name: name.to_owned() });
    }
    Ok(())
}

/// Produces the bytes of a `.signatures.json` that `opa run --verification-key` /
/// `opa build --verification-key` accepts for these files.
pub fn sign(files: &[(String, Vec<u8>)], key: &SigningKey, scope: Option<&str>) -> Result<Vec<u8>, SignatureError> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut entries = Vec::with_capacity(files.len());
    for (raw_name, bytes) in files {
        let name = bundle_path(raw_name);
        if name == SIGNATURES_FILE {
            continue;
        }
        if name.is_empty() {
            return Err(SignatureError::FileInvalid {
                name: raw_name.clone(),
                reason: "the file name is empty".to_owned(),
            });
        }
        if !seen.insert(name) {
            return Err(SignatureError::FileDuplicate { name: name.to_owned() });
        }
        entries.push(SignedFileOut {
            name,
            hash: file_hash(name, bytes)?,
            algorithm: DEFAULT_HASH_ALGORITHM,
        });
    }

    let failed = |reason: String| SignatureError::SigningFailed {
        key_id: key.key_id.clone(),
        reason,
    };
    let header = serde_json::to_vec(&TokenHeaderOut {
        alg: key.algorithm.as_str(),
        kid: &key.key_id,
    })
    .map_err(|err| failed(err.to_string()))?;
    let payload = serde_json::to_vec(&TokenPayloadOut {
        files: entries,
        keyid: &key.key_id,
        scope: scope.filter(|s| !s.is_empty()),
    })
    .map_err(|err| failed(err.to_string()))?;
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key.encoding, key.algorithm.jwt())
        .map_err(|err| failed(err.to_string()))?;
    let token = format!("{signing_input}.{signature}");

    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    SignaturesDocumentOut { signatures: [&token] }
        .serialize(&mut serializer)
        .map_err(|err| failed(err.to_string()))?;
    Ok(out)
}

/// OPA's file hash (hex sha-256) for one file, canonicalising JSON files as OPA does.
pub fn file_hash(name: &str, bytes: &[u8]) -> Result<String, SignatureError> {
    let name = bundle_path(name);
    Ok(hex::encode(HashAlgorithm::Sha256.digest(&hash_input(name, bytes)?)))
}

/// Whether OPA hashes this file over its parsed JSON value rather than its bytes.
pub fn is_structured_file(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    matches!(base, "data.json" | "data.yaml" | "signatures.json" | ".manifest")
}

/// A bundle path as OPA names it in signatures: without leading "/" or "./".
fn bundle_path(name: &str) -> &str {
    let mut name = name;
    loop {
        if let Some(rest) = name.strip_prefix('/') {
            name = rest;
        } else if let Some(rest) = name.strip_prefix("./") {
            name = rest;
        } else {
            return name;
        }
    }
}

/// The bytes OPA feeds to the hash function for this file.
fn hash_input<'a>(name: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, SignatureError> {
    if !is_structured_file(name) {
        return Ok(Cow::Borrowed(bytes));
    }
    canonical_json(bytes).map(Cow::Owned).map_err(|reason| {
        let reason = if name.ends_with("data.yaml") {
            format!("it is not json ({reason}); yaml data files cannot be verified here, ship the data as data.json")
        } else {
            format!("it is not valid json ({reason}); fix the file and re-sign the bundle")
        };
        SignatureError::FileInvalid {
            name: name.to_owned(),
            reason,
        }
    })
}

#[derive(Clone, Copy)]
enum HashAlgorithm {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
}

impl HashAlgorithm {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "SHA-224" => HashAlgorithm::Sha224,
            "SHA-256" => HashAlgorithm::Sha256,
            "SHA-384" => HashAlgorithm::Sha384,
            "SHA-512" => HashAlgorithm::Sha512,
            "SHA-512-224" => HashAlgorithm::Sha512_224,
            "SHA-512-256" => HashAlgorithm::Sha512_256,
            _ => return None,
        })
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha224 => sha2::Sha224::digest(bytes).to_vec(),
            HashAlgorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(bytes).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
            HashAlgorithm::Sha512_224 => sha2::Sha512_224::digest(bytes).to_vec(),
            HashAlgorithm::Sha512_256 => sha2::Sha512_256::digest(bytes).to_vec(),
        }
    }
}

fn single_token(signatures_json: &[u8]) -> Result<String, SignatureError> {
    let value: serde_json::Value = serde_json::from_slice(signatures_json)
        .map_err(|err| SignatureError::malformed(format!(".signatures.json is not valid json: {err}")))?;
    if !value.is_object() {
        return Err(SignatureError::malformed(
            ".signatures.json must be a json object with a \"signatures\" array",
        ));
    }
    let doc: SignaturesDocument = serde_json::from_value(value).map_err(|err| {
        SignatureError::malformed(format!(
            ".signatures.json must hold {{\"signatures\": [\"<jwt>\"]}}: {err}"
        ))
    })?;
    if let Some(plugin) = doc.plugin.as_deref().filter(|p| !p.is_empty()) {
        return Err(SignatureError::malformed(format!(
            "signature plugin {plugin:?} is not supported; sign the bundle with the default signer"
        )));
    }
    let mut signatures = doc.signatures.unwrap_or_default();
    match signatures.len() {
        1 => Ok(signatures.remove(0)),
        0 => Err(SignatureError::malformed(
            ".signatures.json holds no jwt; expected exactly one",
        )),
        n => Err(SignatureError::malformed(format!(
            ".signatures.json holds {n} jwts; multiple signatures are not supported, expected exactly one"
        ))),
    }
}

struct CompactJws<'a> {
    alg: String,
    kid: Option<String>,
    payload: TokenPayload,
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> CompactJws<'a> {
    fn parse(token: &'a str) -> Result<Self, SignatureError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SignatureError::malformed(
                "the signature is not a compact jws; expected three dot-separated parts",
            ));
        };
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or_else(|| SignatureError::malformed("the jwt cannot be split"))?;

        let header = decode_json_object("header", header_b64)?;
        if header.contains_key("crit") {
            return Err(SignatureError::malformed(
                "the jwt header lists critical extensions (\"crit\"), which are not supported",
            ));
        }
        let alg = match header.get("alg") {
            Some(serde_json::Value::String(alg)) => alg.clone(),
            Some(_) => {
                return Err(SignatureError::malformed("the jwt header \"alg\" must be a string"));
            }
            None => return Err(SignatureError::malformed("the jwt header has no \"alg\"")),
        };
        let kid = match header.get("kid") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(kid)) => Some(kid.clone()),
            Some(_) => {
                return Err(SignatureError::malformed("the jwt header \"kid\" must be a string"));
            }
        };

        let payload = decode_json_object("payload", payload_b64)?;
        let payload: TokenPayload = serde_json::from_value(serde_json::Value::Object(payload))
            .map_err(|err| SignatureError::malformed(format!("the jwt payload has an unexpected shape: {err}")))?;

        let signature_bytes = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SignatureError::malformed("the jwt signature is not unpadded base64url"))?;
        if signature_bytes.is_empty() {
            return Err(SignatureError::malformed(
                "the jwt has no signature; unsigned tokens are not accepted",
            ));
        }

        Ok(CompactJws {
            alg,
            kid,
            payload,
            signing_input,
            signature,
        })
    }
}

fn decode_json_object(part: &str, encoded: &str) -> Result<serde_json::Map<String, serde_json::Value>, SignatureError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| SignatureError::malformed(format!("the jwt {part} is not unpadded base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(SignatureError::malformed(format!(
            "the jwt {part} is not a json object"
        ))),
        Err(err) => Err(SignatureError::malformed(format!(
            "the jwt {part} is not valid json: {err}"
        ))),
    }
}

/// OPA's canonical encoding of a JSON document: the value as Go's decoder reads it (numbers
/// kept verbatim, invalid UTF-8 and unpaired surrogates replaced by U+FFFD, the last of
/// duplicate keys winning), written with sorted object keys, no whitespace and Go's string
/// escaping without HTML escapes. A UTF-8 byte order mark is ignored.
fn canonical_json(input: &[u8]) -> Result<Vec<u8>, String> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let (nodes, root) = JsonParser::new(input).parse()?;
    let mut out = Vec::with_capacity(input.len());
    write_canonical(&nodes, root, &mut out);
    Ok(out)
}

enum JsonNode {
    /// A scalar, already in its canonical encoding.
    Leaf(Vec<u8>),
    Array(Vec<usize>),
    Object(BTreeMap<String, usize>),
}

enum OpenContainer {
    Array(Vec<usize>),
    Object(BTreeMap<String, usize>, String),
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
    nodes: Vec<JsonNode>,
}

impl<'a> JsonParser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        JsonParser {
            bytes,
            pos: 0,
            nodes: Vec::new(),
        }
    }

    /// Parses the whole input without recursion; returns the node arena and the root index.
    fn parse(mut self) -> Result<(Vec<JsonNode>, usize), String> {
        let mut stack: Vec<OpenContainer> = Vec::new();
        'value: loop {
            self.skip_whitespace();
            let mut done = match self.peek() {
                Some(b'{') => {
                    Self::check_depth(&stack)?;
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.eat(b'}') {
                        self.push(JsonNode::Object(BTreeMap::new()))
                    } else {
                        let key = self.member_key()?;
                        stack.push(OpenContainer::Object(BTreeMap::new(), key));
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    Self::check_depth(&stack)?;
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.eat(b']') {
                        self.push(JsonNode::Array(Vec::new()))
                    } else {
                        stack.push(OpenContainer::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    let text = self.string()?;
                    let mut encoded = Vec::with_capacity(text.len() + 2);
                    encode_go_string(&text, &mut encoded);
                    self.push(JsonNode::Leaf(encoded))
                }
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(other) => return Err(self.unexpected(other, "looking for a value")),
                None => return Err("unexpected end of input".to_owned()),
            };

            loop {
                match stack.last_mut() {
                    None => {
                        self.skip_whitespace();
                        if let Some(other) = self.peek() {
                            return Err(self.unexpected(other, "after the top-level value"));
                        }
                        return Ok((self.nodes, done));
                    }
                    Some(OpenContainer::Array(items)) => {
                        items.push(done);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => self.pos += 1,
                            Some(other) => {
                                return Err(self.unexpected(other, "after an array element"));
                            }
                            None => return Err("unexpected end of input in an array".to_owned()),
                        }
                    }
                    Some(OpenContainer::Object(members, key)) => {
                        members.insert(std::mem::take(key), done);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_whitespace();
                                *key = self.member_key()?;
                                continue 'value;
                            }
                            Some(b'}') => self.pos += 1,
                            Some(other) => {
                                return Err(self.unexpected(other, "after an object member"));
                            }
                            None => return Err("unexpected end of input in an object".to_owned()),
                        }
                    }
                }
                done = match stack.pop() {
                    Some(OpenContainer::Array(items)) => self.push(JsonNode::Array(items)),
                    Some(OpenContainer::Object(members, _)) => self.push(JsonNode::Object(members)),
                    None => return Err("unbalanced json".to_owned()),
                };
            }
        }
    }

    fn check_depth(stack: &[OpenContainer]) -> Result<(), String> {
        if stack.len() >= MAX_JSON_DEPTH {
            return Err(format!("nesting deeper than {MAX_JSON_DEPTH} levels"));
        }
        Ok(())
    }

    fn push(&mut self, node: JsonNode) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, byte: u8, context: &str) -> String {
        format!(
            "unexpected character {:?} at byte {} {context}",
            char::from(byte),
            self.pos
        )
    }

    fn member_key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(b'"') => {}
            Some(other) => return Err(self.unexpected(other, "looking for an object key")),
            None => return Err("unexpected end of input in an object".to_owned()),
        }
        let key = self.string()?;
        self.skip_whitespace();
        match self.peek() {
            Some(b':') => {
                self.pos += 1;
                Ok(key)
            }
            Some(other) => Err(self.unexpected(other, "after an object key")),
            None => Err("unexpected end of input in an object".to_owned()),
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<usize, String> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) != Some(word.as_bytes()) {
            return Err(format!("invalid literal at byte {}", self.pos));
        }
        self.pos = end;
        Ok(self.push(JsonNode::Leaf(word.as_bytes().to_vec())))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<usize, String> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(format!("invalid number at byte {start}")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(format!("invalid number at byte {start}"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(format!("invalid number at byte {start}"));
            }
        }
        let text = self.bytes.get(start..self.pos).unwrap_or_default().to_vec();
        Ok(self.push(JsonNode::Leaf(text)))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// Reads a string starting at its opening quote, decoding it as Go's decoder does.
    fn string(&mut self) -> Result<String, String> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            push_utf8_lossy_per_byte(&mut out, self.bytes.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(format!("unterminated string starting at byte {open}")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = self.bytes.get(self.pos + 1).copied();
                    let simple = match escape {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        _ => None,
                    };
                    if let Some(ch) = simple {
                        out.push(ch);
                        self.pos += 2;
                        continue;
                    }
                    if escape != Some(b'u') {
                        return Err(format!("invalid escape in string at byte {}", self.pos));
                    }
                    let unit = self
                        .hex4(self.pos + 2)
                        .ok_or_else(|| format!("invalid \\u escape at byte {}", self.pos))?;
                    self.pos += 6;
                    if (0xD800..0xE000).contains(&unit) {
                        let low = if self.bytes.get(self.pos) == Some(&b'\\')
                            && self.bytes.get(self.pos + 1) == Some(&b'u')
                        {
                            self.hex4(self.pos + 2)
                        } else {
                            None
                        };
                        match low {
                            Some(low) if unit < 0xDC00 && (0xDC00..0xE000).contains(&low) => {
                                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                                self.pos += 6;
                            }
                            _ => out.push(char::REPLACEMENT_CHARACTER),
                        }
                    } else {
                        out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                }
                Some(_) => {
                    return Err(format!("control character in string at byte {}", self.pos));
                }
            }
        }
    }
}

/// Appends bytes as UTF-8, replacing every byte that does not start a valid sequence with
/// U+FFFD (Go's rule, which differs from `String::from_utf8_lossy` on truncated sequences).
fn push_utf8_lossy_per_byte(out: &mut String, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                return;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = rest.get(1..).unwrap_or_default();
            }
        }
    }
}

/// Writes a string as Go's `encoding/json` does with HTML escaping off.
fn encode_go_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 => {
                let b = c as usize;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[b >> 4]);
                out.push(HEX[b & 0xF]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Writes the canonical encoding of the tree without recursion.
fn write_canonical(nodes: &[JsonNode], root: usize, out: &mut Vec<u8>) {
    enum Step<'n> {
        Node(usize),
        Raw(&'static [u8]),
        Key(&'n str),
    }
    let mut steps = vec![Step::Node(root)];
    while let Some(step) = steps.pop() {
        match step {
            Step::Raw(bytes) => out.extend_from_slice(bytes),
            Step::Key(key) => {
                encode_go_string(key, out);
                out.push(b':');
            }
            Step::Node(index) => match nodes.get(index) {
                Some(JsonNode::Leaf(bytes)) => out.extend_from_slice(bytes),
                Some(JsonNode::Array(items)) => {
                    out.push(b'[');
                    steps.push(Step::Raw(b"]"));
                    for (i, item) in items.iter().enumerate().rev() {
                        steps.push(Step::Node(*item));
                        if i > 0 {
                            steps.push(Step::Raw(b","));
                        }
                    }
                }
                Some(JsonNode::Object(members)) => {
                    out.push(b'{');
                    steps.push(Step::Raw(b"}"));
                    for (i, (key, value)) in members.iter().enumerate().rev() {
                        steps.push(Step::Node(*value));
                        steps.push(Step::Key(key));
                        if i > 0 {
                            steps.push(Step::Raw(b","));
                        }
                    }
                }
                None => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEzcyr8vNGioVUvW2JTVkpwI9rLdnp/hKu1TAmWthxfO
-----END PRIVATE KEY-----
";
    const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEACOMUWGe74gBcV1yRshz1g29p7/N3g7WnCLOQsvipJqw=
-----END PUBLIC KEY-----
";
    /// The public half of a second, unrelated Ed25519 key.
    const ED_OTHER_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA0TqSzWnrUeOlOBqvuOlgxaAroMtYa3qDWrAgldA+lkM=
-----END PUBLIC KEY-----
";
    const RSA_PRIVATE_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCUcGPmaqQzknCa
Mwc5qt6wQtq7UkuDHLKW6iH22DnO7gs4DcOpoP5Gjz+FFZ1rpB/yma54u+hBaADj
QQwvvxzsneZan03A953h9zEpI3B+6HaXG3FQFEJEQ9rAr4GFxJ8wScSqQZqrOV7/
nSe7MG4i6ejvzvt2hGOYJzNMOtvOtN4cv+a0Q706fGtm0+w7gpqiJCYsXLLU0GGg
wdmVueZtNDD5vAML98FIat+SNCIY2QGU7rmewOsCfhvM4plUkC7O30lNPQ/kn+ph
GtpuLWaQuVJc1zUZDFY22IZuZSCm15L5uUOifCqit1kjY8tF3RZcZd30tZ3DDNgE
auXgj9gvAgMBAAECggEABQaHe1LIKGIG1rgJJvypkwVQa0ZUyov7YXyfyPNDhPjH
zHTUcQPDi0poqu4AAsrvTsL0bNLMmppI0JwJ+GJCBzv5UCW6Kvq3KUiGYFwtmaS8
W+iD8TAeZjoRFLQpPTwnUsOZZiI+eEzC8jVOr3NRgNqzSWf6jExDJIplnc97hzrI
yHnuoSE33AeEnjmV7m9O40SSLbrVbuag/bj7RcwII7MPzlZec+zE5S+PGfWo2F2L
l3hiP3kPi5CYDtwzu4FfvDSHmyiqAna/i9turRFHs9Gtb+v+LHqXSQlsg3PCZqP0
z5NjVyKLeqyeFxIMdv54D1ygrbG2t0qDmvJ9ItrcMQKBgQDFopBubwrvUaryYbgc
7S9fT1M9fDgX2b8/irYOjfVJ4x7UjygwRGCPpxmWCn2Jw9brj1C8Xxog/pVzzDd9
yevqvMue7a4Ifkubq39Ksz8AfY2HMBqhgp/BjXLiT1IX8WClLh8wdKEgH6MrG5rt
Bav81F6YCup4fIHEddOjnYWVVQKBgQDARo1aGoDqp/Scfl7ByAVcWOyeBu28bLrX
1ashVdf0w91MYQEElsKepOk6xWv33KWyT43SnyAkKx8FA4u/sEP9dj2ACuLvaNOL
d3e7m7z5cmf32Vx6nJD5l0UoDvt3v5ObGbZxxk5NPoiH4FsJPEy3BLIHBLNUmlmj
MfRtoJa3cwKBgQCnkn8EJAMRiB16BoElhbZ1Cb16lKi7EFWoeuSC0rr4OysY74kT
4+Y752M6ZQqslPDWKl46Wii9cR8nYDBs55ixIANGbiDx8qQJChCUNgdlUw99YLwz
1Z2/bz/Jw5fH1VIsvD6Vx04W/rxLAM0Ly5NYfHj4Uckc//THr2ATiqyJQQKBgQC/
Ep2Pp/zqtCOSjMZPnh0tqzTgyZPhBtAagrxAMVWdaDL3nwJq9ALNsqYPgHcN5phG
/WW7o+RF7RAzZFWxFVJLhAATyT3BmpN26i7zIg4Gedm15KxRMFulnNzdtR3S32+o
10GGCQJxIq59EMiHAgReb+0WqmYnsgdX9OGpO8fq3wKBgFA8o3C0vW1VgME9K2Sh
rgceWq1YmH3ovbxFo2aQaqwRLPbw62+ncS1lBsSgO8uw2HS51ly/jIeqK0n++Qfv
6iG8qfeZSQWfgB/no0WUphbmasa39P5jf/R2y+gHidMOQqAxX5RiaRUKvcB8e1U1
6T4cbHttHX5/ufv3OZwNdqGt
-----END PRIVATE KEY-----
";
    /// The same RSA key in PKCS#1 form (`openssl rsa -traditional`).
    const RSA_PRIVATE_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAlHBj5mqkM5JwmjMHOaresELau1JLgxyyluoh9tg5zu4LOA3D
qaD+Ro8/hRWda6Qf8pmueLvoQWgA40EML78c7J3mWp9NwPed4fcxKSNwfuh2lxtx
UBRCREPawK+BhcSfMEnEqkGaqzle/50nuzBuIuno7877doRjmCczTDrbzrTeHL/m
tEO9OnxrZtPsO4KaoiQmLFyy1NBhoMHZlbnmbTQw+bwDC/fBSGrfkjQiGNkBlO65
nsDrAn4bzOKZVJAuzt9JTT0P5J/qYRrabi1mkLlSXNc1GQxWNtiGbmUgpteS+blD
onwqordZI2PLRd0WXGXd9LWdwwzYBGrl4I/YLwIDAQABAoIBAAUGh3tSyChiBta4
CSb8qZMFUGtGVMqL+2F8n8jzQ4T4x8x01HEDw4tKaKruAALK707C9GzSzJqaSNCc
CfhiQgc7+VAluir6tylIhmBcLZmkvFvog/EwHmY6ERS0KT08J1LDmWYiPnhMwvI1
Tq9zUYDas0ln+oxMQySKZZ3Pe4c6yMh57qEhN9wHhJ45le5vTuNEki261W7moP24
+0XMCCOzD85WXnPsxOUvjxn1qNhdi5d4Yj95D4uQmA7cM7uBX7w0h5soqgJ2v4vb
bq0RR7PRrW/r/ix6l0kJbINzwmaj9M+TY1cii3qsnhcSDHb+eA9coK2xtrdKg5ry
fSLa3DECgYEAxaKQbm8K71Gq8mG4HO0vX09TPXw4F9m/P4q2Do31SeMe1I8oMERg
j6cZlgp9icPW649QvF8aIP6Vc8w3fcnr6rzLnu2uCH5Lm6t/SrM/AH2NhzAaoYKf
wY1y4k9SF/FgpS4fMHShIB+jKxua7QWr/NRemArqeHyBxHXTo52FlVUCgYEAwEaN
WhqA6qf0nH5ewcgFXFjsngbtvGy619WrIVXX9MPdTGEBBJbCnqTpOsVr99ylsk+N
0p8gJCsfBQOLv7BD/XY9gAri72jTi3d3u5u8+XJn99lcepyQ+ZdFKA77d7+Tmxm2
ccZOTT6Ih+BbCTxMtwSyBwSzVJpZozH0baCWt3MCgYEAp5J/BCQDEYgdegaBJYW2
dQm9epSouxBVqHrkgtK6+DsrGO+JE+PmO+djOmUKrJTw1ipeOloovXEfJ2AwbOeY
sSADRm4g8fKkCQoQlDYHZVMPfWC8M9Wdv28/ycOXx9VSLLw+lcdOFv68SwDNC8uT
WHx4+FHJHP/0x69gE4qsiUECgYEAvxKdj6f86rQjkozGT54dLas04MmT4QbQGoK8
QDFVnWgy958CavQCzbKmD4B3DeaYRv1lu6PkRe0QM2RVsRVSS4QAE8k9wZqTduou
8yIOBnnZteSsUTBbpZzc3bUd0t9vqNdBhgkCcSKufRDIhwIEXm/tFqpmJ7IHV/Th
qTvH6t8CgYBQPKNwtL1tVYDBPStkoa4HHlqtWJh96L28RaNmkGqsESz28Otvp3Et
ZQbEoDvLsNh0udZcv4yHqitJ/vkH7+ohvKn3mUkFn4Af56NFlKYW5mrGt/T+Y3/0
dsvoB4nTDkKgMV+UYmkVCr3AfHtVNek+HGx7bR1+f7n79zmcDXahrQ==
-----END RSA PRIVATE KEY-----
";
    const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlHBj5mqkM5JwmjMHOare
sELau1JLgxyyluoh9tg5zu4LOA3DqaD+Ro8/hRWda6Qf8pmueLvoQWgA40EML78c
7J3mWp9NwPed4fcxKSNwfuh2lxtxUBRCREPawK+BhcSfMEnEqkGaqzle/50nuzBu
Iuno7877doRjmCczTDrbzrTeHL/mtEO9OnxrZtPsO4KaoiQmLFyy1NBhoMHZlbnm
bTQw+bwDC/fBSGrfkjQiGNkBlO65nsDrAn4bzOKZVJAuzt9JTT0P5J/qYRrabi1m
kLlSXNc1GQxWNtiGbmUgpteS+blDonwqordZI2PLRd0WXGXd9LWdwwzYBGrl4I/Y
LwIDAQAB
-----END PUBLIC KEY-----
";
    /// The same RSA public key in PKCS#1 form (`openssl rsa -RSAPublicKey_out`).
    const RSA_PUBLIC_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAlHBj5mqkM5JwmjMHOaresELau1JLgxyyluoh9tg5zu4LOA3DqaD+
Ro8/hRWda6Qf8pmueLvoQWgA40EML78c7J3mWp9NwPed4fcxKSNwfuh2lxtxUBRC
REPawK+BhcSfMEnEqkGaqzle/50nuzBuIuno7877doRjmCczTDrbzrTeHL/mtEO9
OnxrZtPsO4KaoiQmLFyy1NBhoMHZlbnmbTQw+bwDC/fBSGrfkjQiGNkBlO65nsDr
An4bzOKZVJAuzt9JTT0P5J/qYRrabi1mkLlSXNc1GQxWNtiGbmUgpteS+blDonwq
ordZI2PLRd0WXGXd9LWdwwzYBGrl4I/YLwIDAQAB
-----END RSA PUBLIC KEY-----
";
    const EC_PRIVATE_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgP49P4ECvPKr1/oZv
vEqwHt35MJM09zbJ/7K9NJlgRCChRANCAATJgWrnxch3dwVmWDWc7YYBFmurE0qC
0wvHC0wQQ23NbmGA5ClvqNL8tsmhMkn2jf7jZPeMEOWsXEewEoNDzwKL
-----END PRIVATE KEY-----
";
    /// The same P-256 key as SEC1, preceded by the parameters block `openssl ecparam` writes.
    const EC_PRIVATE_SEC1: &str = "-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEID+PT+BArzyq9f6Gb7xKsB7d+TCTNPc2yf+yvTSZYEQgoAoGCCqGSM49
AwEHoUQDQgAEyYFq58XId3cFZlg1nO2GARZrqxNKgtMLxwtMEENtzW5hgOQpb6jS
/LbJoTJJ9o3+42T3jBDlrFxHsBKDQ88Ciw==
-----END EC PRIVATE KEY-----
";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyYFq58XId3cFZlg1nO2GARZrqxNK
gtMLxwtMEENtzW5hgOQpb6jS/LbJoTJJ9o3+42T3jBDlrFxHsBKDQ88Ciw==
-----END PUBLIC KEY-----
";
    const EC384_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAWAa1TUQru0CBUPlrh
b7//pcbVcZ5lzB64DAsvoJiTpWN/BvBgf7WcYa9oiOWR2cOhZANiAASH42dEehEE
Djv9sHibBq9wIYKB1imy1i6mhmrIaewssQDIK9Q/4DSoaYtT5+OCHuUNNdZCqHHE
2MJjNEmcVBcBtTPxRAxlLi4V1qvzMePrfcf1OBAWoG51qwDA6KaNnEI=
-----END PRIVATE KEY-----
";
    const EC384_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEh+NnRHoRBA47/bB4mwavcCGCgdYpstYu
poZqyGnsLLEAyCvUP+A0qGmLU+fjgh7lDTXWQqhxxNjCYzRJnFQXAbUz8UQMZS4u
Fdar8zHj633H9TgQFqBudasAwOimjZxC
-----END PUBLIC KEY-----
";

    /// `printf '%s' '{"a":1,"b":[true,null]}' | sha256sum`
    const SHA256_A1_B_TRUE_NULL: &str = "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a4c814c7e0e7f942f8668";
    /// `printf '%s' '{"k":"<&>\u2028\t\u0001é/","n":-0.0e+10}' | sha256sum`
    const SHA256_ESCAPES: &str = "b77585aef1d3bdde2489e4af177ab075a522eb1f40e59a99d801a742ec330d7a";

    fn file(name: &str, content: &str) -> (String, Vec<u8>) {
        (name.to_owned(), content.as_bytes().to_vec())
    }

    fn bundle() -> Vec<(String, Vec<u8>)> {
        vec![
            file(".manifest", r#"{"revision":"v7","roots":["authz"]}"#),
            file("authz/policy.rego", "package authz\n\ndefault allow := false\n"),
            file(
                "authz/data.json",
                r#"{ "roles": {"admin": ["alice"]} , "limit": 1.50 }"#,
            ),
        ]
    }

    fn signer(alg: Algorithm) -> SigningKey {
        let pem = match alg {
            Algorithm::EdDSA => ED_PRIVATE,
            Algorithm::RS256 => RSA_PRIVATE_PKCS8,
            Algorithm::ES256 => EC_PRIVATE_PKCS8,
        };
        SigningKey::from_pem("k1", alg, pem).expect("signing key")
    }

    fn verifier(alg: Algorithm, scope: Option<&str>) -> VerificationKey {
        let pem = match alg {
            Algorithm::EdDSA => ED_PUBLIC,
            Algorithm::RS256 => RSA_PUBLIC,
            Algorithm::ES256 => EC_PUBLIC,
        };
        VerificationKey::new("k1", alg, pem, scope).expect("verification key")
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn signatures_doc(token: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "signatures": [token] })).expect("json")
    }

    fn token_of(signatures_json: &[u8]) -> String {
        let doc: serde_json::Value = serde_json::from_slice(signatures_json).expect("json");
        doc["signatures"][0].as_str().expect("token").to_owned()
    }

    fn decoded_payload(signatures_json: &[u8]) -> serde_json::Value {
        let token = token_of(signatures_json);
        let payload = token.split('.').nth(1).expect("payload");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
    }

    /// Signs arbitrary header and payload JSON text with a key, bypassing [`sign`].
    fn hand_signed(header: &str, payload: &str, key: &SigningKey) -> Vec<u8> {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, key.algorithm.jwt()).expect("sign");
        signatures_doc(&format!("{input}.{sig}"))
    }

    #[test]
    fn round_trip_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let sigs = sign(&bundle(), &signer(alg), None).expect("sign");
            let verified = verify(&sigs, &bundle(), &[verifier(alg, None)]).expect("verify");
            assert_eq!(
                verified,
                VerifiedSignature {
                    key_id: "k1".into(),
                    algorithm: alg,
                    scope: None,
                    files: 3,
                }
            );
        }
    }

    #[test]
    fn alternative_pem_forms_interoperate() {
        let rsa = SigningKey::from_pem("k1", Algorithm::RS256, RSA_PRIVATE_PKCS1).expect("pkcs1");
        let rsa_pub = VerificationKey::new("k1", Algorithm::RS256, RSA_PUBLIC_PKCS1, None).expect("pkcs1 public");
        let sigs = sign(&bundle(), &rsa, None).expect("sign");
        verify(&sigs, &bundle(), &[rsa_pub]).expect("pkcs1 round trip");

        let ec = SigningKey::from_pem("k1", Algorithm::ES256, EC_PRIVATE_SEC1).expect("sec1");
        let sigs = sign(&bundle(), &ec, None).expect("sign");
        verify(&sigs, &bundle(), &[verifier(Algorithm::ES256, None)]).expect("sec1 round trip");
    }

    #[test]
    fn sign_writes_what_opa_writes() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), Some("write")).expect("sign");
        let text = String::from_utf8(sigs.clone()).expect("utf8");
        assert!(text.starts_with("{\n \"signatures\": [\n  \"ey"), "{text}");
        assert!(text.ends_with("\"\n ]\n}"), "{text}");

        let token = token_of(&sigs);
        let header_b64 = token.split('.').next().expect("header");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).expect("b64")).expect("json");
        assert_eq!(header, serde_json::json!({"alg": "EdDSA", "kid": "k1"}));

        let payload = decoded_payload(&sigs);
        assert_eq!(payload["keyid"], "k1");
        assert_eq!(payload["scope"], "write");
        assert_eq!(
            payload["files"],
            serde_json::json!([
                {"name": ".manifest", "hash": "1f155f8de6480795a099980ecb966910493121ade37b18d97d53f834631f383e", "algorithm": "SHA-256"},
                {"name": "authz/policy.rego", "hash": "284cf8f3a3b4995be32213d6dcbab17dd5d0ea4863e8bb3b02d598e5fc23d131", "algorithm": "SHA-256"},
                {"name": "authz/data.json", "hash": "d722dee61b38334d0d7e323b0bd3b3d333756902c5c860a2cce8d17478b181c2", "algorithm": "SHA-256"}
            ])
        );
    }

    #[test]
    fn leading_slash_and_dot_slash_are_not_part_of_signed_names() {
        let tar_names = vec![
            file("/.manifest", r#"{"revision":"v7","roots":["authz"]}"#),
            file("./authz/policy.rego", "package authz\n\ndefault allow := false\n"),
            file(
                "/authz/data.json",
                r#"{ "roles": {"admin": ["alice"]} , "limit": 1.50 }"#,
            ),
        ];
        let sigs = sign(&tar_names, &signer(Algorithm::EdDSA), None).expect("sign");
        let names: Vec<String> = decoded_payload(&sigs)["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(names, [".manifest", "authz/policy.rego", "authz/data.json"]);
        verify(&sigs, &bundle(), &[verifier(Algorithm::EdDSA, None)]).expect("verify");
    }

    #[test]
    fn tampered_file_is_named() {
        let sigs = sign(&bundle(), &signer(Algorithm::RS256), None).expect("sign");
        let mut files = bundle();
        files[1].1 = b"package authz\n\ndefault allow := true\n".to_vec();
        let err = verify(&sigs, &files, &[verifier(Algorithm::RS256, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_file_mismatch");
        assert_eq!(
            err,
            SignatureError::FileMismatch {
                name: "authz/policy.rego".into()
            }
        );
        assert!(err.to_string().contains("\"authz/policy.rego\""), "{err}");

        let mut files = bundle();
        files[2].1 = br#"{"roles": {"admin": ["alice", "mallory"]}, "limit": 1.50}"#.to_vec();
        let err = verify(&sigs, &files, &[verifier(Algorithm::RS256, None)]).unwrap_err();
        assert_eq!(
            err,
            SignatureError::FileMismatch {
                name: "authz/data.json".into()
            }
        );
    }

    #[test]
    fn reformatted_data_json_still_verifies() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let mut files = bundle();
        files[2].1 = b"{\n  \"limit\": 1.50,\n  \"roles\": {\n    \"admin\": [\"alice\"]\n  }\n}\n".to_vec();
        verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).expect("same json value");
    }

    #[test]
    fn extra_file_is_unsigned() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let mut files = bundle();
        files.push(file("authz/backdoor.rego", "package authz\n\nallow := true\n"));
        let err = verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_file_unsigned");
        assert!(err.to_string().contains("\"authz/backdoor.rego\""), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let files = vec![bundle().remove(1)];
        let err = verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_file_missing");
        assert_eq!(
            err,
            SignatureError::FileMissing {
                names: vec![".manifest".into(), "authz/data.json".into()]
            }
        );
        assert!(err.to_string().contains("\".manifest\", \"authz/data.json\""), "{err}");
    }

    #[test]
    fn duplicate_bundle_file_is_refused() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let mut files = bundle();
        files.push(files[1].clone());
        let err = verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_file_duplicate");
        let err = sign(&files, &signer(Algorithm::EdDSA), None).unwrap_err();
        assert_eq!(err.code(), "signature_file_duplicate");
    }

    #[test]
    fn signatures_file_among_files_is_ignored() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let mut files = bundle();
        files.push((SIGNATURES_FILE.to_owned(), sigs.clone()));
        let resigned = sign(&files, &signer(Algorithm::EdDSA), None).expect("sign");
        assert_eq!(decoded_payload(&resigned)["files"].as_array().map(Vec::len), Some(3));
        verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).expect("verify");
    }

    #[test]
    fn wrong_key_material_is_invalid() {
        let sigs = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let other = VerificationKey::new("k1", Algorithm::EdDSA, ED_OTHER_PUBLIC, None).expect("key");
        let err = verify(&sigs, &bundle(), &[other]).unwrap_err();
        assert_eq!(err.code(), "signature_invalid");
        assert_eq!(err, SignatureError::Invalid { key_id: "k1".into() });
    }

    #[test]
    fn altered_payload_is_invalid() {
        let sigs = sign(&bundle(), &signer(Algorithm::ES256), None).expect("sign");
        let token = token_of(&sigs);
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = decoded_payload(&sigs);
        payload["files"][1]["hash"] = serde_json::json!(
            file_hash("authz/policy.rego", b"package authz\n\ndefault allow := true\n").expect("hash")
        );
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&payload).expect("json")),
            parts[2]
        );
        let err = verify(&signatures_doc(&forged), &bundle(), &[verifier(Algorithm::ES256, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_invalid");
    }

    #[test]
    fn unknown_kid_is_named() {
        let key = SigningKey::from_pem("release-2024", Algorithm::EdDSA, ED_PRIVATE).expect("key");
        let sigs = sign(&bundle(), &key, None).expect("sign");
        let err = verify(&sigs, &bundle(), &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_unknown_key");
        assert!(err.to_string().contains("\"release-2024\""), "{err}");
    }

    #[test]
    fn key_is_picked_by_kid_among_several() {
        let keys = [
            VerificationKey::new("ed", Algorithm::EdDSA, ED_PUBLIC, None).expect("ed"),
            VerificationKey::new("rsa", Algorithm::RS256, RSA_PUBLIC, None).expect("rsa"),
            VerificationKey::new("ec", Algorithm::ES256, EC_PUBLIC, None).expect("ec"),
        ];
        let key = SigningKey::from_pem("ec", Algorithm::ES256, EC_PRIVATE_PKCS8).expect("key");
        let sigs = sign(&bundle(), &key, None).expect("sign");
        let verified = verify(&sigs, &bundle(), &keys).expect("verify");
        assert_eq!(verified.key_id, "ec");
        assert_eq!(verified.algorithm, Algorithm::ES256);
    }

    #[test]
    fn header_alg_must_match_the_key_algorithm() {
        let sigs = sign(&bundle(), &signer(Algorithm::RS256), None).expect("sign");
        let err = verify(&sigs, &bundle(), &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_malformed");
        assert!(err.to_string().contains("\"RS256\""), "{err}");

        let header = r#"{"alg":"none","kid":"k1"}"#;
        let payload = r#"{"files":[]}"#;
        let unsigned = signatures_doc(&format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes())));
        let err = verify(&unsigned, &[], &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_malformed");
    }

    #[test]
    fn scope_must_match_the_key_scope() {
        let signed_write = sign(&bundle(), &signer(Algorithm::EdDSA), Some("write")).expect("sign");
        let verified =
            verify(&signed_write, &bundle(), &[verifier(Algorithm::EdDSA, Some("write"))]).expect("same scope");
        assert_eq!(verified.scope.as_deref(), Some("write"));

        let err = verify(&signed_write, &bundle(), &[verifier(Algorithm::EdDSA, Some("read"))]).unwrap_err();
        assert_eq!(err.code(), "signature_scope_mismatch");
        assert!(err.to_string().contains("\"write\"") && err.to_string().contains("\"read\""));

        let err = verify(&signed_write, &bundle(), &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_scope_mismatch");

        let unscoped = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let err = verify(&unscoped, &bundle(), &[verifier(Algorithm::EdDSA, Some("write"))]).unwrap_err();
        assert_eq!(err.code(), "signature_scope_mismatch");
    }

    #[test]
    fn token_without_key_id_uses_the_only_key() {
        let key = signer(Algorithm::EdDSA);
        let payload = serde_json::json!({
            "files": [
                {"name": ".manifest", "hash": file_hash(".manifest", &bundle()[0].1).expect("h"), "algorithm": "SHA-256"},
                {"name": "authz/policy.rego", "hash": file_hash("authz/policy.rego", &bundle()[1].1).expect("h"), "algorithm": "SHA-256"},
                {"name": "authz/data.json", "hash": file_hash("authz/data.json", &bundle()[2].1).expect("h"), "algorithm": "SHA-256"},
            ]
        });
        let sigs = hand_signed(r#"{"alg":"EdDSA"}"#, &payload.to_string(), &key);
        let verified = verify(&sigs, &bundle(), &[verifier(Algorithm::EdDSA, None)]).expect("verify");
        assert_eq!(verified.key_id, "k1");

        let two = [
            verifier(Algorithm::EdDSA, None),
            VerificationKey::new("k2", Algorithm::EdDSA, ED_OTHER_PUBLIC, None).expect("k2"),
        ];
        let err = verify(&sigs, &bundle(), &two).unwrap_err();
        assert_eq!(err.code(), "signature_unknown_key");
        assert_eq!(err, SignatureError::NoKeyId { configured: 2 });
    }

    #[test]
    fn other_sha2_hashes_are_accepted_and_weak_ones_refused() {
        let key = signer(Algorithm::EdDSA);
        let rego = "package authz\n\ndefault allow := false\n";
        let sha512 = hex::encode(sha2::Sha512::digest(rego.as_bytes()));
        let payload = format!(
            r#"{{"files":[{{"name":"authz/policy.rego","hash":"{}","algorithm":"SHA-512"}}]}}"#,
            sha512.to_uppercase()
        );
        let sigs = hand_signed(r#"{"alg":"EdDSA","kid":"k1"}"#, &payload, &key);
        let files = [file("authz/policy.rego", rego)];
        verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).expect("sha-512, upper-case hex");

        let md5 = r#"{"files":[{"name":"authz/policy.rego","hash":"00","algorithm":"MD5"}]}"#;
        let sigs = hand_signed(r#"{"alg":"EdDSA","kid":"k1"}"#, md5, &key);
        let err = verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_malformed");
        assert!(err.to_string().contains("\"MD5\""), "{err}");

        let no_alg = r#"{"files":[{"name":"authz/policy.rego","hash":"00"}]}"#;
        let sigs = hand_signed(r#"{"alg":"EdDSA","kid":"k1"}"#, no_alg, &key);
        let err = verify(&sigs, &files, &[verifier(Algorithm::EdDSA, None)]).unwrap_err();
        assert_eq!(err.code(), "signature_malformed");
    }

    /// The parts below were written by hand; the signatures were made with
    /// `openssl pkeyutl -sign -rawin` (Ed25519) and `openssl dgst -sha256 -sign` (RS256)
    /// over `base64url(header) "." base64url(payload)`, independently of this module.
    #[test]
    fn verifies_hand_built_tokens_signed_by_openssl() {
        const FILES: &str = r#"[{"name":".manifest","hash":"1f155f8de6480795a099980ecb966910493121ade37b18d97d53f834631f383e","algorithm":"SHA-256"},{"name":"authz/policy.rego","hash":"284cf8f3a3b4995be32213d6dcbab17dd5d0ea4863e8bb3b02d598e5fc23d131","algorithm":"SHA-256"},{"name":"authz/data.json","hash":"d722dee61b38334d0d7e323b0bd3b3d333756902c5c860a2cce8d17478b181c2","algorithm":"SHA-256"}]"#;
        const ED_SIGNATURE: &str =
            "AmiVcLLbgWAlxErEYCFaViIa8HEZrFboN5okNyga3jIXjfNQOF9J5VhH-1sz_i4HmZX0dDP7L05ZniFDqbosCg";
        const RS_SIGNATURE: &str = "MAcOI9fudEj8HZMwpyxLs4BOuh-nACj1BLnvfEJrK1SqQrHc54YUr9e8Tsu0gY1PTI7P-2IFeqfM322am1NWMz6XmtH8dp1H2t-hbfiENC_IYKmvBnvttBjk-rEmUIbWbyZqifuQyvw5nHegdPhd_wcwTmeiRP8G1V6l6EBq6WDanCeraeAg-qDyMwdAdotrWCn3A0ySRpQsFXWf-6JCb-XiaCjsFNH9ZvnII8q0uzqCysoEsJs3qgYHDbqVByc1zaxQiBthbsuRNCaFmtLZsBhg3MaW5OIQGCuC1B_WGAXdi6OPxKV4fWYZWsFfcHmhj4oIRv_NGsPqznODOYM3_w";

        // EdDSA, key id only in the deprecated "keyid" claim, scoped, with extra claims.
        let header = r#"{"alg":"EdDSA"}"#;
        let payload =
            format!(r#"{{"files":{FILES},"keyid":"ops-ed25519","scope":"write","iat":1592248027,"iss":"JWTService"}}"#);
        let token = format!("{}.{}.{ED_SIGNATURE}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let keys = [
            VerificationKey::new("ops-rsa", Algorithm::RS256, RSA_PUBLIC, None).expect("rsa"),
            VerificationKey::new("ops-ed25519", Algorithm::EdDSA, ED_PUBLIC, Some("write")).expect("ed"),
        ];
        let verified = verify(&signatures_doc(&token), &bundle(), &keys).expect("ed token");
        assert_eq!(
            verified,
            VerifiedSignature {
                key_id: "ops-ed25519".into(),
                algorithm: Algorithm::EdDSA,
                scope: Some("write".into()),
                files: 3,
            }
        );

        // RS256, key id in the header, "typ" present, no scope.
        let header = r#"{"alg":"RS256","kid":"ops-rsa","typ":"JWT"}"#;
        let payload = format!(r#"{{"files":{FILES}}}"#);
        let token = format!("{}.{}.{RS_SIGNATURE}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let pretty = format!("{{\n \"signatures\": [\n  \"{token}\"\n ]\n}}");
        let verified = verify(pretty.as_bytes(), &bundle(), &keys).expect("rsa token");
        assert_eq!(verified.key_id, "ops-rsa");
        assert_eq!(verified.scope, None);
    }

    #[test]
    fn json_hash_ignores_key_order_and_whitespace() {
        let a = file_hash("data.json", br#"{"a":1,"b":[true,null]}"#).expect("a");
        let b = file_hash(
            "data.json",
            b"\xEF\xBB\xBF{\n\t\"b\" : [ true , null ] ,\r\n  \"a\": 1\n}\n",
        )
        .expect("b");
        assert_eq!(a, b);
        assert_eq!(a, SHA256_A1_B_TRUE_NULL);
        assert_eq!(
            file_hash("x/y/data.json", br#"{ "b":[true, null], "a":1 }"#).expect("nested"),
            SHA256_A1_B_TRUE_NULL
        );
        assert_eq!(
            file_hash(".manifest", br#"{ "b":[true, null], "a":1 }"#).expect("manifest"),
            SHA256_A1_B_TRUE_NULL
        );
    }

    #[test]
    fn json_hash_keeps_numbers_and_escapes_strings_like_go() {
        let input = br#" { "n" : -0.0e+10, "k" : "<&>\u2028\t\u0001\u00e9\/" } "#;
        assert_eq!(file_hash("data.json", input).expect("hash"), SHA256_ESCAPES);
        assert_ne!(
            file_hash("data.json", br#"{"n":1.0}"#).expect("1.0"),
            file_hash("data.json", br#"{"n":1}"#).expect("1")
        );
    }

    #[test]
    fn only_opa_structured_names_are_canonicalised() {
        let pretty = b"{ \"b\": 1, \"a\": 2 }";
        let raw = hex::encode(sha2::Sha256::digest(pretty));
        for name in [
            "other.json",
            "plan.json",
            "authz/policy.rego",
            "data.yml",
            "data.json.bak",
        ] {
            assert_eq!(file_hash(name, pretty).expect("raw"), raw, "{name}");
        }
        for name in ["data.json", "a/data.json", ".manifest", "data.yaml", "signatures.json"] {
            assert_ne!(file_hash(name, pretty).expect("canonical"), raw, "{name}");
        }
        let err = file_hash("data.json", b"{\"a\":").unwrap_err();
        assert_eq!(err.code(), "signature_file_invalid");
        let err = file_hash("data.yaml", b"a: 1\n").unwrap_err();
        assert_eq!(err.code(), "signature_file_invalid");
        assert!(err.to_string().contains("data.json"), "{err}");
    }

    #[test]
    fn canonical_encoding_details() {
        let canon = |s: &[u8]| String::from_utf8(canonical_json(s).expect("json")).expect("utf8");
        assert_eq!(canon(br#"{"b":1,"a":2,"b":3}"#), r#"{"a":2,"b":3}"#);
        assert_eq!(canon(br#"{"\u00e9":1,"z":2,"A":3}"#), "{\"A\":3,\"z\":2,\"\u{e9}\":1}");
        assert_eq!(canon(br#""\u0008\u000c\u001f\u007f""#), "\"\\b\\f\\u001f\u{7f}\"");
        assert_eq!(canon(br#""\ud83d\ude00""#), "\"\u{1f600}\"");
        assert_eq!(canon(br#""\ud800x\udc00""#), "\"\u{fffd}x\u{fffd}\"");
        assert_eq!(canon(br#""\u2029""#), r#""\u2029""#);
        assert_eq!(canon(b"\"a\xffb\xe2\x82\""), "\"a\u{fffd}b\u{fffd}\u{fffd}\"");
        assert_eq!(canon(b"[ ]"), "[]");
        assert_eq!(canon(b"{ }"), "{}");
        assert_eq!(canon(b" 12.5E-3 "), "12.5E-3");
        assert_eq!(
            canon(br#"[{"b":[{}],"a":"x"},[[]],"s",false]"#),
            r#"[{"a":"x","b":[{}]},[[]],"s",false]"#
        );
        for bad in [
            &b""[..],
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"[1,]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"\"\x01\"",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"tru",
            b"nul",
            b"[1] [2]",
            b"'a'",
            b"NaN",
        ] {
            assert!(canonical_json(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_is_bounded_without_recursion() {
        let depth = MAX_JSON_DEPTH;
        let ok = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(canonical_json(ok.as_bytes()).expect("at the limit").len(), 2 * depth);
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert!(canonical_json(objects.as_bytes()).is_ok());
        let too_deep = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
        let err = file_hash("data.json", too_deep.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "signature_file_invalid");
        assert!(file_hash("data.json", "[".repeat(100_000).as_bytes()).is_err());
    }

    #[test]
    fn malformed_signature_documents() {
        let keys = [verifier(Algorithm::EdDSA, None)];
        let good = sign(&bundle(), &signer(Algorithm::EdDSA), None).expect("sign");
        let token = token_of(&good);
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"[]".to_vec(),
            b"{}".to_vec(),
            br#"{"signatures":[]}"#.to_vec(),
            br#"{"signatures":"abc"}"#.to_vec(),
            br#"{"signatures":[1]}"#.to_vec(),
            serde_json::to_vec(&serde_json::json!({"signatures": [token, token]})).expect("json"),
            serde_json::to_vec(&serde_json::json!({"signatures": [token], "plugin": "kms"})).expect("json"),
            signatures_doc("a.b"),
            signatures_doc("a.b.c.d"),
            signatures_doc("!!!.e30.AAAA"),
            signatures_doc(&format!("{}.e30.AAAA", b64(b"[1]"))),
            signatures_doc(&format!("{}.e30.AAAA", b64(br#"{"kid":"k1"}"#))),
            signatures_doc(&format!("{}.e30.AAAA", b64(br#"{"alg":"EdDSA","kid":7}"#))),
            signatures_doc(&format!("{}.e30.AAAA", b64(br#"{"alg":"EdDSA","crit":["b64"]}"#))),
            signatures_doc(&format!("{}.{}.AAAA", b64(br#"{"alg":"EdDSA"}"#), b64(b"[]"))),
            signatures_doc(&format!(
                "{}.{}.AAAA",
                b64(br#"{"alg":"EdDSA"}"#),
                b64(br#"{"files":[{"name":1}]}"#)
            )),
            signatures_doc(&format!("{}.e30.A=", b64(br#"{"alg":"EdDSA"}"#))),
        ];
        for case in cases {
            let err = verify(&case, &bundle(), &keys).unwrap_err();
            assert_eq!(
                err.code(),
                "signature_malformed",
                "{err} for {}",
                String::from_utf8_lossy(&case)
            );
        }
    }

    /// A small deterministic generator, so the fuzz cases are reproducible.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        let keys = [
            verifier(Algorithm::EdDSA, None),
            verifier(Algorithm::RS256, None),
            verifier(Algorithm::ES256, None),
        ];
        let good = sign(&bundle(), &signer(Algorithm::ES256), None).expect("sign");
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);

        for len in 0..good.len() {
            let err = verify(&good[..len], &bundle(), &keys).unwrap_err();
            assert_eq!(err.code(), "signature_malformed", "prefix of {len} bytes: {err}");
        }
        for _ in 0..500 {
            let len = (rng.next() % 200) as usize;
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let err = verify(&noise, &bundle(), &keys).unwrap_err();
            assert_eq!(err.code(), "signature_malformed");
            let _ = file_hash("data.json", &noise);
            let _ = canonical_json(&noise);
        }
        let token = token_of(&good);
        for _ in 0..300 {
            let mut bytes = token.clone().into_bytes();
            for _ in 0..=(rng.next() % 3) {
                let at = (rng.next() as usize) % bytes.len();
                bytes[at] = b"AZaz09-_.{}\""[(rng.next() % 12) as usize];
            }
            let mutated = String::from_utf8(bytes).expect("ascii");
            if mutated != token {
                assert!(verify(&signatures_doc(&mutated), &bundle(), &keys).is_err());
            }
        }
        let json_alphabet = b"{}[]:,\"\\u0123456789abcdefEe+-. \ntrunl";
        for _ in 0..2000 {
            let len = (rng.next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| json_alphabet[(rng.next() as usize) % json_alphabet.len()])
                .collect();
            if let Ok(canonical) = canonical_json(&text) {
                let again = canonical_json(&canonical).expect("canonical output parses");
                assert_eq!(again, canonical, "{}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn keys_are_checked_when_registered() {
        let bad = |alg: Algorithm, pem: &str| {
            let err = VerificationKey::new("k", alg, pem, None).unwrap_err();
            assert_eq!(err.code(), "key_invalid", "{err}");
            err
        };
        bad(Algorithm::EdDSA, "not a pem");
        bad(
            Algorithm::EdDSA,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        );
        bad(Algorithm::EdDSA, RSA_PUBLIC);
        bad(Algorithm::RS256, ED_PUBLIC);
        bad(Algorithm::ES256, RSA_PUBLIC);
        bad(Algorithm::ES256, EC384_PUBLIC);
        bad(Algorithm::EdDSA, ED_PUBLIC_TRUNCATED);
        let err = bad(Algorithm::EdDSA, ED_PRIVATE);
        assert!(err.to_string().contains("private key"), "{err}");
        assert_eq!(
            VerificationKey::new("", Algorithm::EdDSA, ED_PUBLIC, None)
                .unwrap_err()
                .code(),
            "key_invalid"
        );

        let bad_signer = |alg: Algorithm, pem: &str| {
            let err = SigningKey::from_pem("k", alg, pem).unwrap_err();
            assert_eq!(err.code(), "key_invalid", "{err}");
            err
        };
        bad_signer(Algorithm::ES256, EC384_PRIVATE);
        bad_signer(Algorithm::ES256, ED_PRIVATE);
        bad_signer(Algorithm::EdDSA, EC_PRIVATE_PKCS8);
        bad_signer(Algorithm::RS256, EC_PRIVATE_PKCS8);
        bad_signer(Algorithm::EdDSA, RSA_PRIVATE_PKCS1);
        bad_signer(
            Algorithm::RS256,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let err = bad_signer(Algorithm::EdDSA, ED_PUBLIC);
        assert!(err.to_string().contains("public key"), "{err}");
    }

    /// An Ed25519 SPKI whose key bit string holds 31 bytes instead of 32.
    const ED_PUBLIC_TRUNCATED: &str = "-----BEGIN PUBLIC KEY-----
MCkwBQYDK2VwAyAACOMUWGe74gBcV1yRshz1g29p7/N3g7WnCLOQsvipJg==
-----END PUBLIC KEY-----
";

    #[test]
    fn algorithm_names() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().expect("parse"), alg);
            assert_eq!(
                serde_json::to_string(&alg).expect("json"),
                format!("\"{}\"", alg.as_str())
            );
            assert_eq!(
                serde_json::from_str::<Algorithm>(&format!("\"{alg}\"")).expect("json"),
                alg
            );
        }
        let err = "HS256".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.code(), "algorithm_unsupported");
        assert!("rs256".parse::<Algorithm>().is_err());
    }

    #[test]
    fn messages_are_lower_case_without_trailing_dot() {
        let errors = [
            SignatureError::malformed("x"),
            SignatureError::UnknownKey { kid: "k".into() },
            SignatureError::NoKeyId { configured: 0 },
            SignatureError::Invalid { key_id: "k".into() },
            SignatureError::FileMismatch { name: "a".into() },
            SignatureError::FileMissing {
                names: vec!["a".into()],
            },
            SignatureError::FileUnsigned { name: "a".into() },
            SignatureError::FileDuplicate { name: "a".into() },
            SignatureError::FileInvalid {
                name: "a".into(),
                reason: "r".into(),
            },
            SignatureError::ScopeMismatch {
                key_id: "k".into(),
                expected: None,
                found: Some("w".into()),
            },
            SignatureError::key_invalid("k", "r"),
            SignatureError::UnsupportedAlgorithm { name: "HS256".into() },
            SignatureError::SigningFailed {
                key_id: "k".into(),
                reason: "r".into(),
            },
        ];
        let mut codes = HashSet::new();
        for err in errors {
            let text = err.to_string();
            let first = text.chars().next().expect("non-empty");
            assert!(!first.is_uppercase(), "{text}");
            assert!(!text.ends_with('.'), "{text}");
            let code = err.code();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            codes.insert(code);
        }
        assert_eq!(codes.len(), 12);
    }
}

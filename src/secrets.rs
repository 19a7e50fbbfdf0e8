//! Encryption at rest of tenants' sink secrets, with keys kept outside the
//! database.
//!
//! A secret is stored as `enc1:<key id>:<base64>`: XChaCha20-Poly1305 (an
//! AEAD) under the named key, the base64 holding a random 24-byte nonce and
//! the ciphertext with its tag. The associated data binds the secret to its
//! tenant, sink and field, so a ciphertext moved to another row does not
//! open. XChaCha20's nonces are long enough to be drawn at random for every
//! encryption without a counter to keep (AES-GCM's 96-bit nonces are not,
//! past some billions of encryptions per key), and it needs no AES hardware
//! to run in constant time.
//!
//! The keys: `current` encrypts; `accept` lists older ids still read. Each
//! key is 32 bytes, given in the configuration (or the environment) or read
//! from `<data_dir>/keys/sink-secrets.<id>.key` (base64); the current key's
//! file is created on first start when the key is given nowhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::config::SinkSecretsConfig;

/// What marks an encrypted secret.
pub const PREFIX: &str = "enc1:";

/// The keys that seal and open tenants' sink secrets.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, XChaCha20Poly1305>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A secret that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("it is encrypted under key {0:?}, which is not configured (sink_secrets.current or .accept)")]
    UnknownKey(String),
    #[error("it does not decrypt under key {0:?} (a wrong key, or the value was altered or moved)")]
    Corrupt(String),
}

/// The file of key `id` under the data directory.
pub fn key_path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("keys").join(format!("sink-secrets.{id}.key"))
}

fn decode_key(text: &str, what: &str) -> anyhow::Result<XChaCha20Poly1305> {
    let raw = STANDARD
        .decode(text.trim())
        .with_context(|| format!("{what} is not base64"))?;
    if raw.len() != 32 {
        bail!("{what} must be 32 bytes (base64), not {}", raw.len());
    }
    Ok(XChaCha20Poly1305::new_from_slice(&raw).expect("a 32-byte key"))
}

impl Keyring {
    /// The configured keys; the current key's file is created if the key is
    /// given nowhere.
    pub fn load(config: &SinkSecretsConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let mut keys = BTreeMap::new();
        for id in std::iter::once(&config.current).chain(&config.accept) {
            let key = match config.keys.get(id) {
                Some(k) => decode_key(&k.0, &format!("sink_secrets.keys.{id}"))?,
                None => {
                    let path = key_path(data_dir, id);
                    if !path.exists() && *id == config.current {
                        let mut raw = [0u8; 32];
                        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
                        std::fs::create_dir_all(data_dir.join("keys"))?;
                        crate::keys::write_secret(&path, &format!("{}\n", STANDARD.encode(raw)))?;
                        tracing::info!(path = %path.display(), key = %id, "created the sink secrets key");
                    }
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "sink secrets key {id:?}: give it in sink_secrets.keys or in {}",
                            path.display()
                        )
                    })?;
                    decode_key(&text, &path.display().to_string())?
                }
            };
            keys.insert(id.clone(), key);
        }
        Ok(Self {
            current: config.current.clone(),
            keys,
        })
    }

    /// A keyring of one key (tests).
    pub fn single(id: &str, key: [u8; 32]) -> Self {
        Self {
            current: id.into(),
            keys: [(id.to_string(), XChaCha20Poly1305::new(&key.into()))].into(),
        }
    }

    pub fn current(&self) -> &str {
        &self.current
    }

    /// `plaintext` sealed under the current key, bound to `context`.
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("operating system random source");
        let ciphertext = self.keys[&self.current]
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("encrypting in memory");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}:{}", self.current, STANDARD.encode(out))
    }

    /// The key id a sealed value names, or None for a plaintext one.
    pub fn key_of(value: &str) -> Option<&str> {
        value.strip_prefix(PREFIX)?.split_once(':').map(|(id, _)| id)
    }

    /// Opens a value [`Keyring::seal`] made with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, OpenError> {
        let Some((id, body)) = sealed.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) else {
            return Err(OpenError::Corrupt(String::new()));
        };
        let key = self.keys.get(id).ok_or_else(|| OpenError::UnknownKey(id.into()))?;
        let corrupt = || OpenError::Corrupt(id.into());
        let raw = STANDARD.decode(body).map_err(|_| corrupt())?;
        if raw.len() < 24 {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| corrupt())?;
        let plain = key
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyMaterial;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let ring = Keyring::single("k1", [1; 32]);
        let sealed = ring.seal("whsec_abc", "t/a/secrets/0");
        assert!(sealed.starts_with("enc1:k1:"), "{sealed}");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            ring.seal("whsec_abc", "t/a/secrets/0"),
            "a fresh nonce each time"
        );
        assert_eq!(ring.open(&sealed, "t/a/secrets/0").unwrap(), "whsec_abc");
        assert_eq!(
            ring.open(&sealed, "u/a/secrets/0"),
            Err(OpenError::Corrupt("k1".into())),
            "moved to another tenant's row"
        );
        let other = Keyring::single("k2", [2; 32]);
        assert_eq!(
            other.open(&sealed, "t/a/secrets/0"),
            Err(OpenError::UnknownKey("k1".into()))
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(ring.open(&tampered, "t/a/secrets/0").is_err());
        assert_eq!(Keyring::key_of(&sealed), Some("k1"));
        assert_eq!(Keyring::key_of("whsec_plain"), None);
    }

    #[test]
    fn keys_come_from_configuration_or_files_and_the_current_one_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let config = SinkSecretsConfig::default();
        let first = Keyring::load(&config, dir.path()).unwrap();
        let path = key_path(dir.path(), "k1");
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let sealed = first.seal("s", "c");
        // Rotation: k2 current, given in the configuration; k1 still read.
        let rotated = SinkSecretsConfig {
            current: "k2".into(),
            accept: vec!["k1".into()],
            keys: [("k2".to_string(), KeyMaterial(STANDARD.encode([9u8; 32])))].into(),
        };
        let second = Keyring::load(&rotated, dir.path()).unwrap();
        assert_eq!(second.open(&sealed, "c").unwrap(), "s");
        assert!(second.seal("s", "c").starts_with("enc1:k2:"));
        assert!(
            !key_path(dir.path(), "k2").exists(),
            "a configured key is not written out"
        );
        // An accepted key that is nowhere is an error at start-up.
        let missing = SinkSecretsConfig {
            accept: vec!["k0".into()],
            ..SinkSecretsConfig::default()
        };
        let err = Keyring::load(&missing, dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("k0"), "{err:#}");
        let short = SinkSecretsConfig {
            keys: [("k1".to_string(), KeyMaterial(STANDARD.encode([1u8; 16])))].into(),
            ..SinkSecretsConfig::default()
        };
        assert!(Keyring::load(&short, dir.path()).is_err());
    }
}

//! Ed25519 key files: the server's evidence-signing key under the data
//! directory, and the key pairs `warden keygen` writes for bundle signing.
//!
//! Private keys are PKCS#8 PEM (v1, as OpenSSL writes them), public keys
//! SubjectPublicKeyInfo PEM, so both interoperate with `openssl` and OPA.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};

/// A fresh Ed25519 key from the operating system's random source.
pub fn generate() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("operating system random source");
    SigningKey::from_bytes(&seed)
}

pub fn private_pem(key: &SigningKey) -> anyhow::Result<String> {
    let doc = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .context("encoding private key")?;
    Ok(doc.to_string())
}

pub fn public_pem(key: &SigningKey) -> anyhow::Result<String> {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding public key")
}

pub fn read_private(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 private key: {e}", path.display()))
}

/// Writes a file readable by its owner only, refusing to replace one.
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The evidence-signing key of this server, created on first start.
pub fn load_or_create_server_key(data_dir: &Path) -> anyhow::Result<(SigningKey, PathBuf)> {
    let dir = data_dir.join("keys");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(SERVER_KEY);
    if path.exists() {
        return Ok((read_private(&path)?, path));
    }
    let key = generate();
    write_secret(&path, &private_pem(&key)?)?;
    std::fs::write(dir.join("ledger-ed25519.pub.pem"), public_pem(&key)?)?;
    tracing::info!(path = %path.display(), "created the evidence signing key");
    Ok((key, path))
}

const SERVER_KEY: &str = "ledger-ed25519.pem";
const NEXT_KEY: &str = "ledger-ed25519.next.pem";

/// The key a rotation has staged but not yet committed, if any.
pub fn staged_server_key(data_dir: &Path) -> anyhow::Result<Option<SigningKey>> {
    let path = data_dir.join("keys").join(NEXT_KEY);
    if path.exists() {
        Ok(Some(read_private(&path)?))
    } else {
        Ok(None)
    }
}

/// Writes a rotation's new key beside the current one, before the rotation
/// commits, so a crash in between loses neither.
pub fn stage_server_key(data_dir: &Path, key: &SigningKey) -> anyhow::Result<()> {
    let path = data_dir.join("keys").join(NEXT_KEY);
    discard_staged_server_key(data_dir)?;
    write_secret(&path, &private_pem(key)?)
}

pub fn discard_staged_server_key(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("keys").join(NEXT_KEY);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// After a committed rotation: the current key file is kept as
/// `ledger-ed25519.<retired_id>.retired.pem` and the staged key takes its
/// place.
pub fn promote_staged_server_key(data_dir: &Path, retired_id: &str) -> anyhow::Result<()> {
    let dir = data_dir.join("keys");
    let current = dir.join(SERVER_KEY);
    let retired = dir.join(format!("ledger-ed25519.{retired_id}.retired.pem"));
    std::fs::rename(&current, &retired)
        .with_context(|| format!("cannot keep the retired key as {}", retired.display()))?;
    std::fs::rename(dir.join(NEXT_KEY), &current)
        .with_context(|| format!("cannot install the new key as {}", current.display()))?;
    let key = read_private(&current)?;
    std::fs::write(dir.join("ledger-ed25519.pub.pem"), public_pem(&key)?)?;
    Ok(())
}

/// `warden keygen`: writes `<name>.pem` and `<name>.pub.pem` into `dir`.
pub fn keygen(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    if name.is_empty() || name.contains(['/', '\\']) {
        bail!("key name {name:?} must be a plain file name");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = generate();
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    if public.exists() {
        bail!("{} already exists; choose another --name", public.display());
    }
    write_secret(&private, &private_pem(&key)?)?;
    std::fs::write(&public, public_pem(&key)?)?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (a, path) = load_or_create_server_key(dir.path()).unwrap();
        let (b, _) = load_or_create_server_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn keygen_writes_a_pair_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = keygen(dir.path(), "bundles").unwrap();
        let key = read_private(&private).unwrap();
        assert_eq!(std::fs::read_to_string(public).unwrap(), public_pem(&key).unwrap());
        assert!(
            std::fs::read_to_string(&private)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(keygen(dir.path(), "bundles").is_err());
    }
}

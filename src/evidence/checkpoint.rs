//! Checkpoints in the C2SP `tlog-checkpoint` format, signed as C2SP signed
//! notes with Ed25519:
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root>\n\n— <key name> <base64(key id ‖ signature)>\n
//! ```
//!
//! The key id is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public
//! key); the signature covers the note text (the three lines, each ending in
//! a newline). Verifier keys are written `name+hex(key id)+base64(0x01 ‖ key)`,
//! as the Go `note` package and every C2SP tool reads them.
//!
//! Invariant: no IO.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The signature type byte for Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log, e.g. `warden.example/log/<tenant>`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint is not signed by any known key")]
    UnknownKey,
    #[error("checkpoint signature by {0} does not verify")]
    BadSignature(String),
    #[error("invalid verifier key: {0}")]
    BadKey(String),
}

impl Checkpoint {
    /// The note text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.as_bytes())
        )
    }

    fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let mut lines = text.split_terminator('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("missing origin line"))?;
        let size: u64 = lines
            .next()
            .and_then(|s| {
                if s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) {
                    None
                } else {
                    s.parse().ok()
                }
            })
            .ok_or_else(|| bad("tree size must be a decimal number"))?;
        let root = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .ok_or_else(|| bad("root must be base64"))?;
        let root: [u8; 32] = root.try_into().map_err(|_| bad("root must be 32 bytes"))?;
        // Extension lines may follow; they are covered by the signature.
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: Hash::from_bytes(root),
        })
    }
}

fn bad(msg: &str) -> CheckpointError {
    CheckpointError::Malformed(msg.to_string())
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A named Ed25519 key that signs checkpoints.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CheckpointError> {
        if !valid_name(name) {
            return Err(CheckpointError::BadKey(format!(
                "key name {name:?} may not contain spaces or '+'"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            key,
        })
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signed note for this checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        sign_with(&[self], checkpoint)
    }

    fn signature_line(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// The note for this checkpoint signed by every one of `signers`, in order
/// (a key rotation's checkpoint carries the old and the new key's
/// signatures).
pub fn sign_with(signers: &[&NoteSigner], checkpoint: &Checkpoint) -> String {
    let body = checkpoint.body();
    let mut note = format!("{body}\n");
    for s in signers {
        note.push_str(&s.signature_line(&body));
    }
    note
}

/// A named public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub key: VerifyingKey,
}

impl NoteVerifier {
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.key)
    }

    /// `name+<hex key id>+<base64(0x01 ‖ key)>`.
    pub fn to_text(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_id()), STANDARD.encode(k))
    }

    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CheckpointError::BadKey("expected name+keyid+key".into()));
        };
        let raw = STANDARD
            .decode(key)
            .map_err(|_| CheckpointError::BadKey("key is not base64".into()))?;
        let Some((&ALG_ED25519, pk)) = raw.split_first() else {
            return Err(CheckpointError::BadKey(
                "only Ed25519 (type 0x01) keys are supported".into(),
            ));
        };
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| CheckpointError::BadKey("Ed25519 key must be 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| CheckpointError::BadKey("not an Ed25519 point".into()))?;
        let v = NoteVerifier {
            name: name.to_string(),
            key,
        };
        if !valid_name(name) || hex::encode(v.key_id()) != id.to_ascii_lowercase() {
            return Err(CheckpointError::BadKey("key id does not match name and key".into()));
        }
        Ok(v)
    }
}

/// Parses a signed checkpoint and checks that at least one signature is by
/// one of `verifiers`; signatures by unknown keys are ignored, as C2SP says.
/// Returns the checkpoint and the name of the key that verified it.
pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<(Checkpoint, String), CheckpointError> {
    let (checkpoint, signed) = open_all(note, verifiers)?;
    Ok((checkpoint, verifiers[signed[0]].name.clone()))
}

/// Parses a signed checkpoint and verifies every signature made by one of
/// `verifiers`. Returns the checkpoint and the positions in `verifiers` of
/// the keys that signed it (at least one). Any known key's signature that
/// fails is an error; lines from unknown keys are ignored, as C2SP says.
pub fn open_all(note: &str, verifiers: &[NoteVerifier]) -> Result<(Checkpoint, Vec<usize>), CheckpointError> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no blank line before the signatures"))?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    if body.contains("\n\n") {
        return Err(bad("blank line inside the note text"));
    }
    let checkpoint = Checkpoint::parse_body(body)?;
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(bad("signature lines must end with a newline"));
    }
    let mut signed = Vec::new();
    for line in sigs.split_terminator('\n') {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("signature line must start with an em dash"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("signature line needs a name and a signature"))?;
        let blob = STANDARD.decode(b64).map_err(|_| bad("signature is not base64"))?;
        if blob.len() < 4 {
            return Err(bad("signature too short"));
        }
        // Known keys' signatures must verify; unknown keys' lines are skipped.
        if let Some(at) = verifiers
            .iter()
            .position(|v| v.name == name && v.key_id()[..] == blob[..4])
        {
            let sig = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(name.to_string()))?;
            verifiers[at]
                .key
                .verify(body.as_bytes(), &sig)
                .map_err(|_| CheckpointError::BadSignature(name.to_string()))?;
            if !signed.contains(&at) {
                signed.push(at);
            }
        }
    }
    if signed.is_empty() {
        return Err(CheckpointError::UnknownKey);
    }
    Ok((checkpoint, signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "warden.example/log/acme";

    fn signer() -> NoteSigner {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        NoteSigner::new(NAME, SigningKey::from_bytes(&seed)).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: NAME.into(),
            size: 5,
            root: super::super::merkle::empty_root(),
        }
    }

    /// Computed independently (Python: `cryptography` Ed25519, hashlib,
    /// the C2SP signed-note rules).
    #[test]
    fn known_answer_note_and_verifier_key() {
        let s = signer();
        assert_eq!(
            s.verifier().to_text(),
            "warden.example/log/acme+f415f762+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
        );
        assert_eq!(
            s.sign(&checkpoint()),
            "warden.example/log/acme\n5\nrxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=\n\n\u{2014} warden.example/log/acme 9BX3YvF3iGnI9h9TkThztowtUuH6Ep8YVjPe5pvL7Y0+plXa+PCUzFJTnOgRHmSOAY8YhAz0Ug544LJm2a0usL5lUgs=\n"
        );
    }

    #[test]
    fn round_trip_and_tampering() {
        let s = signer();
        let v = NoteVerifier::parse(&s.verifier().to_text()).unwrap();
        let note = s.sign(&checkpoint());
        assert_eq!(
            open(&note, std::slice::from_ref(&v)).unwrap(),
            (checkpoint(), NAME.to_string())
        );
        let grown = note.replacen("\n5\n", "\n6\n", 1);
        assert_eq!(
            open(&grown, std::slice::from_ref(&v)),
            Err(CheckpointError::BadSignature(NAME.into()))
        );
        let other = NoteSigner::new(NAME, SigningKey::from_bytes(&[9; 32]))
            .unwrap()
            .verifier();
        assert_eq!(open(&note, &[other]), Err(CheckpointError::UnknownKey));
        assert!(matches!(
            open("x\n5\n", std::slice::from_ref(&v)),
            Err(CheckpointError::Malformed(_))
        ));
        // Cosigned: both keys are reported; a bad second signature fails.
        let other = NoteSigner::new("other", SigningKey::from_bytes(&[7; 32])).unwrap();
        let both = sign_with(&[&s, &other], &checkpoint());
        let keys = [other.verifier(), v.clone()];
        assert_eq!(open_all(&both, &keys).unwrap().1, vec![1, 0]);
        let (head, last) = both.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(last).unwrap();
        blob[10] ^= 1;
        let forged = format!("{head} {}\n", STANDARD.encode(blob));
        assert_eq!(
            open_all(&forged, &keys),
            Err(CheckpointError::BadSignature("other".into()))
        );
        assert!(
            NoteVerifier::parse("warden.example/log/acme+00000000+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4")
                .is_err()
        );
    }
}

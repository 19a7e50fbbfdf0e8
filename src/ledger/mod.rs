//! The evidence ledger: one append-only, hash-chained log per tenant whose
//! entries are the leaves of an RFC 6962-style Merkle tree (blake3), with
//! ed25519-signed checkpoints.
//!
//! - [`merkle`]: tree hashing, the append frontier, inclusion and
//!   consistency proofs and their verification. No IO.
//! - [`checkpoint`]: C2SP checkpoints as Ed25519 signed notes. No IO.
//! - [`canonical`]: RFC 8785 canonical JSON for payloads. No IO.
//! - [`entry`]: entry bytes (the only code deciding what is hashed) and the
//!   hash chain. No IO.
//!
//! Entry encoding, group-committed appends, checkpoints, stores, export and
//! offline verification are built on top of these.

pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod fsck;
pub mod merkle;
pub mod read;
pub mod receipt;
pub mod verify;
pub mod writer;

pub use receipt::Receipt;
pub use writer::{AppendError, Ledger, Record};

/// The vectors published in `docs/ledger-format.md` match this code.
#[cfg(test)]
mod format_vectors {
    use std::collections::HashMap;

    use super::checkpoint::{Checkpoint, NoteSigner};
    use super::entry::{Entry, GENESIS_PREV};
    use super::merkle::{self, Hash};

    fn vectors() -> HashMap<String, String> {
        let doc = include_str!("../../docs/ledger-format.md");
        let block = doc
            .split("```vectors\n")
            .nth(1)
            .expect("a vectors block")
            .split("```")
            .next()
            .unwrap();
        block
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    fn hex(h: &Hash) -> String {
        h.to_hex().to_string()
    }

    #[test]
    fn the_published_vectors_match_the_code() {
        let v = vectors();
        let leaves: Vec<Hash> = (0..7).map(|i| merkle::leaf_hash(&vec![i as u8; i + 1])).collect();
        assert_eq!(hex(&merkle::empty_root()), v["empty_root"]);
        assert_eq!(hex(&leaves[0]), v["leaf_0"]);
        for n in [2, 3, 5, 7] {
            assert_eq!(hex(&merkle::root(&leaves[..n])), v[&format!("root_{n}")], "root_{n}");
        }
        let join = |p: Vec<Hash>| p.iter().map(hex).collect::<Vec<_>>().join(" ");
        assert_eq!(
            join(merkle::inclusion_proof(2, &leaves).unwrap()),
            v["inclusion_2_of_7"]
        );
        assert_eq!(
            join(merkle::consistency_proof(3, &leaves).unwrap()),
            v["consistency_3_to_7"]
        );

        let entry = Entry::from_bytes(v["entry_0_bytes"].as_bytes()).unwrap();
        assert_eq!(entry.prev, GENESIS_PREV);
        assert_eq!(hex(&entry.hash()), v["entry_0_hash"]);

        let seed: [u8; 32] = hex::decode(&v["checkpoint_key_seed"]).unwrap().try_into().unwrap();
        let signer = NoteSigner::new(&v["checkpoint_key_name"], ed25519_dalek::SigningKey::from_bytes(&seed)).unwrap();
        assert_eq!(signer.verifier().to_text(), v["checkpoint_verifier"]);
        let note = signer.sign(&Checkpoint {
            origin: v["checkpoint_key_name"].clone(),
            size: v["checkpoint_size"].parse().unwrap(),
            root: Hash::from_hex(&v["checkpoint_root"]).unwrap(),
        });
        assert!(
            note.ends_with(&format!("\n\n{}\n", v["checkpoint_signature_line"])),
            "{note}"
        );
    }
}

//! The evidence format: what Warden hashes, signs and exports, and how an
//! auditor verifies it offline with nothing but the export and a public key
//! (`docs/ledger-format.md`, whose vectors the tests below check). No IO:
//! the ledger ([`crate::ledger`]) writes and reads it through the store.
//!
//! - [`canonical`]: RFC 8785 canonical JSON for payloads (integers exact).
//! - [`entry`]: entry bytes (the only code deciding what is hashed) and the
//!   hash chain; the entry hash is the Merkle leaf hash.
//! - [`merkle`]: RFC 9162 tree hashing with blake3, the append frontier,
//!   inclusion and consistency proofs, and the complete subtrees a proof
//!   needs.
//! - [`checkpoint`]: C2SP checkpoints as Ed25519 signed notes, cosigning.
//! - [`receipt`]: what an append answers (entry hash, inclusion proof,
//!   checkpoint).
//! - [`export`]: the NDJSON evidence file.
//! - [`verify`]: offline verification of an export or a receipt, with the
//!   key-rotation trust rules.

pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod merkle;
pub mod receipt;
pub mod verify;

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
    fn the_published_canonical_vectors_match_the_code() {
        let doc = include_str!("../../docs/ledger-format.md");
        let block = doc_block("canonical");
        let mut checked = 0;
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let (input, expected) = line.split_once(" => ").expect("`input => output`");
            match expected.strip_prefix("refused ") {
                Some(refusal) => {
                    let (code, pointer) = refusal.split_once(' ').expect("`refused code pointer`");
                    let fault = crate::strict_json::check(input.as_bytes(), 64).expect_err(input);
                    assert_eq!((fault.kind.code(), fault.pointer.as_str()), (code, pointer), "{input}");
                }
                None => {
                    crate::strict_json::check(input.as_bytes(), 64).unwrap_or_else(|f| panic!("{input}: {f}"));
                    let value: serde_json::Value = serde_json::from_str(input).unwrap();
                    let canonical = String::from_utf8(super::canonical::to_vec(&value)).unwrap();
                    assert_eq!(canonical, expected, "{input}");
                }
            }
            checked += 1;
        }
        assert!(
            checked >= 10 && doc.contains("```canonical"),
            "the canonical vectors are published"
        );
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

        // The export vector: built here, published there, verified.
        let name = &v["checkpoint_key_name"];
        let mut frontier = merkle::Frontier::default();
        let mut prev = GENESIS_PREV;
        let key = super::export::KeyInfo {
            verifier: signer.verifier().to_text(),
            created_at: 1_795_308_000_000,
            retired_at: None,
        };
        let header = super::export::Header::new(name, &frontier, prev, 3, vec![key], 1_795_308_222_000);
        let mut file = super::export::header_line(&header);
        let payloads = [
            serde_json::json!({"name": "acme", "platform": false, "tenant_id": "ten_01"}),
            serde_json::json!({"name": "ci", "roles": "orchestrator", "token_id": "tok_01"}),
            serde_json::json!({"allow": true, "decision_id": "dec_01", "path": "agento/commissioning/routing"}),
        ];
        let kinds = ["tenant.create", "token.create", "decision"];
        for (i, (kind, payload)) in kinds.iter().zip(&payloads).enumerate() {
            let e = Entry {
                index: i as u64,
                ts: 1_795_308_111_311 + i as i64,
                kind: kind.to_string(),
                actor: if i < 2 {
                    "system".into()
                } else {
                    "token:tok_01 (ci)".into()
                },
                payload: payload.clone(),
                prev,
            };
            prev = e.hash();
            frontier.push(prev);
            file.extend(super::export::entry_line(&e.to_bytes()));
            if i >= 1 {
                let cp = Checkpoint {
                    origin: name.clone(),
                    size: frontier.size(),
                    root: frontier.root(),
                };
                file.extend(super::export::checkpoint_line(&signer.sign(&cp)));
            }
        }
        let published = doc_block("export");
        assert_eq!(
            published,
            String::from_utf8(file.clone()).unwrap(),
            "docs/ledger-format.md export vector"
        );
        let report =
            super::verify::verify_export(std::io::Cursor::new(&file), &[signer.verifier()], &mut |_| {}).unwrap();
        assert_eq!((report.entries, report.checkpoints), (3, 2));
    }

    fn doc_block(tag: &str) -> String {
        let doc = include_str!("../../docs/ledger-format.md");
        doc.split(&format!("```{tag}\n"))
            .nth(1)
            .expect("the block")
            .split("```")
            .next()
            .unwrap()
            .to_string()
    }
}

"""Every test vector of docs/ledger-format.md, read from the document itself."""

from __future__ import annotations

import base64

import pytest
from ledgerkit import canonical_cases, doc_block, vectors

from warden import canonical, merkle, note, verify

V = vectors()


def tree_leaves(n: int) -> list[bytes]:
    # entry i (for the tree vectors only) is the i + 1 bytes of value i
    return [merkle.leaf_hash(bytes([i]) * (i + 1)) for i in range(n)]


def test_vector_block_is_complete() -> None:
    expected = {
        "empty_root", "leaf_0", "root_2", "root_3", "root_5", "root_7", "inclusion_2_of_7",
        "consistency_3_to_7", "entry_0_bytes", "entry_0_hash", "checkpoint_key_seed",
        "checkpoint_key_name", "checkpoint_verifier", "checkpoint_size", "checkpoint_root",
        "checkpoint_signature_line",
    }
    assert expected <= set(V), sorted(expected - set(V))


def test_empty_root() -> None:
    assert merkle.empty_root().hex() == V["empty_root"]
    assert merkle.root([]).hex() == V["empty_root"]


def test_leaf_0() -> None:
    assert tree_leaves(1)[0].hex() == V["leaf_0"]


@pytest.mark.parametrize("n", [2, 3, 5, 7])
def test_roots(n: int) -> None:
    leaves = tree_leaves(n)
    assert merkle.root(leaves).hex() == V[f"root_{n}"]
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root().hex() == V[f"root_{n}"]


def test_inclusion_2_of_7() -> None:
    leaves = tree_leaves(7)
    path = [bytes.fromhex(h) for h in V["inclusion_2_of_7"].split()]
    assert merkle.inclusion_path(2, leaves) == path
    merkle.verify_inclusion(2, 7, leaves[2], path, bytes.fromhex(V["root_7"]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(3, 7, leaves[2], path, bytes.fromhex(V["root_7"]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(2, 7, leaves[2], path[:-1], bytes.fromhex(V["root_7"]))


def test_consistency_3_to_7() -> None:
    leaves = tree_leaves(7)
    proof = [bytes.fromhex(h) for h in V["consistency_3_to_7"].split()]
    assert merkle.consistency_proof(3, leaves) == proof
    merkle.verify_consistency(3, 7, bytes.fromhex(V["root_3"]), bytes.fromhex(V["root_7"]), proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(3, 7, bytes.fromhex(V["root_2"]), bytes.fromhex(V["root_7"]), proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(3, 7, bytes.fromhex(V["root_3"]), bytes.fromhex(V["root_7"]), proof[:-1])


def test_entry_0() -> None:
    data = V["entry_0_bytes"].encode()
    assert merkle.leaf_hash(data).hex() == V["entry_0_hash"]
    # the bytes are exactly the canonical encoding of what they hold
    assert canonical.encode(canonical.parse(data)) == data
    assert data.startswith(b'{"actor":')


def test_checkpoint_key_and_signature() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(V["checkpoint_key_seed"]))
    name = V["checkpoint_key_name"]
    assert note.verifier_for(name, key) == V["checkpoint_verifier"]
    parsed = verify.parse_key(V["checkpoint_verifier"])
    assert parsed.name == name
    root = base64.b64encode(bytes.fromhex(V["checkpoint_root"])).decode()
    body = f"{name}\n{V['checkpoint_size']}\n{root}\n"
    line = note.sign_note(body, name, key)
    assert line == V["checkpoint_signature_line"] + "\n"
    cp = verify.verify_checkpoint(body + "\n" + line, V["checkpoint_verifier"], origin=name)
    assert cp.size == int(V["checkpoint_size"])
    assert cp.root.hex() == V["checkpoint_root"]


@pytest.mark.parametrize("given,expected", canonical_cases())
def test_canonical_vectors(given: str, expected: str) -> None:
    if expected.startswith("refused "):
        _, code, pointer = expected.split(" ", 2)
        with pytest.raises(canonical.CanonicalError) as e:
            canonical.parse(given)
        assert (e.value.code, e.value.pointer) == (code, pointer)
    else:
        assert canonical.dumps(canonical.parse(given)) == expected


def test_export_vector_verifies() -> None:
    data = doc_block("export").encode()
    report = verify.verify_export(data, V["checkpoint_verifier"])
    assert (report.log, report.from_index, report.to_index, report.checkpoints) == (
        "warden.example/log/acme", 0, 3, 2,
    )
    assert report.keys == [V["checkpoint_verifier"]]


def test_export_vector_refuses_another_key() -> None:
    from ledgerkit import make_signer

    data = doc_block("export").encode()
    with pytest.raises(verify.VerificationError) as e:
        verify.verify_export(data, make_signer(7, "warden.example/log/acme").verifier)
    assert e.value.index == 1  # the first checkpoint covers entries 0 and 1
    assert "not a trusted key" in str(e.value)

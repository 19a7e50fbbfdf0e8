"""The ledger's Merkle tree: RFC 9162 section 2.1 with BLAKE3 as ``H``.

Leaves are ``H(0x00 || entry bytes)``, interior nodes ``H(0x01 || left ||
right)``, the empty tree ``H("")``. Inclusion and consistency proofs are
verified with the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2, and
can be produced (sections 2.1.3.1 and 2.1.4.1) for tests and tooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import blake3

__all__ = [
    "H",
    "leaf_hash",
    "node_hash",
    "empty_root",
    "root",
    "inclusion_path",
    "consistency_proof",
    "root_from_inclusion",
    "verify_inclusion",
    "verify_consistency",
    "Frontier",
    "ProofError",
]


class ProofError(ValueError):
    """A proof that does not verify, with the reason."""


def H(data: bytes) -> bytes:  # noqa: N802 - the document's name
    """BLAKE3 with a 32-byte output."""
    return blake3.blake3(data).digest()


def leaf_hash(entry: bytes) -> bytes:
    """An entry's hash: ``H(0x00 || bytes)``."""
    return H(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: ``H(0x01 || left || right)``."""
    return H(b"\x01" + left + right)


def empty_root() -> bytes:
    return H(b"")


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` of the given leaf hashes."""
    n = len(leaves)
    if n == 0:
        return empty_root()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """``PATH(m, D[n])`` (RFC 9162 2.1.3.1) for leaf ``index``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is outside a tree of {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_path(index, leaves[:k]) + [root(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [root(leaves[:k])]


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """``PROOF(m, D[n])`` (RFC 9162 2.1.4.1)."""
    n = len(leaves)
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from {m} to {n}")

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [root(d)]
        k = _split(n)
        if m <= k:
            return subproof(m, d[:k], complete) + [root(d[k:])]
        return subproof(m - k, d[k:], False) + [root(d[:k])]

    return subproof(m, leaves, True)


def root_from_inclusion(index: int, tree_size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root a leaf and its inclusion path yield (RFC 9162 2.1.3.2).

    Raises :class:`ProofError` when the path cannot belong to a tree of
    ``tree_size`` (wrong length, index past the end).
    """
    if index < 0 or index >= tree_size:
        raise ProofError(f"index {index} is not below the tree size {tree_size}")
    fn = index
    sn = tree_size - 1
    r = leaf
    for p in path:
        if len(p) != 32:
            raise ProofError("a proof hash is not 32 bytes")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree needs")
    return r


def verify_inclusion(index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes) -> None:
    """Raises :class:`ProofError` unless ``path`` proves ``leaf`` at ``index``."""
    if root_from_inclusion(index, tree_size, leaf, path) != expected_root:
        raise ProofError("the inclusion proof does not yield the checkpoint's root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raises :class:`ProofError` when it fails."""
    if first > second:
        raise ProofError(f"tree size {first} is larger than {second}")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("equal sizes with different roots")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees need")
    if fr != first_root:
        raise ProofError("the consistency proof does not yield the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not yield the second root")


class Frontier:
    """An append-only tree's complete subtrees (largest first), from which
    the root of every prefix is computed as leaves are appended."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        sizes = [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        if len(sizes) != len(hashes):
            raise ProofError(
                f"a frontier for {size} leaves has {len(sizes)} subtree hashes, not {len(hashes)}"
            )
        self.size = size
        self._nodes: list[tuple[int, bytes]] = list(zip(sizes, hashes))

    def append(self, leaf: bytes) -> None:
        self._nodes.append((1, leaf))
        self.size += 1
        while len(self._nodes) >= 2 and self._nodes[-1][0] == self._nodes[-2][0]:
            (s, right), (_, left) = self._nodes.pop(), self._nodes.pop()
            self._nodes.append((s * 2, node_hash(left, right)))

    def root(self) -> bytes:
        if not self._nodes:
            return empty_root()
        r = self._nodes[-1][1]
        for _, h in reversed(self._nodes[:-1]):
            r = node_hash(h, r)
        return r

    def hashes(self) -> list[bytes]:
        return [h for _, h in self._nodes]

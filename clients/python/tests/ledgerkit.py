"""Test helpers: the ledger specification's own document, and a small
writer of logs, receipts and export files signed with test keys, so the
verifier can be tried on good evidence and on every kind of tampering."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warden import canonical, merkle, note

HERE = Path(__file__).resolve().parent
CLIENT_ROOT = HERE.parent
REPO_ROOT = CLIENT_ROOT.parent.parent
LEDGER_FORMAT = REPO_ROOT / "docs" / "ledger-format.md"


def doc_block(kind: str) -> str:
    """The body of the fenced block ```kind in docs/ledger-format.md."""
    text = LEDGER_FORMAT.read_text(encoding="utf-8")
    m = re.search(r"^```" + re.escape(kind) + r"\n(.*?)^```", text, re.S | re.M)
    assert m, f"docs/ledger-format.md has no ```{kind} block"
    return m.group(1)


def vectors() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in doc_block("vectors").splitlines():
        if line.strip():
            name, _, value = line.partition(" = ")
            out[name.strip()] = value
    return out


def canonical_cases() -> list[tuple[str, str]]:
    cases = []
    for line in doc_block("canonical").splitlines():
        if line.strip():
            given, _, expected = line.partition(" => ")
            cases.append((given, expected))
    return cases


@dataclass
class Signer:
    name: str
    key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def verifier(self) -> str:
        return note.verifier_for(self.name, self.key)


def checkpoint_text(origin: str, size: int, root: bytes, signers: Sequence[Signer]) -> str:
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    return body + "\n" + "".join(note.sign_note(body, s.name, s.key) for s in signers)


@dataclass
class Log:
    """An in-memory log written as Warden's specification says."""

    origin: str
    signer: Signer
    entries: list[bytes] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    # (size, checkpoint text) in order
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    retired: list[Signer] = field(default_factory=list)

    def append(self, kind: str, payload: Any, actor: str = "system", ts: int | None = None) -> int:
        index = len(self.entries)
        prev = self.leaves[-1].hex() if self.leaves else "0" * 64
        obj = {
            "index": index,
            "ts": ts if ts is not None else 1795308111311 + index,
            "kind": kind,
            "actor": actor,
            "payload": payload,
            "prev": prev,
        }
        data = canonical.encode(obj)
        self.entries.append(data)
        self.leaves.append(merkle.leaf_hash(data))
        return index

    def seal(self, extra_signers: Sequence[Signer] = ()) -> str:
        """Signs a checkpoint of the current size (the end of a batch)."""
        size = len(self.entries)
        text = checkpoint_text(self.origin, size, merkle.root(self.leaves), [self.signer, *extra_signers])
        self.checkpoints.append((size, text))
        return text

    def rotate(self, new: Signer) -> int:
        """A key rotation: the entry, and its batch's checkpoint signed by both."""
        old = self.signer
        index = self.append("ledger.key.rotate", {"next": new.verifier, "previous": old.verifier})
        self.signer = new
        self.retired.append(old)
        self.seal(extra_signers=[old])
        return index

    def receipt(self, index: int, size: int | None = None) -> dict[str, Any]:
        size = size if size is not None else len(self.entries)
        text = next(t for s, t in self.checkpoints if s == size)
        return {
            "log": self.origin,
            "index": index,
            "entry_hash": self.leaves[index].hex(),
            "tree_size": size,
            "checkpoint": text,
            "inclusion": [h.hex() for h in merkle.inclusion_path(index, self.leaves[:size])],
        }

    def export(self, start: int = 0, end: int | None = None) -> bytes:
        end = end if end is not None else len(self.entries)
        frontier = merkle.Frontier()
        for leaf in self.leaves[:start]:
            frontier.append(leaf)
        keys = [
            {"verifier": s.verifier, "created_at": 1795308000000, "retired_at": 1795308100000}
            for s in self.retired
        ] + [{"verifier": self.signer.verifier, "created_at": 1795308000000, "retired_at": None}]
        header = {
            "format": "warden-ledger-export/1",
            "log": self.origin,
            "from": start,
            "to": end,
            "prev": self.leaves[start - 1].hex() if start else "0" * 64,
            "frontier": [h.hex() for h in frontier.hashes()],
            "keys": keys,
            "exported_at": 1795308222000,
        }
        lines = [json.dumps(header, separators=(",", ":"))]
        by_size = dict(self.checkpoints)
        if start in by_size and start > 0:
            lines.append(_cp_line(by_size[start]))
        for i in range(start, end):
            lines.append(self.entries[i].decode())
            if i + 1 in by_size:
                lines.append(_cp_line(by_size[i + 1]))
        return ("\n".join(lines) + "\n").encode()


def _cp_line(text: str) -> str:
    return json.dumps({"checkpoint": text}, ensure_ascii=False, separators=(",", ":"))


def make_signer(n: int = 0, name: str = "warden.test") -> Signer:
    return Signer.from_seed(name, bytes([n]) * 32)


def sample_log(entries: int = 6, batch: int = 2, signer: Signer | None = None) -> Log:
    log = Log("warden.test/log/ten_01", signer or make_signer())
    log.append("tenant.create", {"name": "acme", "platform": False, "tenant_id": "ten_01"})
    for i in range(1, entries):
        log.append(
            "decision",
            {
                "allow": i % 2 == 0,
                "decision_id": f"dec_{i:02d}",
                "captured": {"now_ns": 1795308111311231335 + i},
                "input": {"amount": 100 * i, "note": "caf\u00e9 \u2603", "ratio": 0.1 * i},
            },
            actor="token:tok_01 (ci)",
        )
        if (i + 1) % batch == 0:
            log.seal()
    if not log.checkpoints or log.checkpoints[-1][0] != len(log.entries):
        log.seal()
    return log


def rotated_log() -> tuple[Log, str, str]:
    """A log whose signing key is rotated at entry 2 (the checkpoint of its
    batch, size 3, is signed by both keys): the log, the old and the new
    verifier keys."""
    old, new = make_signer(1), make_signer(2)
    log = Log("warden.test/log/t", old)
    log.append("tenant.create", {"name": "acme"})
    log.append("decision", {"n": 1})
    log.seal()
    log.rotate(new)
    log.append("decision", {"n": 3})
    log.seal()
    log.append("decision", {"n": 4})
    log.seal()
    return log, old.verifier, new.verifier

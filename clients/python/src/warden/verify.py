"""Offline verification of Warden's evidence: receipts and export files.

Implemented from the ledger format specification alone
(``docs/ledger-format.md``): canonical entry bytes, the BLAKE3 hash chain,
the RFC 9162 Merkle tree, C2SP checkpoints signed with Ed25519, and key
rotation entries. Nothing here talks to a server: give it the file (or the
receipt) and the verifier key(s) you trust.

Every failure raises :class:`warden.VerificationError` naming the entry
index (and the file's line) at fault and what failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Union

from . import canonical, merkle
from .errors import VerificationError
from .note import Checkpoint, NoteError, VerifierKey, parse_checkpoint, parse_key

__all__ = [
    "parse_key",
    "parse_keys",
    "verify_receipt",
    "verify_export",
    "verify_checkpoint",
    "verify_consistency",
    "ReceiptReport",
    "ExportReport",
    "VerifierKey",
    "VerificationError",
    "EXPORT_FORMAT",
    "ENTRY_MAX_DEPTH",
]

EXPORT_FORMAT = "warden-ledger-export/1"
#: A payload nests at most 100 levels; the entry object adds one more.
ENTRY_MAX_DEPTH = 101
ZERO_HASH = "0" * 64
ENTRY_MEMBERS = frozenset({"actor", "index", "kind", "payload", "prev", "ts"})
ROTATE_KIND = "ledger.key.rotate"

KeyLike = Union[str, VerifierKey, Mapping[str, Any]]
Keys = Union[KeyLike, Sequence[KeyLike]]
ExportSource = Union[str, "os.PathLike[str]", bytes, bytearray, BinaryIO, Iterable[Union[str, bytes]]]


def _one_key(k: KeyLike) -> VerifierKey:
    if isinstance(k, VerifierKey):
        return k
    if isinstance(k, str):
        return parse_key(k)
    if isinstance(k, Mapping) and isinstance(k.get("verifier"), str):
        return parse_key(k["verifier"])
    raise TypeError(f"a key is a verifier key text, a VerifierKey or a mapping with 'verifier', not {k!r}")


def parse_keys(keys: Keys) -> list[VerifierKey]:
    """Normalises what callers pass as trusted keys: one verifier key text,
    a list of them, :class:`VerifierKey` objects, or the list
    ``Client.ledger_keys()`` returns (mappings with ``verifier``)."""
    if isinstance(keys, (str, VerifierKey, Mapping)):
        items: Sequence[KeyLike] = [keys]
    else:
        items = keys
    out: list[VerifierKey] = []
    for k in items:
        try:
            key = _one_key(k)
        except NoteError as e:
            raise VerificationError(f"invalid verifier key: {e}") from None
        if key not in out:
            out.append(key)
    if not out:
        raise VerificationError("no trusted key given")
    return out


def _hex32(value: Any, what: str, index: int | None = None, line: int | None = None) -> bytes:
    if (
        not isinstance(value, str)
        or len(value) != 64
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise VerificationError(f"{what} is not 64 lower-case hex digits", index=index, line=line)
    return bytes.fromhex(value)


def _int(value: Any, what: str, index: int | None = None, line: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationError(f"{what} is not a non-negative integer", index=index, line=line)
    return value


# --------------------------------------------------------------------------
# Checkpoints and receipts


def verify_checkpoint(text: str, keys: Keys, *, origin: str | None = None) -> Checkpoint:
    """Parses a checkpoint and checks that a trusted key signed it (and,
    when given, that it names ``origin``)."""
    trusted = parse_keys(keys)
    try:
        cp = parse_checkpoint(text)
    except NoteError as e:
        raise VerificationError(f"malformed checkpoint: {e}") from None
    if origin is not None and cp.origin != origin:
        raise VerificationError(f"the checkpoint is of log {cp.origin!r}, not {origin!r}")
    if not cp.note.signed_by(trusted):
        names = ", ".join(f"{s.name} ({s.key_id.hex()})" for s in cp.note.signatures)
        raise VerificationError(f"no trusted key signed the checkpoint of size {cp.size} (signed by: {names})")
    return cp


@dataclass(frozen=True)
class ReceiptReport:
    """What a verified receipt proves."""

    log: str
    index: int
    tree_size: int
    entry_hash: str
    root: str
    signed_by: list[str]
    entry_checked: bool = False


def verify_receipt(
    decision_or_receipt: Mapping[str, Any],
    key_text: Keys,
    *,
    entry: bytes | str | None = None,
) -> ReceiptReport:
    """Verifies a receipt offline: the checkpoint is signed by a trusted
    key and names the receipt's log and tree size, and ``entry_hash`` with
    ``inclusion`` yields the checkpoint's root (RFC 9162 2.1.3.2).

    Pass a decision (or any answer with a ``receipt`` member) or the
    receipt itself. Given the entry's exact bytes (``entry``, e.g. from
    ``GET /v1/ledger/entries/{index}`` or an export line), also checks
    that they are canonical, name the receipt's index and hash to
    ``entry_hash``.
    """
    trusted = parse_keys(key_text)
    receipt: Any = decision_or_receipt
    if "receipt" in decision_or_receipt:
        receipt = decision_or_receipt["receipt"]
        if receipt is None:
            raise VerificationError("the answer carries no receipt")
    if not isinstance(receipt, Mapping):
        raise VerificationError("the receipt is not an object")
    raw_index = receipt.get("index")
    index = raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else None
    index = _int(receipt.get("index"), "the receipt's index", index)
    log = receipt.get("log")
    if not isinstance(log, str) or not log:
        raise VerificationError("the receipt names no log", index=index)
    tree_size = _int(receipt.get("tree_size"), "the receipt's tree_size", index)
    leaf = _hex32(receipt.get("entry_hash"), "the receipt's entry_hash", index)
    inclusion = receipt.get("inclusion")
    if not isinstance(inclusion, list):
        raise VerificationError("the receipt's inclusion is not a list", index=index)
    path = [_hex32(h, f"inclusion hash {i}", index) for i, h in enumerate(inclusion)]
    text = receipt.get("checkpoint")
    if not isinstance(text, str):
        raise VerificationError("the receipt carries no checkpoint", index=index)
    try:
        cp = parse_checkpoint(text)
    except NoteError as e:
        raise VerificationError(f"malformed checkpoint: {e}", index=index) from None
    if cp.origin != log:
        raise VerificationError(f"the checkpoint is of log {cp.origin!r}, the receipt of {log!r}", index=index)
    if cp.size != tree_size:
        raise VerificationError(
            f"the checkpoint is of tree size {cp.size}, the receipt says {tree_size}", index=index
        )
    signers = cp.note.signed_by(trusted)
    if not signers:
        names = ", ".join(f"{s.name} ({s.key_id.hex()})" for s in cp.note.signatures)
        raise VerificationError(f"no trusted key signed the receipt's checkpoint (signed by: {names})", index=index)
    try:
        merkle.verify_inclusion(index, tree_size, leaf, path, cp.root)
    except merkle.ProofError as e:
        raise VerificationError(f"inclusion proof: {e}", index=index) from None
    checked = False
    if entry is not None:
        data = entry.encode("utf-8") if isinstance(entry, str) else bytes(entry)
        if data.endswith(b"\n"):
            data = data[:-1]
        obj = _check_entry_bytes(data, index, None)
        if obj["index"] != index:
            raise VerificationError(f"the entry is entry {obj['index']}, the receipt is of {index}", index=index)
        if merkle.leaf_hash(data) != leaf:
            raise VerificationError("the entry's bytes do not hash to the receipt's entry_hash", index=index)
        decision_id = decision_or_receipt.get("decision_id")
        payload = obj.get("payload")
        if (
            isinstance(decision_id, str)
            and isinstance(payload, dict)
            and "decision_id" in payload
            and payload["decision_id"] != decision_id
        ):
            raise VerificationError(
                f"the entry records decision {payload['decision_id']}, not {decision_id}", index=index
            )
        checked = True
    return ReceiptReport(
        log=log,
        index=index,
        tree_size=tree_size,
        entry_hash=leaf.hex(),
        root=cp.root.hex(),
        signed_by=[k.text for k in signers],
        entry_checked=checked,
    )


def verify_consistency(view: Mapping[str, Any], keys: Keys) -> tuple[Checkpoint, Checkpoint]:
    """Verifies ``GET /v1/ledger/consistency``'s answer offline: both
    checkpoints signed by a trusted key, of the log and sizes named, and
    the proof linking their roots (RFC 9162 2.1.4.2). Returns the two
    checkpoints."""
    log = view.get("log")
    first = _int(view.get("from"), "from")
    second = _int(view.get("to"), "to")
    texts = (view.get("from_checkpoint"), view.get("to_checkpoint"))
    if not isinstance(texts[0], str) or not isinstance(texts[1], str):
        raise VerificationError("the answer does not carry both checkpoints")
    a = verify_checkpoint(texts[0], keys, origin=log if isinstance(log, str) else None)
    b = verify_checkpoint(texts[1], keys, origin=log if isinstance(log, str) else None)
    if (a.size, b.size) != (first, second):
        raise VerificationError(f"the checkpoints are of sizes {a.size} and {b.size}, not {first} and {second}")
    raw = view.get("proof")
    if not isinstance(raw, list):
        raise VerificationError("the proof is not a list")
    proof = [_hex32(h, f"proof hash {i}") for i, h in enumerate(raw)]
    try:
        merkle.verify_consistency(first, second, a.root, b.root, proof)
    except merkle.ProofError as e:
        raise VerificationError(f"consistency proof from {first} to {second}: {e}") from None
    return a, b


# --------------------------------------------------------------------------
# Export files


def _check_entry_bytes(data: bytes, index: int | None, line: int | None) -> dict[str, Any]:
    """Parses an entry's bytes and checks they are exactly canonical."""
    try:
        obj = canonical.parse(data, max_depth=ENTRY_MAX_DEPTH)
    except canonical.CanonicalError as e:
        if e.code == "json_too_deep":
            raise VerificationError(
                "the entry is too deep (a payload nests at most 100 levels)", index=index, line=line
            ) from None
        raise VerificationError(f"the entry is refused: {e}", index=index, line=line) from None
    if not isinstance(obj, dict):
        raise VerificationError("the entry is not a JSON object", index=index, line=line)
    members = set(obj)
    if members != ENTRY_MEMBERS:
        missing = sorted(ENTRY_MEMBERS - members)
        extra = sorted(members - ENTRY_MEMBERS)
        raise VerificationError(
            f"the entry's members are wrong (missing {missing}, unexpected {extra})", index=index, line=line
        )
    try:
        again = canonical.encode(obj)
    except canonical.CanonicalError as e:
        raise VerificationError(f"the entry cannot be encoded canonically: {e}", index=index, line=line) from None
    if again != data:
        raise VerificationError(
            "the entry's bytes are not the canonical encoding of what they hold", index=index, line=line
        )
    _int(obj["index"], "the entry's index", index, line)
    _int(obj["ts"], "the entry's ts", index, line)
    if not isinstance(obj["kind"], str) or not isinstance(obj["actor"], str):
        raise VerificationError("the entry's kind and actor are strings", index=index, line=line)
    _hex32(obj["prev"], "the entry's prev", index, line)
    return obj


@dataclass(frozen=True)
class Rotation:
    """A ``ledger.key.rotate`` entry of the export."""

    index: int
    previous: VerifierKey
    next: VerifierKey


@dataclass
class _SeenCheckpoint:
    line: int
    size: int
    checkpoint: Checkpoint
    previous_size: int


@dataclass(frozen=True)
class ExportReport:
    """What a verified export proves."""

    log: str
    from_index: int
    to_index: int
    entries: int
    checkpoints: int
    tree_size: int
    root: str
    keys: list[str] = field(default_factory=list)
    rotations: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def _lines(source: ExportSource) -> Iterator[bytes]:
    """The file's lines as bytes, each still ending in its newline (a last
    line without one is yielded as it is and refused by the verifier)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:
                yield data[start:]
                return
            yield data[start : end + 1]
            start = end + 1
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from f
        return
    for item in source:
        chunk = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        # Lines given without their newline (e.g. from splitlines()) are taken as lines.
        if not chunk.endswith(b"\n"):
            chunk += b"\n"
        yield chunk


def verify_export(file: ExportSource, keys: Keys) -> ExportReport:
    """Verifies an export file offline, as ``warden verify FILE --key KEY``.

    ``file`` is a path, the file's bytes, a binary file object or an
    iterable of lines. Checks the header; each entry's bytes are canonical,
    its ``index`` follows and its ``prev`` is the previous entry's hash;
    every checkpoint's root is the root recomputed from the frontier and
    the entries, its origin the log's and its signatures follow the key
    rules (the rotation batch's checkpoint signed by both keys, later ones
    by the next key); at the end all ``to - from`` entries are present, the
    last is covered by a checkpoint and every signing key is trusted
    (given, or linked to a given key by a rotation entry).
    """
    trusted_given = parse_keys(keys)
    lines = _lines(file)
    header_line = next(lines, None)
    if header_line is None:
        raise VerificationError("the file is empty", line=1)
    header = _parse_header(header_line)
    log: str = header["log"]
    start: int = header["from"]
    end: int = header["to"]
    header_keys: list[VerifierKey] = header["keys"]

    frontier = merkle.Frontier(start, header["frontier"])
    prev_hash: bytes = header["prev"]
    expected = start
    seen: list[_SeenCheckpoint] = []
    rotations: list[Rotation] = []
    kinds: dict[str, int] = {}
    last_line_was_checkpoint = False
    line_no = 1
    last_checkpoint_size = start
    for raw in lines:
        line_no += 1
        if not raw.endswith(b"\n"):
            raise VerificationError("the last line does not end with a newline", line=line_no)
        data = raw[:-1]
        if data.startswith(b'{"checkpoint":'):
            cp = _parse_checkpoint_line(data, line_no, expected)
            size = frontier.size
            if cp.origin != log:
                raise VerificationError(
                    f"the checkpoint is of log {cp.origin!r}, the file of {log!r}",
                    index=size - 1 if size else None,
                    line=line_no,
                )
            if cp.size != size:
                raise VerificationError(
                    f"the checkpoint is of tree size {cp.size}, but it follows {size} entries",
                    index=size - 1 if size else None,
                    line=line_no,
                )
            if cp.root != frontier.root():
                raise VerificationError(
                    f"the checkpoint's root for tree size {size} is not the root of the entries",
                    index=size - 1 if size else None,
                    line=line_no,
                )
            if seen and seen[-1].size == size:
                raise VerificationError(
                    f"a second checkpoint of tree size {size} in a row", index=size - 1 if size else None, line=line_no
                )
            seen.append(_SeenCheckpoint(line=line_no, size=size, checkpoint=cp, previous_size=last_checkpoint_size))
            last_checkpoint_size = size
            last_line_was_checkpoint = True
            continue
        if not data.startswith(b'{"actor":'):
            raise VerificationError(
                "neither an entry (which begins with {\"actor\":) nor a checkpoint line", index=expected, line=line_no
            )
        if expected >= end:
            raise VerificationError(
                f"an entry past the end of the range [{start}, {end})", index=expected, line=line_no
            )
        obj = _check_entry_bytes(data, expected, line_no)
        if obj["index"] != expected:
            raise VerificationError(
                f"the entry's index is {obj['index']}, expected {expected} (entries missing or reordered)",
                index=expected,
                line=line_no,
            )
        if bytes.fromhex(obj["prev"]) != prev_hash:
            what = f"the hash of entry {expected - 1}" if expected else "64 zeros"
            raise VerificationError(f"prev does not match {what}", index=expected, line=line_no)
        leaf = merkle.leaf_hash(data)
        frontier.append(leaf)
        prev_hash = leaf
        kind = obj["kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == ROTATE_KIND:
            rotations.append(_parse_rotation(obj, expected, line_no))
        expected += 1
        last_line_was_checkpoint = False

    if expected != end:
        raise VerificationError(
            f"the file holds {expected - start} entries, the header promises {end - start} ([{start}, {end}))",
            index=expected if expected < end else None,
            line=line_no,
        )
    if not last_line_was_checkpoint or not seen or seen[-1].size != end:
        raise VerificationError("the last entry is not covered by a checkpoint", index=end - 1, line=line_no)

    used = _check_signatures(seen, rotations, trusted_given, header_keys)
    return ExportReport(
        log=log,
        from_index=start,
        to_index=end,
        entries=end - start,
        checkpoints=len(seen),
        tree_size=end,
        root=frontier.root().hex(),
        keys=[k.text for k in used],
        rotations=[r.index for r in rotations],
        kinds=kinds,
    )


def _parse_header(raw: bytes) -> dict[str, Any]:
    if not raw.endswith(b"\n"):
        raise VerificationError("the header line does not end with a newline", line=1)
    try:
        h = canonical.parse(raw[:-1])
    except canonical.CanonicalError as e:
        raise VerificationError(f"the header is not valid JSON: {e}", line=1) from None
    if not isinstance(h, dict):
        raise VerificationError("the header is not a JSON object", line=1)
    if h.get("format") != EXPORT_FORMAT:
        raise VerificationError(f"the header's format is {h.get('format')!r}, not {EXPORT_FORMAT!r}", line=1)
    log = h.get("log")
    if not isinstance(log, str) or not log:
        raise VerificationError("the header names no log", line=1)
    start = _int(h.get("from"), "the header's from", None, 1)
    end = _int(h.get("to"), "the header's to", None, 1)
    if start >= end:
        raise VerificationError(f"the header's range [{start}, {end}) is empty", line=1)
    prev = _hex32(h.get("prev"), "the header's prev", None, 1)
    if start == 0 and prev != bytes(32):
        raise VerificationError("the header's prev is not 64 zeros for an export from entry 0", line=1)
    raw_frontier = h.get("frontier")
    if not isinstance(raw_frontier, list):
        raise VerificationError("the header's frontier is not a list", line=1)
    frontier = [_hex32(x, f"frontier hash {i}", None, 1) for i, x in enumerate(raw_frontier)]
    if len(frontier) != bin(start).count("1"):
        raise VerificationError(
            f"the header's frontier holds {len(frontier)} hashes; {start} leaves make {bin(start).count('1')} subtrees",
            line=1,
        )
    if start % 2 == 1 and frontier[-1] != prev:
        raise VerificationError(
            f"the header's prev is not the last frontier hash (the leaf of entry {start - 1})", line=1
        )
    raw_keys = h.get("keys")
    if not isinstance(raw_keys, list):
        raise VerificationError("the header's keys is not a list", line=1)
    keys: list[VerifierKey] = []
    for i, k in enumerate(raw_keys):
        if not isinstance(k, dict) or not isinstance(k.get("verifier"), str):
            raise VerificationError(f"the header's key {i} has no verifier", line=1)
        try:
            keys.append(parse_key(k["verifier"]))
        except NoteError as e:
            raise VerificationError(f"the header's key {i} is invalid: {e}", line=1) from None
    return {"log": log, "from": start, "to": end, "prev": prev, "frontier": frontier, "keys": keys}


def _parse_checkpoint_line(data: bytes, line: int, next_index: int) -> Checkpoint:
    at = next_index - 1 if next_index else None
    try:
        obj = canonical.parse(data)
    except canonical.CanonicalError as e:
        raise VerificationError(f"the checkpoint line is not valid JSON: {e}", index=at, line=line) from None
    if not isinstance(obj, dict) or set(obj) != {"checkpoint"} or not isinstance(obj["checkpoint"], str):
        raise VerificationError('a checkpoint line is {"checkpoint": "<signed note>"}', index=at, line=line)
    try:
        return parse_checkpoint(obj["checkpoint"])
    except NoteError as e:
        raise VerificationError(f"malformed checkpoint: {e}", index=at, line=line) from None


def _parse_rotation(obj: dict[str, Any], index: int, line: int) -> Rotation:
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise VerificationError("a key rotation's payload is not an object", index=index, line=line)
    try:
        previous = parse_key(str(payload.get("previous")))
        nxt = parse_key(str(payload.get("next")))
    except NoteError as e:
        raise VerificationError(f"a key rotation names an invalid key: {e}", index=index, line=line) from None
    return Rotation(index=index, previous=previous, next=nxt)


def _check_signatures(
    seen: list[_SeenCheckpoint],
    rotations: list[Rotation],
    given: list[VerifierKey],
    header_keys: list[VerifierKey],
) -> list[VerifierKey]:
    """Applies the key rules to every checkpoint; returns the keys used."""
    candidates: list[VerifierKey] = []
    for k in [*given, *header_keys, *(r.previous for r in rotations), *(r.next for r in rotations)]:
        if k not in candidates:
            candidates.append(k)
    # Trust: the given keys, and every key linked to a trusted one by a
    # rotation of this file (each rotation's handover checkpoint is checked
    # below to carry both signatures).
    trusted = set(given)
    changed = True
    while changed:
        changed = False
        for r in rotations:
            if (r.previous in trusted) != (r.next in trusted):
                trusted.update((r.previous, r.next))
                changed = True
    later_keys = {r.next for r in rotations}
    used: list[VerifierKey] = []

    def describe(keys: Iterable[VerifierKey]) -> str:
        names = [f"{k.name}+{k.key_id_hex}" for k in keys]
        return ", ".join(names) if names else "no known key"

    for s in seen:
        cp = s.checkpoint
        at = s.size - 1 if s.size else None
        signers = cp.note.signed_by(candidates)
        covered = [r for r in rotations if r.index < s.size]
        handovers = [r for r in covered if r.index >= s.previous_size]
        accepted: list[VerifierKey]
        for r in handovers:
            if r.previous not in signers or r.next not in signers:
                raise VerificationError(
                    f"the checkpoint of tree size {s.size}, which covers the key rotation at entry {r.index}, "
                    f"must be signed by both {r.previous.name}+{r.previous.key_id_hex} and "
                    f"{r.next.name}+{r.next.key_id_hex} (signed by: {describe(signers)})",
                    index=at,
                    line=s.line,
                )
        if covered:
            current = covered[-1].next
            if current not in signers:
                retired = [k for k in signers if k != current]
                why = (
                    f"it is signed only by retired key(s) {describe(retired)}"
                    if retired
                    else "it carries no valid signature of it"
                )
                raise VerificationError(
                    f"the checkpoint of tree size {s.size} comes after the key rotation at entry "
                    f"{covered[-1].index} and must be signed by {current.name}+{current.key_id_hex}; {why}",
                    index=at,
                    line=s.line,
                )
            accepted = [current] + [r.previous for r in handovers]
        elif rotations:
            first = rotations[0].previous
            earlier = [k for k in signers if k not in later_keys]
            if first in signers:
                accepted = [first]
            elif earlier:
                accepted = earlier
            else:
                raise VerificationError(
                    f"the checkpoint of tree size {s.size} comes before the key rotation at entry "
                    f"{rotations[0].index} and must be signed by {first.name}+{first.key_id_hex} "
                    f"(signed by: {describe(signers)})",
                    index=at,
                    line=s.line,
                )
        else:
            if not signers:
                names = ", ".join(f"{x.name} ({x.key_id.hex()})" for x in cp.note.signatures)
                raise VerificationError(
                    f"the checkpoint of tree size {s.size} carries no valid signature of a known key "
                    f"(signature lines: {names})",
                    index=at,
                    line=s.line,
                )
            accepted = signers
        if not any(k in trusted for k in accepted):
            raise VerificationError(
                f"the checkpoint of tree size {s.size} is signed by {describe(accepted)}, which is not a "
                "trusted key (none given, nor linked to a given key by a rotation in this file)",
                index=at,
                line=s.line,
            )
        for k in accepted:
            if k in trusted and k not in used:
                used.append(k)
    return used

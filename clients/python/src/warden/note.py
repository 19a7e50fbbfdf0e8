"""C2SP signed notes with Ed25519, and the checkpoints they carry.

A verifier key is the text ``<name>+<hex key id>+<base64(0x01 || public
key)>``; the key id is the first four bytes of ``SHA-256(name || "\\n" ||
0x01 || public key)``. A signed note is its body, an empty line, then one
line per signature: ``— <name> <base64(key id || signature)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "NoteError",
    "VerifierKey",
    "Signature",
    "SignedNote",
    "Checkpoint",
    "parse_key",
    "key_id",
    "parse_note",
    "parse_checkpoint",
    "sign_note",
    "verifier_for",
]

ALG_ED25519 = 0x01
EM_DASH = "\u2014"


class NoteError(ValueError):
    """A key, note or checkpoint that is malformed."""


def key_id(name: str, public_key: bytes) -> bytes:
    """The four-byte key id of an Ed25519 key under ``name``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key."""

    name: str
    key_id: bytes
    public_key: bytes
    text: str

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return self.text


def parse_key(text: str) -> VerifierKey:
    """Parses ``name+keyid+base64(0x01 || key)``; raises :class:`NoteError`."""
    text = text.strip()
    name, sep, rest = text.partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not sep or not sep2:
        raise NoteError(f"a verifier key is <name>+<hex key id>+<base64 key>, not {text!r}")
    if not _valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise NoteError(f"the key id {hex_id!r} is not 8 lower-case hex digits")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the key is not standard base64") from None
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("the key is not an Ed25519 key (0x01 and 32 bytes)")
    public = raw[1:]
    kid = key_id(name, public)
    if kid.hex() != hex_id:
        raise NoteError(f"the key id {hex_id} does not match the key (expected {kid.hex()})")
    return VerifierKey(name=name, key_id=kid, public_key=public, text=text)


def verifier_for(name: str, private_key: Ed25519PrivateKey) -> str:
    """The verifier key text of a private key under ``name``."""
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    b64 = base64.b64encode(bytes([ALG_ED25519]) + public).decode("ascii")
    return f"{name}+{key_id(name, public).hex()}+{b64}"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    body: str
    signatures: tuple[Signature, ...]

    def signed_by(self, keys: list[VerifierKey] | tuple[VerifierKey, ...]) -> list[VerifierKey]:
        """The keys among ``keys`` whose signature on this note verifies."""
        message = self.body.encode("utf-8")
        good: list[VerifierKey] = []
        for key in keys:
            for sig in self.signatures:
                if sig.name == key.name and sig.key_id == key.key_id and key.verify(message, sig.signature):
                    good.append(key)
                    break
        return good


def parse_note(text: str) -> SignedNote:
    """Splits a signed note into its body and signature lines."""
    if not text.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    at = text.find("\n\n")
    if at < 0:
        raise NoteError("a signed note has an empty line between its body and its signatures")
    body = text[: at + 1]
    sig_lines = text[at + 2 :].split("\n")
    if sig_lines[-1] != "":
        raise NoteError("a signed note ends with a newline")
    sigs: list[Signature] = []
    for line in sig_lines[:-1]:
        if not line.startswith(EM_DASH + " "):
            raise NoteError(f"a signature line starts with an em dash and a space: {line!r}")
        parts = line[2:].split(" ")
        if len(parts) != 2 or not _valid_name(parts[0]):
            raise NoteError(f"a signature line is '— <name> <base64>': {line!r}")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"a signature is not standard base64: {line!r}") from None
        if len(raw) < 5:
            raise NoteError(f"a signature is too short: {line!r}")
        sigs.append(Signature(name=parts[0], key_id=raw[:4], signature=raw[4:]))
    if not sigs:
        raise NoteError("a signed note has at least one signature")
    return SignedNote(body=body, signatures=tuple(sigs))


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Signs a note body (it must end with a newline) under ``name``."""
    if not body.endswith("\n"):
        raise NoteError("a note body ends with a newline")
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sig = private_key.sign(body.encode("utf-8"))
    b64 = base64.b64encode(key_id(name, public) + sig).decode("ascii")
    return f"{EM_DASH} {name} {b64}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A parsed (not yet verified) checkpoint."""

    origin: str
    size: int
    root: bytes
    note: SignedNote
    text: str


def parse_checkpoint(text: str) -> Checkpoint:
    """Parses a checkpoint's signed note: origin, tree size and root."""
    note = parse_note(text)
    lines = note.body.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("a checkpoint body has an origin, a tree size and a root")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("a checkpoint's origin is empty")
    if not size_text.isdigit() or not size_text.isascii() or (size_text != "0" and size_text[0] == "0"):
        raise NoteError(f"a checkpoint's tree size is a decimal number, not {size_text!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("a checkpoint's root is not standard base64") from None
    if len(root) != 32:
        raise NoteError("a checkpoint's root is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root, note=note, text=text)

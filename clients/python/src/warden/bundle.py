"""Building OPA bundles (gzipped tar: a ``.manifest``, ``.rego`` files and
``data.json`` documents) for ``Client.push_bundle``, reproducibly: the same
files give the same bytes."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_bundle", "build_bundle_dir", "read_bundle"]

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
#: What a directory contributes to a bundle.
BUNDLE_SUFFIXES = (".rego", ".json", ".yaml", ".yml")


def build_bundle(
    files: Mapping[str, bytes | str],
    *,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> bytes:
    """A bundle of ``files`` (relative ``/``-separated paths to contents).

    The manifest is ``manifest`` (or the ``.manifest`` among ``files``),
    with ``revision`` and ``roots`` set when given; it goes last, as
    ``opa build`` places it.
    """
    entries: dict[str, bytes] = {}
    base_manifest: dict[str, Any] = {}
    for path, content in files.items():
        clean = _normal(path)
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if clean == MANIFEST:
            loaded = json.loads(data)
            if not isinstance(loaded, dict):
                raise ValueError(".manifest must be a JSON object")
            base_manifest = loaded
            continue
        if clean == SIGNATURES:
            continue
        entries[clean] = data
    if manifest is not None:
        base_manifest = dict(manifest)
    if revision is not None:
        base_manifest["revision"] = revision
    if roots is not None:
        base_manifest["roots"] = list(roots)
    if not any(p.endswith(".rego") for p in entries):
        raise ValueError("a bundle holds at least one .rego file")
    entries[MANIFEST] = json.dumps(base_manifest, separators=(",", ":")).encode("utf-8")
    return _write(entries)


def build_bundle_dir(
    directory: str | os.PathLike[str],
    *,
    revision: str | None = None,
    roots: Sequence[str] | None = None,
) -> bytes:
    """A bundle of a policy directory: its ``.manifest`` and every
    ``.rego``, ``.json`` and ``.yaml`` file below it (hidden files and
    directories skipped)."""
    root = Path(directory)
    files: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file():
            continue
        if rel == MANIFEST:
            files[rel] = path.read_bytes()
            continue
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.suffix in BUNDLE_SUFFIXES:
            files[rel] = path.read_bytes()
    return build_bundle(files, revision=revision, roots=roots)


def read_bundle(data: bytes) -> dict[str, bytes]:
    """The files of a bundle, by path (without the leading ``/``)."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    out[member.name.lstrip("/")] = f.read()
    return out


def _normal(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"invalid bundle path {path!r}")
    return "/".join(parts)


def _write(entries: Mapping[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in entries.items():
            info = tarfile.TarInfo("/" + path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()

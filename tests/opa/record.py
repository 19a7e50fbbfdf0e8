#!/usr/bin/env python3
"""Record real OPA's answers for the differential corpus under tests/opa/cases.

Usage:
    python3 tests/opa/record.py                 re-record every category
    python3 tests/opa/record.py strings regex   re-record some categories
    python3 tests/opa/record.py --check         exit 1 if any expected file would change
    python3 tests/opa/record.py --require-coverage
                                                exit 1 if a non-excluded builtin is never called

Only the standard library and opa_bindings (OPA's Go engine) are used. Numbers
are kept exactly as OPA printed them: the native JSON envelope is parsed with
every number held as its raw text, and written back out unchanged.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opa_bindings import OpaEngine, OpaError
import opa_bindings

ROOT = Path(__file__).resolve().parent
CASES = ROOT / "cases"
EXPECTED = ROOT / "expected"
BUILTINS = ROOT / "builtins.json"

CATEGORY_RE = re.compile(r"^[a-z0-9_]+$")
NO_INPUT = "none"


class Number:
    """A JSON number kept as the exact text it was written with."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text


def parse_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Number, parse_int=Number)


def dump_compact(value: Any) -> str:
    """Serialize for the Go side (input, data): compact, numbers verbatim."""
    if isinstance(value, Number):
        return value.text
    if isinstance(value, dict):
        items = (json.dumps(k, ensure_ascii=False) + ":" + dump_compact(v) for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_compact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def dump_pretty(value: Any, indent: int = 0) -> str:
    """Deterministic 1-space indented JSON, numbers verbatim, not ASCII-escaped."""
    pad = " " * (indent + 1)
    if isinstance(value, Number):
        return value.text
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            pad + json.dumps(k, ensure_ascii=False) + ": " + dump_pretty(v, indent + 1)
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [pad + dump_pretty(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


# --- the corpus ------------------------------------------------------------


@dataclass
class Category:
    name: str
    modules: list[tuple[str, str]]  # (module name, source)
    data: Any = None
    inputs: dict[str, Any] | None = None  # None: the single input "none"
    rules: list[str] = field(default_factory=list)


# A rule head starts at column 0 with its name, optionally after `default`.
# A name followed by `(` is a function (not a document, so not a case).
RULE_HEAD_RE = re.compile(r"^(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*\s*(\(|\[|:=|=|\bif\b|\bcontains\b|\{|$)")
NOT_RULES = {"package", "import", "default", "else", "not", "some", "every", "with", "as", "true", "false", "null"}
PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.]+)\s*$", re.M)


def rule_names(source: str) -> set[str]:
    """Top-level rule names of a module: lines at column 0 that begin a rule head."""
    names: set[str] = set()
    for line in source.splitlines():
        m = RULE_HEAD_RE.match(line)
        if not m or m.group(1) in NOT_RULES or m.group(2) == "(":
            continue
        names.add(m.group(1))
    return names


def load_json_file(path: Path) -> Any:
    return parse_json(path.read_text(encoding="utf-8"))


def load_category(name: str) -> Category:
    single = CASES / f"{name}.rego"
    folder = CASES / name
    if single.is_file():
        modules = [(f"{name}.rego", single.read_text(encoding="utf-8"))]
        extra = CASES / f"{name}.json"
        spec = load_json_file(extra) if extra.is_file() else {}
        data, inputs = spec.get("data"), spec.get("inputs")
    elif folder.is_dir():
        modules = [
            (f"{name}/{p.name}", p.read_text(encoding="utf-8"))
            for p in sorted(folder.glob("*.rego"))
        ]
        data = load_json_file(folder / "data.json") if (folder / "data.json").is_file() else None
        inputs = load_json_file(folder / "inputs.json") if (folder / "inputs.json").is_file() else None
    else:
        raise SystemExit(f"no such category: {name}")
    entry = f"compat.{name}"
    rules: set[str] = set()
    for _, src in modules:
        pkg = PACKAGE_RE.search(src)
        if pkg and pkg.group(1) == entry:
            rules |= rule_names(src)
    return Category(name, modules, data, inputs, sorted(rules))


def all_categories() -> list[str]:
    names = set()
    for p in CASES.iterdir():
        stem = p.stem if p.is_file() else p.name
        if (p.is_file() and p.suffix == ".rego") or p.is_dir():
            if CATEGORY_RE.match(stem):
                names.add(stem)
    return sorted(names)


# --- talking to OPA --------------------------------------------------------


def opa_version() -> str:
    lib = Path(opa_bindings.__file__).parent / "libopabridge.so"
    try:
        blob = lib.read_bytes()
    except OSError:
        return "unknown"
    m = re.search(rb"\tgithub\.com/open-policy-agent/opa\t(v[0-9][0-9A-Za-z.+-]*)\t", blob)
    return m.group(1).decode() if m else "unknown"


# OPA formats an evaluation error as "<file>:<row>: <code>: <message>".
EVAL_ERROR_RE = re.compile(r"^(?:\S+:\d+: )?([a-z_]+_error): (.*)$", re.S)
ACTIVATION_PREFIX = "bundle activation failed: "


def native(engine: OpaEngine, fn: Any, *args: Any) -> Any:
    """Call a native bridge function and parse its envelope, numbers verbatim."""
    ptr = fn(engine._handle, *args)
    if not ptr:
        raise OpaError("internal", "native call returned NULL")
    try:
        raw = ctypes.string_at(ptr)
    finally:
        engine._lib.OpaFreeString(ptr)
    envelope = parse_json(raw)
    err = envelope.get("error")
    if err is not None:
        raise OpaError(err.get("code", "unknown"), err.get("message", ""))
    return envelope


def compile_message(err: OpaError) -> str:
    """OPA's compile message; with several errors (which OPA may report in any
    order, e.g. recursion errors) the errors are sorted to keep files stable."""
    msg = err.message
    if msg.startswith(ACTIVATION_PREFIX):
        msg = msg[len(ACTIVATION_PREFIX):]
    head, sep, body = msg.partition(" errors occurred:\n")
    if not sep:
        return msg
    entries: list[list[str]] = []
    for line in body.split("\n"):
        if line.startswith("\t") and entries:
            entries[-1].append(line)
        else:
            entries.append([line])
    return head + sep + "\n".join(sorted("\n".join(e) for e in entries))


def record(cat: Category, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"category": cat.name, "opa_version": version}
    engine = OpaEngine()
    try:
        try:
            for mod_name, src in cat.modules:
                native(engine, engine._lib.OpaAddPolicy, mod_name.encode(), src.encode())
            if cat.data is not None:
                native(engine, engine._lib.OpaAddData, b"", dump_compact(cat.data).encode())
            native(engine, engine._lib.OpaEvalQuery, b"true", b"", 0, 0)
        except OpaError as err:
            out["compile"] = "error"
            out["compile_error"] = compile_message(err)
            return out
        out["compile"] = "ok"
        inputs: dict[str, Any] = cat.inputs if cat.inputs is not None else {NO_INPUT: None}
        cases = []
        for rule in ["*"] + cat.rules:
            path = f"compat.{cat.name}" + ("" if rule == "*" else f".{rule}")
            for input_name in sorted(inputs):
                raw_input = b"" if input_name == NO_INPUT else dump_compact(inputs[input_name]).encode()
                case: dict[str, Any] = {"rule": rule, "input": input_name}
                try:
                    env = native(engine, engine._lib.OpaEvalDocument, path.encode(), raw_input, 0, 0)
                    result = env.get("result")
                    if not result or not result[0].get("expressions"):
                        case["outcome"] = "undefined"
                    else:
                        case["outcome"] = "value"
                        case["value"] = result[0]["expressions"][0]["value"]
                except OpaError as err:
                    case["outcome"] = "error"
                    m = EVAL_ERROR_RE.match(err.message)
                    case["code"], case["message"] = (m.group(1), m.group(2)) if m else (err.code, err.message)
                cases.append(case)
        cases.sort(key=lambda c: (c["rule"], c["input"]))
        out["cases"] = cases
        return out
    finally:
        engine.close()


# --- coverage --------------------------------------------------------------


def coverage(names: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    builtins = json.loads(BUILTINS.read_text(encoding="utf-8"))
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted(CASES.rglob("*.rego"))
    )
    covered = 0
    uncovered: list[dict[str, Any]] = []
    excluded_uncovered: list[dict[str, Any]] = []
    for b in builtins:
        pattern = r"(?<![A-Za-z0-9_.])" + re.escape(b["name"]) + r"\("
        if re.search(pattern, text):
            covered += 1
        elif "excluded" in b:
            excluded_uncovered.append(b)
        else:
            uncovered.append(b)
    return uncovered, excluded_uncovered, covered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("categories", nargs="*")
    ap.add_argument("--check", action="store_true", help="compare with expected/, write nothing")
    ap.add_argument("--require-coverage", action="store_true")
    args = ap.parse_args()

    names = args.categories or all_categories()
    for n in names:
        if not CATEGORY_RE.match(n):
            raise SystemExit(f"bad category name: {n}")
    version = opa_version()
    if not args.check:
        EXPECTED.mkdir(exist_ok=True)
    differing: list[str] = []
    evaluations = 0
    for n in names:
        doc = record(load_category(n), version)
        evaluations += len(doc.get("cases", []))
        text = dump_pretty(doc) + "\n"
        target = EXPECTED / f"{n}.json"
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if old != text:
            differing.append(n)
            if not args.check:
                target.write_text(text, encoding="utf-8")
        status = doc["compile"] if doc["compile"] == "error" else f"{len(doc['cases'])} evaluations"
        print(f"{n}: {status}{'' if old == text else ' (changed)'}")
    if not args.categories:
        # An expected file without a category left behind by a removed case.
        for stale in sorted(EXPECTED.glob("*.json")):
            if stale.stem not in names:
                differing.append(stale.stem)
                print(f"{stale.stem}: no such category (stale expected file{'' if args.check else ', removed'})")
                if not args.check:
                    stale.unlink()
    print(f"{len(names)} categories, {evaluations} rule x input evaluations, OPA {version}")

    uncovered, excluded, covered = coverage(names)
    total = covered + len(uncovered) + len(excluded)
    print(f"coverage: {covered}/{total} builtins called by some case")
    mine = [b["name"] for b in uncovered if "owner" not in b]
    owned = [b["name"] for b in uncovered if "owner" in b]
    if mine:
        print("  uncovered: " + ", ".join(mine))
    if owned:
        print("  uncovered, owned by the crypto/tokens categories: " + ", ".join(owned))
    if excluded:
        print("  excluded and uncovered: " + ", ".join(b["name"] for b in excluded))

    rc = 0
    if args.check and differing:
        print("differing categories: " + " ".join(differing))
        rc = 1
    if args.require_coverage and uncovered:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the builtin table of docs/rego-compatibility.md.

For every OPA builtin in builtins.json: how many corpus cases call it, how
many of those Warden answers otherwise than OPA (tests/opa/known_differences.json,
kept honest by tests/opa_corpus.rs), or why it is not compared. The table sits
between the two marker lines of the document; everything else there is
written by hand.

    python3 tests/opa/catalogue.py          rewrite the table
    python3 tests/opa/catalogue.py --check  exit 1 if the table is stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "rego-compatibility.md"
BEGIN = "<!-- builtin table: written by tests/opa/catalogue.py -->"
END = "<!-- end of builtin table -->"
HEAD_RE = re.compile(r"^(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def case_sources() -> dict[str, dict[str, str]]:
    """category -> top-level rule name -> the text of its definitions."""
    out: dict[str, dict[str, str]] = {}
    cases = HERE / "cases"
    for path in sorted(cases.rglob("*.rego")):
        rel = path.relative_to(cases)
        category = rel.parts[0].removesuffix(".rego")
        rules = out.setdefault(category, {})
        current = None
        for line in path.read_text(encoding="utf-8").splitlines():
            m = HEAD_RE.match(line)
            if m and m.group(1) not in ("package", "import"):
                current = m.group(1)
            if current is not None:
                rules[current] = rules.get(current, "") + line + "\n"
    return out


def table() -> str:
    builtins = json.loads((HERE / "builtins.json").read_text(encoding="utf-8"))
    known = json.loads((HERE / "known_differences.json").read_text(encoding="utf-8"))
    sources = case_sources()
    differing_rules = {tuple(k.split("/")[:2]) for k in known}
    # A category Warden does not compile compares none of its rules.
    uncompiled = {k.split("/")[0] for k in known if k.endswith("/<compile>")}
    rows = [
        "| builtin | category | status |",
        "|---|---|---|",
    ]
    for b in builtins:
        name = b["name"]
        call = re.compile(r"(?<![A-Za-z0-9_.])" + re.escape(name) + r"\(")
        calling = [
            (cat, rule)
            for cat, rules in sources.items()
            for rule, text in rules.items()
            if call.search(text)
        ]
        differ = [c for c in calling if c in differing_rules or c[0] in uncompiled]
        if b.get("excluded"):
            status = f"not compared: {b['excluded']}"
            if name == "time.now_ns":
                status = "captured for replay: the decision's time, recorded with it"
            elif name in ("rand.intn", "uuid.rfc4122"):
                status = "captured for replay: the value returned is recorded with the decision"
            elif name in ("http.send", "net.lookup_ip_addr", "opa.runtime"):
                status = f"not available: {b['excluded']}; a bundle calling it does not compile"
        elif not calling:
            status = "no case yet"
        elif differ:
            status = f"**differs** in {len(differ)} of {len(calling)} rules calling it"
        else:
            status = f"same as OPA ({len(calling)} rules)"
        rows.append(f"| `{name}` | {b.get('category', '')} | {status} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    doc = DOC.read_text(encoding="utf-8")
    start = doc.index(BEGIN) + len(BEGIN)
    end = doc.index(END)
    fresh = doc[:start] + "\n" + table() + doc[end:]
    if "--check" in sys.argv[1:]:
        if fresh != doc:
            print("docs/rego-compatibility.md: the builtin table is stale; run tests/opa/catalogue.py")
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

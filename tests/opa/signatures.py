#!/usr/bin/env python3
"""Record the argument types OPA declares for each builtin.

OPA's type checker judges a builtin's arguments against declared types
(`sum` takes `any<array[number], set[number]>`) and knows the type of
each builtin's result (`count` gives a number), composites included:
`sum([1, "2"])` and `concat(",", [1])` are refused at compile time. OPA
prints the declaration when it refuses a call (`want: (collection:
any<array[number], set[number]>, n: number)`), so this script asks real
OPA for it: for every builtin of builtins.json (not excluded, not
variadic), calls are compiled with literals of each kind in each place
until one is refused, and the declared types of the arguments and of the
result are kept as OPA writes them. Warden parses them (src/policy/literal_types.rs) to
judge composite literals at upload, as OPA does.

A builtin that refuses no probe takes anything everywhere and gets no row.

    python3 tests/opa/signatures.py          rewrite the table
    python3 tests/opa/signatures.py --check  exit 1 if the table is stale

Only the standard library and opa_bindings (OPA's Go engine) are used.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from opa_tables import compile_error, write_or_check

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent.parent / "src" / "policy" / "builtin_signatures.json"

PROBES = ["null", "true", "1", '"s"', "[null]", "{null}", '{"k": null}']
WANT = re.compile(r"^\twant: \((.*)\)$", re.MULTILINE)


def want(name: str, args: list[str]) -> str | None:
    """OPA's declaration printed when it refuses the call, if it does."""
    error = compile_error(f"package probe\n\nx := {name}({', '.join(args)})\n")
    m = WANT.search(error) if error is not None and "rego_type_error" in error else None
    return m.group(1) if m else None


def split_top(text: str) -> list[str]:
    """Splits `a: x, b: any<y, z>` at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "<[(":
            depth += 1
        elif c in ">])":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def strip_name(part: str) -> str:
    """`formatted timestamp: string` -> `string`: the name is what stands
    before the first `: ` outside brackets, if any."""
    m = re.match(r"^([^<\[]*?): ", part)
    return part[m.end():] if m else part


def declared(name: str, arity: int) -> dict[str, Any] | None:
    for at in range(arity):
        for probe in PROBES:
            args = [f"input.a{i}" for i in range(arity)]
            args[at] = probe
            text = want(name, args)
            if text is not None:
                # `name: type` per argument, then the result's.
                types = [strip_name(p) for p in split_top(text)]
                return {"args": types[:arity], "result": types[arity] if len(types) > arity else "any"}
    return None


HAVE = re.compile(r"^\thave: \((.*)\)$", re.MULTILINE)


def result_of_nullary(name: str) -> str | None:
    """The result type of a builtin taking no argument, which OPA prints
    as what it has been given when the result is put where it does not
    fit: `{1} | [time.now_ns()]` has `(set[number], array<number>, ???)`."""
    error = compile_error(f"package probe\n\nx := {{1}} | [{name}()]\n")
    m = HAVE.search(error) if error is not None else None
    if m:
        parts = split_top(m.group(1))
        if len(parts) > 1 and parts[1].startswith("array<") and parts[1].endswith(">"):
            return parts[1][len("array<"):-1]
    return None


def table() -> dict[str, dict[str, Any]]:
    builtins = json.loads((HERE / "builtins.json").read_text(encoding="utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for b in builtins:
        # A nullary builtin's result; not rego.metadata.*, whose type OPA
        # takes from the annotations of the rule calling it.
        if b["arity"] == 0 and not b["name"].startswith("rego.metadata.") and b["name"] != "print":
            result = result_of_nullary(b["name"])
            if result is not None:
                out[b["name"]] = {"args": [], "result": result}
            continue
        if "excluded" in b or b.get("variadic") or b["arity"] == 0:
            continue
        types = declared(b["name"], b["arity"])
        if types is not None:
            out[b["name"]] = types
    return out


def main() -> int:
    return write_or_check(table(), TABLE, "signatures.py")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record the argument types OPA declares for each builtin.

OPA's type checker judges a builtin's arguments against declared types
(`sum` takes `any<array[number], set[number]>`), composites included:
`sum([1, "2"])` and `concat(",", [1])` are refused at compile time. OPA
prints the declaration when it refuses a call (`want: (collection:
any<array[number], set[number]>, n: number)`), so this script asks real
OPA for it: for every builtin of builtins.json (not excluded, not
variadic), calls are compiled with literals of each kind in each place
until one is refused, and the declared types of the arguments are kept
as OPA writes them. Warden parses them (src/policy/literal_types.rs) to
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

from opa_bindings import OpaEngine, OpaError

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent.parent / "src" / "policy" / "builtin_signatures.json"

PROBES = ["null", "true", "1", '"s"', "[null]", "{null}", '{"k": null}']
WANT = re.compile(r"^\twant: \((.*)\)$", re.MULTILINE)


def want(name: str, args: list[str]) -> str | None:
    """OPA's declaration printed when it refuses the call, if it does."""
    module = f"package probe\n\nx := {name}({', '.join(args)})\n"
    engine = OpaEngine()
    try:
        engine.add_policy("probe.rego", module)
        engine.eval_document("probe")
    except OpaError as e:
        m = WANT.search(str(e))
        return m.group(1) if m and "rego_type_error" in str(e) else None
    finally:
        engine.close()
    return None


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


def declared(name: str, arity: int) -> list[str] | None:
    for at in range(arity):
        for probe in PROBES:
            args = [f"input.a{i}" for i in range(arity)]
            args[at] = probe
            text = want(name, args)
            if text is not None:
                # `name: type` per argument, then the output.
                types = [p.split(": ", 1)[1] if re.match(r"^[A-Za-z_][A-Za-z0-9_]*: ", p) else p for p in split_top(text)]
                return types[:arity]
    return None


def table() -> dict[str, list[str]]:
    builtins = json.loads((HERE / "builtins.json").read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for b in builtins:
        if "excluded" in b or b.get("variadic") or b["arity"] == 0:
            continue
        types = declared(b["name"], b["arity"])
        if types is not None:
            out[b["name"]] = types
    return out


def main() -> int:
    text = json.dumps(table(), indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv[1:]:
        if TABLE.read_text(encoding="utf-8") != text:
            print(f"{TABLE} is stale: run python3 tests/opa/signatures.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record which kinds of literal each argument of each OPA builtin accepts.

OPA's type checker refuses a module that calls a builtin with a literal of
a kind the builtin does not take (`count(12)`: rego_type_error), whether or
not anything evaluates the call. Warden makes the same check at upload
(src/policy/literal_types.rs) from the table this script writes, asked of
real OPA rather than written by hand: for every builtin of builtins.json
(not excluded, not variadic), every argument, and every kind of literal
of scalar literal (null, a boolean, a number, a string), a module
calling the builtin with that literal there and `input` values elsewhere
is compiled by OPA, and the kinds it compiles are kept.

    python3 tests/opa/arg_kinds.py          rewrite the table
    python3 tests/opa/arg_kinds.py --check  exit 1 if the table is stale

Only the standard library and opa_bindings (OPA's Go engine) are used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from opa_tables import compile_error, write_or_check

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent.parent / "src" / "policy" / "builtin_arg_kinds.json"

# Scalars only: a scalar literal's type is its kind, so one probe answers
# for every literal of it. A composite's type is its elements' too (OPA
# takes `time.date([ns, "UTC"])`, a two-element tuple, but not `[]`), and
# no set of probes answers for every shape: composites are never judged.
LITERALS = {
    "null": "null",
    "boolean": "true",
    "number": "1",
    "string": '"s"',
}


def refused(name: str, args: list[str]) -> bool:
    """True when OPA refuses the call with a type error."""
    error = compile_error(f"package probe\n\nx := {name}({', '.join(args)})\n")
    return error is not None and "rego_type_error" in error


def table() -> dict[str, list[list[str]]]:
    builtins = json.loads((HERE / "builtins.json").read_text(encoding="utf-8"))
    out: dict[str, list[list[str]]] = {}
    for b in builtins:
        if "excluded" in b or b.get("variadic") or b["arity"] == 0:
            continue
        name, arity = b["name"], b["arity"]
        kinds: list[list[str]] = []
        for at in range(arity):
            accepted = []
            for kind, literal in LITERALS.items():
                args = [f"input.a{i}" for i in range(arity)]
                args[at] = literal
                if not refused(name, args):
                    accepted.append(kind)
            kinds.append(accepted)
        # Only what narrows something is worth a row.
        if any(len(k) < len(LITERALS) for k in kinds):
            out[name] = kinds
    return out


def main() -> int:
    return write_or_check(table(), TABLE, "arg_kinds.py")


if __name__ == "__main__":
    sys.exit(main())

"""What tests/opa/arg_kinds.py and tests/opa/signatures.py share: asking
real OPA to compile a module, and writing (or checking) a generated table.

Only the standard library and opa_bindings (OPA's Go engine) are used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from opa_bindings import OpaEngine, OpaError


def compile_error(module: str) -> str | None:
    """OPA's error for a module `package probe` it refuses; None when it
    compiles (and evaluates) the module."""
    engine = OpaEngine()
    try:
        engine.add_policy("probe.rego", module)
        engine.eval_document("probe")
    except OpaError as e:
        return str(e)
    finally:
        engine.close()
    return None


def write_or_check(table: Any, path: Path, script: str) -> int:
    """Writes `table` as sorted JSON to `path`, or with `--check` on the
    command line exits 1 when the file differs from it."""
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv[1:]:
        if path.read_text(encoding="utf-8") != text:
            print(f"{path} is stale: run python3 tests/opa/{script}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0

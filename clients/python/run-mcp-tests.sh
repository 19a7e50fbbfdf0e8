#!/usr/bin/env bash
# Runs the MCP gateway's tests: agents made with the official MCP Python SDK
# (`mcp` on PyPI) connect to a real Warden's /mcp (WARDEN_BIN, default
# target/debug/warden at the repository's root), in front of two tool
# servers made with the same SDK (tests/mcp/upstream.py, run as processes),
# under the sample gateway policy (policies/mcp-gateway). Uses (or creates)
# clients/python/.venv. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[test]' 'mcp>=2.3,<3'
export WARDEN_BIN="${WARDEN_BIN:-$here/../../target/debug/warden}"
if [ ! -x "$WARDEN_BIN" ]; then
  echo "run-mcp-tests: no Warden binary at $WARDEN_BIN (cargo build, or set WARDEN_BIN)" >&2
  exit 1
fi
exec .venv/bin/python -m pytest tests/mcp -p no:cacheprovider "$@"

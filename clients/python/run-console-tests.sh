#!/usr/bin/env bash
# Runs the web console's tests in a real browser: headless Chromium driven
# by Selenium through the system's chromedriver (Debian's chromium and
# chromium-driver packages; or set CHROMIUM and CHROMEDRIVER), against a
# real Warden (WARDEN_BIN, default target/debug/warden at the repository's
# root). Uses (or creates) clients/python/.venv. Screenshots of each page go
# to $WARDEN_CONSOLE_SCREENSHOTS (default target/console-screenshots).
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[test,console-test]'
export WARDEN_BIN="${WARDEN_BIN:-$here/../../target/debug/warden}"
if [ ! -x "$WARDEN_BIN" ]; then
  echo "run-console-tests: no Warden binary at $WARDEN_BIN (cargo build, or set WARDEN_BIN)" >&2
  exit 1
fi
# Selenium must use the system's driver, never download one.
export SE_OFFLINE=true
exec .venv/bin/python -m pytest tests/console -p no:cacheprovider "$@"

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gatewaykit import Gateway, start_gateway  # noqa: E402
from wardenproc import binary  # noqa: E402


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """A test stuck for 5 minutes ends the run loudly, with every thread's
    stack, instead of hanging it."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _gateway(tmp_path_factory: pytest.TempPathFactory, name: str, **kw: Any) -> Iterator[Gateway]:
    try:
        bin_path = binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    gw = start_gateway(bin_path, tmp_path_factory.mktemp(name), **kw)
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A real Warden serving /mcp in front of two tool servers made with the
    MCP SDK, its tenant set up. A missing binary is a failure, never a skip."""
    yield from _gateway(tmp_path_factory, "mcp-gateway")


@pytest.fixture(scope="module")
def stdio_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The same, but `docs` is a local server the operator lists in
    `[[mcp.stdio]]` (`docs-local`), registered by the tenant as `docs` and
    run by Warden over stdio."""
    yield from _gateway(tmp_path_factory, "mcp-stdio-gateway", stdio_docs=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A failed test's report carries the last lines Warden and the tool
    servers logged."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.when != "call" or not rep.failed:
        return
    for gw in getattr(item, "funcargs", {}).values():
        if isinstance(gw, Gateway):
            rep.sections.append(("warden log (last 60 lines)", "\n".join(gw.warden.log[-60:])))
            for u in (gw.bank, gw.docs):
                rep.sections.append((f"{u.name} tool server log", u.log_tail()))

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wardenproc import WardenServer, binary

import warden


@pytest.fixture(scope="session")
def warden_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WardenServer]:
    """A real Warden for the integration tests. A missing binary is a
    failure, never a skip."""
    try:
        bin_path = binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    server = WardenServer(bin=bin_path, data_dir=tmp_path_factory.mktemp("warden-data")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(warden_server: WardenServer) -> Iterator[warden.Client]:
    with warden.Client(warden_server.url, warden_server.token) as c:
        yield c

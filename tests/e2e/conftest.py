"""Fixtures: one mock provider per session, a fresh gateway (own config, ledger and ports)
per test that asks for one."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import pytest

import support
from support import Gateway, Mock

# The SDKs read these from the environment; the tests pass everything explicitly.
for _name in list(os.environ):
    if _name.startswith(("OPENAI_", "ANTHROPIC_")):
        del os.environ[_name]
# Nothing here goes through a proxy: every address is 127.0.0.1.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def airlock_bin() -> Path:
    return support.binary("AIRLOCK_BIN", "airlock")


@pytest.fixture(scope="session")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Mock:
    m = Mock(support.binary("AIRLOCK_MOCK_BIN", "airlock-mock"), tmp_path_factory.mktemp("mock") / "mock.log")
    yield m
    m.stop()


@pytest.fixture
def make_gateway(airlock_bin: Path, mock: Mock, tmp_path: Path) -> Callable[..., Gateway]:
    """`make_gateway(edit=None)` starts a gateway on the base config, optionally changed by
    `edit(config)` first. Each is stopped with SIGTERM at teardown and must exit 0."""
    started: list[Gateway] = []

    def make(edit: Callable[[dict], None] | None = None, subdir: str | None = None) -> Gateway:
        where = tmp_path / (subdir or f"gw{len(started)}")
        where.mkdir()
        config = support.base_config(mock, where)
        if edit:
            edit(config)
        for attempt in range(3):
            gw = Gateway(airlock_bin, where, config)
            try:
                started.append(gw.start())
                return gw
            except RuntimeError as e:
                # A port picked as free may have been taken meanwhile: pick others.
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                gw.stop()
                config["listen"] = {
                    "gateway": f"127.0.0.1:{support.free_port()}",
                    "admin": f"127.0.0.1:{support.free_port()}",
                }
        raise AssertionError("unreachable")

    yield make
    for gw in started:
        code = gw.stop(timeout=5)
        assert code == 0, f"airlock exited with {code} after SIGTERM:\n{gw.log_text()[-4000:]}"


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


@pytest.fixture
def tag() -> str:
    """A unique value for the `x-e2e-tag` header, to find this test's requests at the mock."""
    return uuid.uuid4().hex


@pytest.fixture
def postgres_ledger():
    """A fresh PostgreSQL database for one test (the server .ci/run starts)."""
    name = f"airlock_e2e_{uuid.uuid4().hex[:12]}"
    base = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["createdb", *base, name], check=True, capture_output=True, timeout=30)
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    subprocess.run(["dropdb", *base, "--force", name], capture_output=True, timeout=30)


@pytest.fixture
def private_postgres():
    """A throwaway PostgreSQL cluster of this test's own, from the installed binaries, that
    the test may stop and start (`.stop()`, `.start()`); `.url` is its database."""
    cluster = support.PrivateCluster()
    yield cluster
    cluster.remove()

"""MCP helpers for the end-to-end tests: real upstream servers (tests/e2e/mcp/upstream.py,
built with the Python `mcp` package) and clients connected through the gateway."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, AsyncIterator

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from support import MAIN_KEY, start_listening, stop_process

HERE = Path(__file__).parent
UPSTREAM = HERE / "mcp" / "upstream.py"
TS_CLIENT = HERE / "mcp" / "ts" / "client.mjs"
# The credential the gateway injects upstream (config), never the agent's key.
UPSTREAM_TOKEN = "upstream-e2e-token-7f3a"

warnings.filterwarnings("ignore", message=".*deprecated as of 2026-07-28.*")


class Upstream:
    """One upstream MCP server process over HTTP (streamable-http or sse)."""

    def __init__(self, transport: str, name: str, state: Path, *extra: str):
        state.mkdir(parents=True, exist_ok=True)
        self.name, self.transport, self.state = name, transport, state
        self.log = open(state / f"{name}.log", "wb")
        argv = [sys.executable, str(UPSTREAM), "--transport", transport, "--name", name, "--state", str(state), *extra]
        self.proc, self.port = start_listening(argv, self.log)
        path = "/mcp" if transport == "streamable-http" else "/sse"
        self.url = f"http://127.0.0.1:{self.port}{path}"

    def config(self) -> dict:
        entry: dict[str, Any] = {"url": self.url, "headers": {"Authorization": f"Bearer {UPSTREAM_TOKEN}"}}
        if self.transport == "sse":
            entry["transport"] = "sse"
        return entry

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def stdio_config(name: str, state: Path, *extra: str) -> dict:
    """A stdio server the gateway starts itself; its credential comes from config env."""
    return {
        "command": sys.executable,
        "args": [str(UPSTREAM), "--transport", "stdio", "--name", name, "--state", str(state), *extra],
        "env": {"UPSTREAM_TOKEN": UPSTREAM_TOKEN},
    }


@contextlib.asynccontextmanager
async def connect(gw, path: str = "/mcp", key: str | None = MAIN_KEY, mode: str = "legacy", **kw: Any) -> AsyncIterator[Client]:
    """A Python `mcp` client session through the gateway."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kw.pop("headers", {}))
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=30), trust_env=False) as http:
        async with Client(
            streamable_http_client(f"{gw.url}{path}", http_client=http), mode=mode, read_timeout_seconds=15, **kw
        ) as client:
            yield client


def names(tools) -> set[str]:
    return {t.name for t in tools}


def text(result) -> str:
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def ts_client(gw, path: str, key: str, *commands: str) -> list[dict]:
    """The official TypeScript client, one session; one JSON line per command."""
    res = subprocess.run(
        ["node", str(TS_CLIENT), f"{gw.url}{path}", key, *commands],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def rpc(gw, body: Any, key: str | None = MAIN_KEY, session: str | None = None, path: str = "/mcp", **headers: str) -> httpx2.Response:
    """One raw POST, for what the SDKs never send (bad JSON, foreign Origins, probes)."""
    h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **headers}
    if key:
        h["Authorization"] = f"Bearer {key}"
    if session:
        h["Mcp-Session-Id"] = session
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx2.post(f"{gw.url}{path}", content=content, headers=h, timeout=10, trust_env=False)

"""A2A helpers for the end-to-end tests: a real remote agent (tests/e2e/a2a/upstream.py,
built with the Python `a2a-sdk`) and the SDK's client talking to it through the gateway."""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import httpx2
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import get_artifact_text, new_text_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest

from support import MAIN_KEY, start_listening, stop_process

HERE = Path(__file__).parent
UPSTREAM = HERE / "a2a" / "upstream.py"
# The credential the gateway injects upstream (config), never the agent's key.
UPSTREAM_TOKEN = "a2a-upstream-e2e-token-5c1e"


class RemoteAgent:
    """One A2A server agent process."""

    def __init__(self, name: str, log_dir: Path, *extra: str, token: str | None = UPSTREAM_TOKEN):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = open(log_dir / f"a2a-{name}.log", "wb")
        argv = [sys.executable, str(UPSTREAM), "--name", name, *extra]
        if token:
            argv += ["--token", token]
        self.proc, self.port = start_listening(argv, self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        return {"url": self.url, "headers": {"Authorization": f"Bearer {UPSTREAM_TOKEN}"}}

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@contextlib.asynccontextmanager
async def connect(
    gw, name: str, key: str | None = MAIN_KEY, streaming: bool = True, headers: dict | None = None, seen: list | None = None
) -> AsyncIterator[Any]:
    """The `a2a-sdk` client, discovering `name` at the gateway's `/a2a/<name>`: it reads the
    card there and then POSTs wherever that card says (each request's method and URL is
    appended to `seen`)."""
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})

    async def record(request: httpx.Request) -> None:
        if seen is not None:
            seen.append((request.method, str(request.url)))

    hooks = {"request": [record]}
    async with httpx.AsyncClient(headers=h, timeout=httpx.Timeout(10, read=30), trust_env=False, event_hooks=hooks) as http:
        client = await create_client(f"{gw.url}/a2a/{name}", client_config=ClientConfig(httpx_client=http, streaming=streaming))
        try:
            yield client
        finally:
            await client.close()


def message(text: str, **fields: str) -> SendMessageRequest:
    """A user message (A2A 1.0), optionally continuing a context or task."""
    msg = new_text_message(text, role=Role.ROLE_USER, **fields)
    return SendMessageRequest(message=msg)


def artifact_text(task) -> str:
    return "".join(get_artifact_text(a, delimiter="") for a in task.artifacts)


def rpc(gw, name: str, method: str, params: dict, key: str | None = MAIN_KEY, id: Any = None, **headers: str) -> httpx2.Response:
    """One raw JSON-RPC POST to `/a2a/<name>`, for 0.3 clients and what the SDK never sends."""
    h = {"Content-Type": "application/json", **headers}
    if key:
        h["Authorization"] = f"Bearer {key}"
    body = {"jsonrpc": "2.0", "id": id if id is not None else str(uuid.uuid4()), "method": method, "params": params}
    return httpx2.post(f"{gw.url}/a2a/{name}", content=json.dumps(body), headers=h, timeout=15, trust_env=False)


def v03_message(text: str) -> dict:
    return {"message": {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user", "parts": [{"kind": "text", "text": text}]}}


def sse_results(res: httpx2.Response) -> list[dict]:
    """The JSON-RPC messages of an SSE answer, in order."""
    out = []
    for block in res.text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out

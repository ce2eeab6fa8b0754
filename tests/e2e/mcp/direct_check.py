"""Proves the MCP fixtures work on their own, without the gateway (not a pytest module).

    ~/.cache/airlock-venv/bin/python tests/e2e/mcp/direct_check.py

Starts upstream.py in each transport (streamable-http, sse, stdio), drives it with the
Python `mcp` 2.x `Client` (mode="legacy"), then runs ts/client.mjs against the
streamable-http one (run `npm ci` in ts/ first, as tests/run does). Exits non-zero on
the first failed check.

Per transport it also exercises the server-to-client side: logging (logging_callback),
roots/list (list_roots_callback), tools/list_changed and resources/updated
(message_handler), completion/complete, resources/subscribe, logging/setLevel,
notifications/roots/list_changed, and cancelling a `slow` call (checked in events.log).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import anyio
import httpx2
import mcp.types as types
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream.py"
TS_CLIENT = HERE / "ts" / "client.mjs"
KEY = "al-direct-check-key"

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
warnings.filterwarnings("ignore", message=".*deprecated as of 2026-07-28.*")
warnings.filterwarnings("ignore", message=".*removed as of 2026-07-28.*")  # resources/subscribe
ROOTS = ["file:///work/project", "file:///tmp/scratch"]


def start_http(transport: str, name: str, state: Path) -> tuple[subprocess.Popen, int]:
    """Starts upstream.py on a free port; returns (process, port) once it listens."""
    proc = subprocess.Popen(
        [sys.executable, str(UPSTREAM), "--transport", transport, "--port", "0", "--name", name, "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=open(state / f"{name}.log", "wb"),
        stdin=subprocess.DEVNULL,
    )
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on 127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"{name} did not start: {line!r}\n{(state / f'{name}.log').read_text()}")
    return proc, int(line.rsplit(":", 1)[1])


# --- client callbacks -------------------------------------------------------------------

sampled: list[str] = []


async def sampling_callback(context: ClientRequestContext, params: types.CreateMessageRequestParams):
    question = params.messages[0].content.text
    sampled.append(question)
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"model says: {question[::-1]}"),
        model="direct-check-model",
        stop_reason="endTurn",
    )


async def elicitation_callback(context: ClientRequestContext, params: types.ElicitRequestParams):
    return types.ElicitResult(action="accept", content={"name": "Ada"})


class Inbox:
    """What the server sent us outside of results: log params and every notification."""

    def __init__(self) -> None:
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.notifications: list[types.ServerNotification] = []
        self.roots_asked = 0

    async def logging_callback(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def list_roots_callback(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.roots_asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=u, name=u.rsplit("/", 1)[1]) for u in ROOTS])

    async def message_handler(self, message) -> None:
        # Server notifications (typed: ToolListChangedNotification, ResourceUpdatedNotification,
        # LoggingMessageNotification too, ...) plus transport exceptions.
        if isinstance(message, Exception):
            raise AssertionError(f"transport error: {message!r}")
        self.notifications.append(message)

    def of(self, kind: type) -> list:
        return [n for n in self.notifications if isinstance(n, kind)]


async def eventually(predicate, what: str, timeout: float = 5) -> None:
    """Waits for a notification that may come on another stream than the result."""
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"no {what} within {timeout} s")


def events(state: Path) -> list[str]:
    path = state / "events.log"
    return path.read_text().splitlines() if path.exists() else []


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


# --- the checks -------------------------------------------------------------------------


async def check(client: Client, label: str, name: str, state: Path, transport: str) -> list[str]:
    done: list[str] = []
    info = client.server_info
    assert info is not None and info.name == name, info
    assert client.protocol_version == "2025-11-25", client.protocol_version

    tools = {t.name: t for t in (await client.list_tools()).tools}
    expected = {"echo", "add", "search_issues", "whoami", "slow", "ask_model", "elicit_name", "image", "fail",
                "mutable", "log", "list_roots", "grow", "touch"}
    assert expected <= set(tools), sorted(tools)
    assert tools["add"].output_schema is not None and tools["echo"].output_schema is None
    done.append(f"tools/list ({len(tools)})")

    r = await client.call_tool("echo", {"text": "hello"})
    assert not r.is_error and text_of(r) == "hello", r
    r = await client.call_tool("add", {"a": 2, "b": 40})
    assert r.structured_content == {"sum": 42}, r
    done.append("echo, add (structuredContent)")

    r = await client.call_tool("image", {})
    assert isinstance(r.content[0], types.ImageContent) and r.content[0].mime_type == "image/png", r
    assert isinstance(r.content[1], types.TextContent), r
    r = await client.call_tool("fail", {})
    assert r.is_error and "always fails" in text_of(r), r
    done.append("image, fail (isError)")

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    r = await client.call_tool("slow", {"steps": 3, "delay_ms": 20}, progress_callback=on_progress)
    assert text_of(r) == "done 3 steps", r
    assert [p for p, _, _ in progress] == [1, 2, 3] and progress[-1][1:] == (3, "step 3/3"), progress
    assert events(state) == ["finished slow"], events(state)
    done.append(f"slow ({len(progress)} progress)")

    r = await client.call_tool("ask_model", {"question": "abc"})
    assert text_of(r) == "model says: cba", r
    r = await client.call_tool("elicit_name", {})
    assert text_of(r) == "Hello, Ada!", r
    done.append("ask_model (sampling), elicit_name")

    r = await client.call_tool("whoami", {})
    me = json.loads(text_of(r))
    assert me["server"] == name, me
    if transport == "stdio":
        assert me["token"] == "stdio-token", me
    else:
        h = me["headers"]
        assert h["authorization"] == f"Bearer {KEY}" and h["x-e2e-tag"] == label, me
        assert h["host"].startswith("127.0.0.1:"), me
    done.append("whoami")

    res = await client.read_resource("note://readme")
    assert res.contents[0].text == f"Readme of {name}.", res
    res = await client.read_resource("note://todo")
    assert res.contents[0].text == "Note todo.", res
    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["note://{name}"], templates
    prompt = await client.get_prompt("greet", {"name": "Bob"})
    assert prompt.messages[0].content.text == "Please greet Bob warmly.", prompt
    try:
        await client.read_resource("other://missing")
        raise AssertionError("expected a JSON-RPC error")
    except MCPError as e:
        assert e.code == types.INVALID_PARAMS, e.error  # -32602, data {"uri": ...}
    try:
        await client.get_prompt("no-such-prompt", {})
        raise AssertionError("expected a JSON-RPC error")
    except MCPError as e:
        assert e.code == 0, e.error  # the SDK sends code 0 for a handler's plain exception
    done.append("resources, prompt, JSON-RPC error")

    (state / "mutable_description.txt").write_text(f"Changed for {label}.")
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["mutable"].description == f"Changed for {label}.", tools["mutable"]
    (state / "mutable_description.txt").unlink()
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["mutable"].description == "Returns a fixed answer.", tools["mutable"]
    done.append("mutable description")
    return done


async def check_server_to_client(client: Client, inbox: Inbox, name: str, state: Path, transport: str) -> list[str]:
    """The server-initiated side: logging, roots, list_changed, completion, subscriptions, cancellation."""
    done: list[str] = []
    caps = client.server_capabilities
    assert caps.tools is not None and caps.tools.list_changed is True, caps
    assert caps.completions is not None and caps.logging is not None, caps
    assert caps.resources is not None and caps.resources.subscribe is True, caps
    done.append("capabilities")

    # logging: notifications/message -> logging_callback(params) (and message_handler too).
    for standalone in (False, True):
        before = len(inbox.logs)
        args = {"message": f"hello {standalone}", "level": "warning", "standalone": standalone}
        r = await client.call_tool("log", args)
        assert text_of(r) == "logged", r
        await eventually(lambda: len(inbox.logs) > before, "log")
        got = inbox.logs[before]
        assert (got.level, got.data, got.logger) == ("warning", f"hello {standalone}", name), got
    r = await client.call_tool("log", {"message": "x", "level": "loud"})
    assert r.is_error and "unknown level" in text_of(r), r
    assert (await client.set_logging_level("debug")) is not None
    assert events(state)[-1] == "setLevel debug", events(state)
    done.append("log (request + standalone), setLevel")

    # roots/list: server -> client request, answered by list_roots_callback(context).
    for standalone in (False, True):
        r = await client.call_tool("list_roots", {"standalone": standalone})
        assert not r.is_error and json.loads(text_of(r)) == ROOTS, r
    assert inbox.roots_asked == 2, inbox.roots_asked
    await client.send_roots_list_changed()
    await eventually(lambda: "roots_list_changed" in events(state), "roots_list_changed in events.log")
    done.append("list_roots (request + standalone), roots/list_changed")

    # grow: a new tool plus notifications/tools/list_changed -> message_handler.
    for standalone in (False, True):
        tool = f"sprout_{'standalone' if standalone else 'request'}"
        before = len(inbox.of(types.ToolListChangedNotification))
        r = await client.call_tool("grow", {"name": tool, "standalone": standalone})
        assert text_of(r) == f"grew {tool}", r
        await eventually(lambda: len(inbox.of(types.ToolListChangedNotification)) > before, "tools/list_changed")
        assert tool in {t.name for t in (await client.list_tools()).tools}
        r = await client.call_tool(tool, {})
        assert text_of(r) == f"grown {tool}", r
    r = await client.call_tool("grow", {"name": "echo"})
    assert r.is_error and "already exists" in text_of(r), r
    done.append("grow + tools/list_changed (request + standalone)")

    # completion/complete
    greet = types.PromptReference(type="ref/prompt", name="greet")
    note = types.ResourceTemplateReference(type="ref/resource", uri="note://{name}")
    c = await client.complete(greet, {"name": "name", "value": "A"})
    assert c.completion.values == ["Ada", "Alan"] and c.completion.total == 2, c
    c = await client.complete(greet, {"name": "name", "value": "gr"})
    assert c.completion.values == ["Grace"], c
    c = await client.complete(note, {"name": "name", "value": ""})
    assert c.completion.values == ["Ada", "Alan", "Grace"], c
    c = await client.complete(note, {"name": "other", "value": "A"})
    assert c.completion.values == [], c
    done.append("completion (prompt, template)")

    # resources/subscribe + touch -> notifications/resources/updated -> message_handler
    await client.subscribe_resource("note://readme")
    assert events(state)[-1] == "subscribe note://readme", events(state)
    try:
        await client.subscribe_resource("other://x")
        raise AssertionError("expected a JSON-RPC error")
    except MCPError as e:
        assert e.code == types.INVALID_PARAMS, e.error
    for standalone in (False, True):
        before = len(inbox.of(types.ResourceUpdatedNotification))
        r = await client.call_tool("touch", {"standalone": standalone})
        assert text_of(r) == "touched note://readme", r
        await eventually(lambda: len(inbox.of(types.ResourceUpdatedNotification)) > before, "resources/updated")
        assert inbox.of(types.ResourceUpdatedNotification)[-1].params.uri == "note://readme"
    await client.unsubscribe_resource("note://readme")
    assert events(state)[-1] == "unsubscribe note://readme", events(state)
    done.append("subscribe, touch + resources/updated (request + standalone)")

    # Cancellation: leaving move_on_after cancels call_tool; the client sends
    # notifications/cancelled and the upstream's handler is cancelled.
    started = time.monotonic()
    with anyio.move_on_after(0.5) as scope:
        await client.call_tool("slow", {"steps": 40, "delay_ms": 100})
    assert scope.cancelled_caught, "slow finished before the deadline"
    await eventually(lambda: "cancelled slow" in events(state), "cancelled slow in events.log")
    elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed  # slow would need 4 s
    assert events(state).count("finished slow") == 1, events(state)
    r = await client.call_tool("echo", {"text": "still here"})  # the session survives the cancel
    assert text_of(r) == "still here", r
    done.append(f"cancel slow (seen upstream after {elapsed:.2f}s)")
    return done


def client_kw(inbox: Inbox) -> dict:
    return dict(
        mode="legacy",
        sampling_callback=sampling_callback,
        elicitation_callback=elicitation_callback,
        list_roots_callback=inbox.list_roots_callback,
        logging_callback=inbox.logging_callback,
        message_handler=inbox.message_handler,
        read_timeout_seconds=10,
    )


async def check_all(client: Client, inbox: Inbox, label: str, name: str, state: Path) -> list[str]:
    done = await check(client, label, name, state, label)
    return done + await check_server_to_client(client, inbox, name, state, label)


async def run_streamable_http(port: int, name: str, state: Path) -> list[str]:
    url = f"http://127.0.0.1:{port}/mcp"
    headers = {"Authorization": f"Bearer {KEY}", "x-e2e-tag": "streamable-http"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60), trust_env=False) as http:
        inbox = Inbox()
        async with Client(streamable_http_client(url, http_client=http), **client_kw(inbox)) as client:
            return await check_all(client, inbox, "streamable-http", name, state)


async def run_sse(port: int, name: str, state: Path) -> list[str]:
    url = f"http://127.0.0.1:{port}/sse"
    headers = {"Authorization": f"Bearer {KEY}", "x-e2e-tag": "sse"}
    inbox = Inbox()
    async with Client(sse_client(url, headers=headers, timeout=10, sse_read_timeout=60), **client_kw(inbox)) as client:
        return await check_all(client, inbox, "sse", name, state)


async def run_stdio(name: str, state: Path) -> list[str]:
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(UPSTREAM), "--transport", "stdio", "--name", name, "--state", str(state)],
        env={"UPSTREAM_TOKEN": "stdio-token"},
    )
    with open(state / f"{name}.log", "w") as errlog:
        # Client(params) also works; stdio_client lets us keep the server's stderr out of the way.
        inbox = Inbox()
        async with Client(stdio_client(params, errlog=errlog), **client_kw(inbox)) as client:
            return await check_all(client, inbox, "stdio", name, state)


def run_ts(port: int) -> list[str]:
    url = f"http://127.0.0.1:{port}/mcp"
    out = subprocess.run(
        ["node", str(TS_CLIENT), url, KEY, "list", "call", "add", '{"a":1,"b":2}', "call", "whoami", "{}",
         "call", "fail", "{}", "resources", "prompts", "read", "note://readme", "prompt", "greet", '{"name":"Z"}'],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 8, out.stdout
    assert any(t["name"] == "echo" for t in lines[0]), lines[0]
    assert lines[1]["structuredContent"] == {"sum": 3}, lines[1]
    assert json.loads(lines[2]["content"][0]["text"])["headers"]["authorization"] == f"Bearer {KEY}", lines[2]
    assert lines[3]["isError"] is True, lines[3]
    assert lines[4][0]["uri"] == "note://readme", lines[4]
    assert lines[5][0]["name"] == "greet", lines[5]
    assert lines[6]["contents"][0]["text"].startswith("Readme of"), lines[6]
    assert lines[7]["messages"][0]["content"]["text"] == "Please greet Z warmly.", lines[7]

    bad = subprocess.run(["node", str(TS_CLIENT), "http://127.0.0.1:1/mcp", KEY, "list"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot connect" in bad.stderr, bad
    return ["8 commands", "connection failure exits 2"]


async def main() -> int:
    summary: list[tuple[str, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="mcp-direct-") as tmp:
        procs = []
        try:
            for transport, runner in (("streamable-http", run_streamable_http), ("sse", run_sse)):
                state = Path(tmp) / transport
                state.mkdir()
                proc, port = start_http(transport, f"up-{transport}", state)
                procs.append(proc)
                summary.append((f"python {transport}", await runner(port, f"up-{transport}", state)))
                if transport == "streamable-http":
                    summary.append(("ts streamable-http", run_ts(port)))
            state = Path(tmp) / "stdio"
            state.mkdir()
            summary.append(("python stdio", await run_stdio("up-stdio", state)))
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
    for label, checks in summary:
        print(f"ok  {label:20} {'; '.join(checks)}")
    print(f"{len(summary)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))

"""Traces over OTLP: with `telemetry.otlp_endpoint` set, every call becomes one span in the
agent's own trace, and whatever Airlock calls upstream sees Airlock's span as its parent.

The collector is a small OTLP/HTTP receiver run by the test on a free loopback port; it
decodes each `ExportTraceServiceRequest` with the `opentelemetry-proto` package."""

from __future__ import annotations

import http.server
import json
import secrets
import subprocess
import threading
import time

import anyio
import httpx2
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from a2a_support import UPSTREAM_TOKEN as A2A_UPSTREAM_TOKEN
from a2a_support import RemoteAgent, connect as a2a_connect, message
from mcp_support import UPSTREAM_TOKEN as MCP_UPSTREAM_TOKEN
from mcp_support import Upstream, connect as mcp_connect, stdio_config, text
from support import (
    ANTHROPIC_PROVIDER_KEY,
    MAIN_AGENT,
    MAIN_KEY,
    MAIN_TEAM,
    OPENAI_PROVIDER_KEY,
    chat_prompt_tokens,
    closed_port,
    expected_cost_nanos,
    free_port,
    to_yaml,
)

MESSAGES = [{"role": "user", "content": "trace me please"}]
# Nothing secret may reach the collector: not the agent's key, not a provider's or a
# tool server's credential.
SECRETS = [MAIN_KEY, OPENAI_PROVIDER_KEY, ANTHROPIC_PROVIDER_KEY, MCP_UPSTREAM_TOKEN, A2A_UPSTREAM_TOKEN]


class Collector:
    """An OTLP/HTTP traces receiver: POST /v1/traces, protobuf in, protobuf out."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.requests: list[ExportTraceServiceRequest] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with collector.lock:
                    collector.raw.append(body)
                    collector.requests.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def spans(self) -> list[tuple[dict, Span]]:
        """Every span received, with its resource's attributes."""
        with self.lock:
            return [
                (attributes(rs.resource), span)
                for req in self.requests
                for rs in req.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

    def in_trace(self, trace_id: str, count: int = 1, timeout: float = 10) -> list[Span]:
        """The spans of one trace, waiting until `count` have come (exports are batched)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [s for _, s in self.spans() if s.trace_id.hex() == trace_id]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) == count, f"expected {count} spans in trace {trace_id}, got {found}"
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(holder) -> dict:
    """An OTLP attribute list as a dict of plain values."""
    out = {}
    for kv in holder.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def agent_context() -> tuple[str, str, str]:
    """A fresh trace as the agent's own tracer would start it: trace id, span id, header."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


@pytest.fixture
def collector(monkeypatch):
    # Export within 100 ms instead of the SDK's 5 s (the gateway inherits the variable).
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    c = Collector()
    yield c
    c.stop()
    for raw in c.raw:
        for secret in SECRETS:
            assert secret.encode() not in raw, "a secret reached the collector"


def traced(collector: Collector, extra=None):
    def edit(config):
        config["telemetry"]["otlp_endpoint"] = collector.url
        if extra:
            extra(config)

    return edit


def test_a_chat_call_is_one_span_in_the_agents_trace_and_the_provider_is_its_child(
    make_gateway, collector, mock, tag
):
    gw = make_gateway(traced(collector))
    trace_id, agent_span, traceparent = agent_context()
    resp = gw.openai().chat.completions.create(
        model="gpt-e2e",
        messages=MESSAGES,
        extra_headers={"traceparent": traceparent, "tracestate": "agent=1", "x-e2e-tag": tag, "x-mock-words": "4"},
    )

    [span] = collector.in_trace(trace_id)
    assert span.parent_span_id.hex() == agent_span
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.name == "chat gpt-e2e"
    assert span.status.code != Status.STATUS_CODE_ERROR
    assert span.end_time_unix_nano > span.start_time_unix_nano
    a = attributes(span)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-e2e"
    assert a["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens == chat_prompt_tokens(MESSAGES)
    assert a["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens == 4
    assert a["airlock.agent"] == MAIN_AGENT and a["airlock.team"] == MAIN_TEAM
    assert a["airlock.outcome"] == "served" and "airlock.reason" not in a and "error.type" not in a
    assert a["airlock.target"] == "mock/chat-upstream"
    cost = expected_cost_nanos("mock/chat-upstream", input_tokens=resp.usage.prompt_tokens, output_tokens=4)
    assert a["airlock.cost_nanos"] == cost
    assert a["airlock.cost_usd"] == pytest.approx(cost / 1e9)
    assert a["http.response.status_code"] == 200
    assert a["airlock.event_id"] == gw.event()["id"]

    # The provider got Airlock's span as its parent, in the agent's trace, in place of the
    # agent's header (one traceparent, not two), and the agent's tracestate kept.
    [seen] = mock.requests_tagged(tag)
    assert seen["headers"]["traceparent"] == f"00-{trace_id}-{span.span_id.hex()}-01"
    assert seen["headers"]["tracestate"] == "agent=1"

    [(resource, _)] = [(r, s) for r, s in collector.spans() if s.trace_id.hex() == trace_id]
    assert resource["service.name"] == "airlock"


def test_a_call_without_a_traceparent_starts_a_trace_of_its_own(make_gateway, collector, mock, tag):
    gw = make_gateway(traced(collector))
    gw.openai().embeddings.create(model="embed-e2e", input="trace me", extra_headers={"x-e2e-tag": tag})

    [seen] = mock.requests_tagged(tag)
    _, trace_id, parent, flags = seen["headers"]["traceparent"].split("-")
    [span] = collector.in_trace(trace_id)
    assert span.span_id.hex() == parent and flags == "01"
    assert span.parent_span_id == b""
    assert span.name == "embeddings embed-e2e"
    assert attributes(span)["gen_ai.operation.name"] == "embeddings"


def test_a_refused_call_is_an_error_span_with_its_reason_and_nothing_goes_upstream(make_gateway, collector, mock, tag):
    gw = make_gateway(traced(collector))
    trace_id, agent_span, traceparent = agent_context()
    with pytest.raises(openai.PermissionDeniedError):
        gw.openai().chat.completions.create(
            model="secret-model", messages=MESSAGES, extra_headers={"traceparent": traceparent, "x-e2e-tag": tag}
        )

    [span] = collector.in_trace(trace_id)
    assert span.parent_span_id.hex() == agent_span
    assert span.name == "chat secret-model"
    assert span.status.code == Status.STATUS_CODE_ERROR
    a = attributes(span)
    assert a["error.type"] == a["airlock.reason"] == "not_allowed"
    assert a["airlock.outcome"] == "denied"
    assert a["http.response.status_code"] == 403
    assert not any(k.startswith("gen_ai.usage") for k in a)
    assert mock.requests_tagged(tag) == []


def test_an_unsampled_agent_trace_is_not_exported_but_stays_one_trace_upstream(make_gateway, collector, mock, tag):
    gw = make_gateway(traced(collector))
    trace_id, agent_span, _ = agent_context()
    gw.openai().chat.completions.create(
        model="gpt-e2e", messages=MESSAGES, extra_headers={"traceparent": f"00-{trace_id}-{agent_span}-00", "x-e2e-tag": tag}
    )
    [seen] = mock.requests_tagged(tag)
    version, trace, parent, flags = seen["headers"]["traceparent"].split("-")
    assert (version, trace, flags) == ("00", trace_id, "00") and parent != agent_span
    time.sleep(0.5)  # several export rounds
    assert [s for _, s in collector.spans() if s.trace_id.hex() == trace_id] == []


@pytest.fixture(scope="module")
def mcp_upstream(tmp_path_factory):
    state = tmp_path_factory.mktemp("mcp-traces")
    up = Upstream("streamable-http", "alpha", state)
    yield up, state
    up.stop()


def test_mcp_tool_calls_are_spans_and_tool_servers_get_the_context_in_meta(make_gateway, collector, mcp_upstream):
    up, state = mcp_upstream

    def with_mcp(config):
        config["limits"]["upstream_timeout"] = "10s"
        config["mcp"] = {"servers": {"alpha": up.config(), "gamma": stdio_config("gamma", state)}}

    gw = make_gateway(traced(collector, with_mcp))
    trace_id, agent_span, traceparent = agent_context()

    async def body():
        async with mcp_connect(gw) as client:
            got = {}
            for server in ("alpha", "gamma"):  # Streamable HTTP, and stdio: no headers there
                r = await client.call_tool(f"{server}__trace_context", {}, meta={"traceparent": traceparent})
                got[server] = json.loads(text(r))
            failed = await client.call_tool("alpha__fail", {}, meta={"traceparent": traceparent})
            assert failed.is_error
            return got

    seen = anyio.run(body)
    spans = collector.in_trace(trace_id, count=3)
    by_server = {attributes(s)["airlock.mcp.server"]: s for s in spans if "trace_context" in s.name}
    for server in ("alpha", "gamma"):
        span = by_server[server]
        assert span.parent_span_id.hex() == agent_span
        assert span.name == "tools/call trace_context"
        a = attributes(span)
        assert a["mcp.method.name"] == "tools/call"
        assert a["gen_ai.operation.name"] == "execute_tool"
        assert a["gen_ai.tool.name"] == "trace_context"
        assert a["airlock.agent"] == MAIN_AGENT and a["airlock.outcome"] == "served"
        assert a["airlock.target"] == f"{server}/trace_context"
        assert len(a["mcp.session.id"]) == 32
        assert a["jsonrpc.request.id"]
        # What the tool server read in params._meta: Airlock's span, the agent's trace.
        assert seen[server]["traceparent"] == f"00-{trace_id}-{span.span_id.hex()}-01"
    [failed] = [s for s in spans if s.name == "tools/call fail"]
    assert attributes(failed)["error.type"] == "tool_error"
    assert failed.status.code == Status.STATUS_CODE_ERROR


@pytest.fixture(scope="module")
def echo_agent(tmp_path_factory):
    agent = RemoteAgent("echo", tmp_path_factory.mktemp("a2a-traces"))
    yield agent
    agent.stop()


def test_a2a_messages_are_invoke_agent_spans_and_the_remote_agent_is_their_child(make_gateway, collector, echo_agent):
    def with_a2a(config):
        config["a2a"] = {"agents": {"echo": echo_agent.config()}}

    gw = make_gateway(traced(collector, with_a2a))
    trace_id, agent_span, traceparent = agent_context()

    async def body():
        async with a2a_connect(gw, "echo", streaming=False, headers={"traceparent": traceparent}) as client:
            [ev] = [ev async for ev in client.send_message(message("whoami"))]
            return json.loads(ev.message.parts[0].text)

    seen = anyio.run(body)
    [span] = collector.in_trace(trace_id)
    assert span.parent_span_id.hex() == agent_span
    assert span.name == "SendMessage echo"
    a = attributes(span)
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "echo"
    assert a["rpc.method"] == "SendMessage" and a["airlock.outcome"] == "served"
    assert seen["traceparent"] == f"00-{trace_id}-{span.span_id.hex()}-01"


def test_a2a_passes_the_agents_trace_context_unchanged_when_traces_are_off(make_gateway, echo_agent):
    gw = make_gateway(lambda c: c.update(a2a={"agents": {"echo": echo_agent.config()}}))
    _, _, traceparent = agent_context()

    async def body():
        async with a2a_connect(gw, "echo", streaming=False, headers={"traceparent": traceparent}) as client:
            [ev] = [ev async for ev in client.send_message(message("whoami"))]
            return json.loads(ev.message.parts[0].text)

    assert anyio.run(body)["traceparent"] == traceparent


class Recorder(http.server.BaseHTTPRequestHandler):
    """A destination that answers every GET and remembers the headers it got."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_GET(self):
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_plain_http_egress_is_an_http_client_span_without_the_query(make_gateway, collector):
    destination = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=destination.serve_forever, daemon=True).start()
    egress = f"127.0.0.1:{free_port()}"

    def with_egress(config):
        config["listen"]["egress"] = egress
        config["egress"] = {"allow_private": ["127.0.0.1"]}

    gw = make_gateway(traced(collector, with_egress))
    trace_id, agent_span, traceparent = agent_context()
    port = destination.server_port
    try:
        with httpx2.Client(proxy=f"http://{MAIN_AGENT}:{MAIN_KEY}@{egress}", trust_env=False, timeout=10) as client:
            res = client.get(f"http://127.0.0.1:{port}/report?api_key=not-for-traces", headers={"traceparent": traceparent})
        assert res.status_code == 200 and res.text == "ok"
    finally:
        destination.shutdown()

    [span] = collector.in_trace(trace_id)
    assert span.parent_span_id.hex() == agent_span
    assert span.name == "GET"
    a = attributes(span)
    assert a["http.request.method"] == "GET"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == port
    assert a["url.full"] == f"http://127.0.0.1:{port}/report"
    assert a["http.response.status_code"] == 200
    assert a["airlock.kind"] == "egress" and a["airlock.agent"] == MAIN_AGENT
    assert "not-for-traces" not in json.dumps(a)
    [headers] = Recorder.seen[-1:]
    assert headers["traceparent"] == f"00-{trace_id}-{span.span_id.hex()}-01"


def test_spans_still_queued_at_shutdown_reach_the_collector(make_gateway, collector, monkeypatch):
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY")  # the SDK's 5 s: the span is still queued
    gw = make_gateway(traced(collector))
    trace_id, _, traceparent = agent_context()
    gw.openai().chat.completions.create(model="gpt-e2e", messages=MESSAGES, extra_headers={"traceparent": traceparent})
    assert gw.stop() == 0
    [span] = collector.in_trace(trace_id, timeout=0)
    assert span.name == "chat gpt-e2e"


def test_a_collector_that_is_down_costs_spans_and_a_warning_never_a_call(make_gateway, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    gw = make_gateway(lambda c: c["telemetry"].update(otlp_endpoint=f"http://127.0.0.1:{closed_port()}"))
    client = gw.openai()
    for _ in range(4):
        started = time.monotonic()
        client.chat.completions.create(model="gpt-e2e", messages=MESSAGES)
        assert time.monotonic() - started < 2
        time.sleep(0.3)  # let an export fail in between
    assert len(gw.events(4)) == 4
    log = gw.log_text()
    assert log.count("traces could not be sent to the OTLP collector") == 1, log[-3000:]


def test_airlock_check_refuses_an_endpoint_that_is_not_an_http_url(gateway, airlock_bin, tmp_path):
    config = dict(gateway.config, telemetry={"log": "info", "otlp_endpoint": "127.0.0.1:4318"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(to_yaml(config) + "\n")
    res = subprocess.run(
        [str(airlock_bin), "check", "--config", str(bad)], capture_output=True, text=True, env=gateway.env(), timeout=20
    )
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "telemetry.otlp_endpoint `127.0.0.1:4318` must start with http:// or https://" in out, out
    [line] = [i + 1 for i, l in enumerate(bad.read_text().splitlines()) if "otlp_endpoint" in l]
    assert f"line {line}" in out, out

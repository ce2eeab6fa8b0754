"""The A2A gateway with real peers: a server agent built with the Python `a2a-sdk` (A2A 1.0
with its 0.3 compatibility layer) behind `/a2a/<name>`, and the SDK's own client
discovering it through the gateway's rewritten card."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest
from a2a.client import A2ACardResolver, A2AClientError
from a2a.types.a2a_pb2 import CancelTaskRequest, GetExtendedAgentCardRequest, GetTaskRequest, TaskState

from a2a_support import UPSTREAM_TOKEN, RemoteAgent, artifact_text, connect, message, rpc, sse_results, v03_message
from support import ADMIN_TOKEN, MAIN_AGENT, MAIN_KEY, OTHER_AGENT, OTHER_KEY, WRONG_KEY, closed_port


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    agent = RemoteAgent("echo", tmp_path_factory.mktemp("a2a"))
    yield agent
    agent.stop()


def with_a2a(*remotes: RemoteAgent, **agent_fields):
    def edit(config):
        config["a2a"] = {"agents": {r.name: r.config() for r in remotes}}
        config["agents"][0].update(agent_fields)

    return edit


def test_an_agent_discovers_the_remote_agent_through_the_gateway_and_talks_to_it(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))
    base = f"{gw.url}/a2a/echo"
    seen: list = []

    async def body():
        # The card the SDK parses points every interface at the gateway and keeps no
        # signature or security scheme of the remote agent.
        import httpx

        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {MAIN_KEY}"}, trust_env=False) as http:
            card = await A2ACardResolver(http, base).get_agent_card()
        assert card.name == "echo" and [s.id for s in card.skills] == ["echo"]
        assert {i.url for i in card.supported_interfaces} == {base}
        assert {i.protocol_version for i in card.supported_interfaces} == {"1.0", "0.3"}
        assert len(card.signatures) == 0
        assert list(card.security_schemes) == ["airlock"]
        assert card.security_schemes["airlock"].http_auth_security_scheme.scheme == "Bearer"

        async with connect(gw, "echo", streaming=False, seen=seen) as client:
            events = [ev async for ev in client.send_message(message("hello"))]
        assert len(events) == 1
        task = events[0].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert artifact_text(task) == "echo: hello"

    anyio.run(body)
    assert seen == [("GET", f"{base}/.well-known/agent-card.json"), ("POST", base)]
    # Both card locations, as JSON: nothing of the remote agent's address is left.
    for path in ("agent-card.json", "agent.json"):
        res = httpx2.get(f"{base}/.well-known/{path}", headers={"Authorization": f"Bearer {MAIN_KEY}"}, trust_env=False)
        assert res.status_code == 200, res.text
        card = res.json()
        assert str(echo.port) not in res.text
        assert "signatures" not in card and card["url"] == base
        assert card["capabilities"]["pushNotifications"] is False  # as the remote agent says


def test_a_task_streams_event_by_event_and_another_is_cancelled(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))

    async def body():
        async with connect(gw, "echo") as client:
            kinds = []
            async for ev in client.send_message(message("stream me")):
                kinds.append(ev.WhichOneof("payload"))
                last = ev
            assert kinds == ["task", "status_update", "artifact_update", "artifact_update", "status_update"]
            assert last.status_update.status.state == TaskState.TASK_STATE_COMPLETED

            # A slow task: its first event arrives long before it would end (the relay does
            # not wait for the stream), then the task is cancelled through the gateway.
            states = []
            with anyio.fail_after(15):
                async for ev in client.send_message(message("slow one")):
                    if ev.HasField("task"):
                        task_id = ev.task.id
                    elif ev.HasField("status_update"):
                        states.append(ev.status_update.status.state)
                        if ev.status_update.status.state == TaskState.TASK_STATE_WORKING:
                            cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
                            assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            assert states[-1] == TaskState.TASK_STATE_CANCELED
            got = await client.get_task(GetTaskRequest(id=task_id))
            assert got.status.state == TaskState.TASK_STATE_CANCELED

    anyio.run(body)
    events = [e for e in gw.events(4) if e["kind"] == "a2a"]
    by_op = {}
    for e in reversed(events):
        by_op.setdefault(e["operation"], []).append(e)
    streamed, slow = by_op["SendStreamingMessage"]
    assert streamed["task_state"] == "completed" and slow["task_state"] == "canceled"
    assert slow["task_id"] == by_op["CancelTask"][0]["task_id"] == by_op["GetTask"][0]["task_id"]
    assert by_op["CancelTask"][0]["task_state"] == "canceled"
    assert all(e["outcome"] == "served" and e["target"] == "echo" for e in events)


def test_a_v03_client_speaks_json_rpc_through_the_same_endpoint(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))
    res = rpc(gw, "echo", "message/send", v03_message("old school"), id=41)
    assert res.status_code == 200, res.text
    answer = res.json()
    assert answer["id"] == 41
    task = answer["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed"
    assert "".join(p["text"] for p in task["artifacts"][0]["parts"]) == "echo: old school"
    got = rpc(gw, "echo", "tasks/get", {"id": task["id"]}).json()["result"]
    assert got["id"] == task["id"] and got["status"]["state"] == "completed"

    streamed = rpc(gw, "echo", "message/stream", v03_message("streamed"), id="s1")
    assert streamed.headers["content-type"].startswith("text/event-stream")
    results = [m["result"] for m in sse_results(streamed)]
    assert all(m["id"] == "s1" for m in sse_results(streamed))
    assert results[-1]["kind"] == "status-update" and results[-1]["status"]["state"] == "completed"

    events = [e for e in gw.events(3) if e["kind"] == "a2a"]
    stream_ev, get_ev, send_ev = events[0], events[1], events[2]
    assert send_ev["operation"] == "message/send" and send_ev["a2a_version"] == "0.3"
    assert send_ev["task_id"] == task["id"] and send_ev["task_state"] == "completed"
    assert get_ev["operation"] == "tasks/get" and get_ev["task_id"] == task["id"]
    assert stream_ev["operation"] == "message/stream" and stream_ev["task_state"] == "completed"


def test_the_remote_agent_sees_config_credentials_and_its_own_host_never_the_agent_key(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))

    async def body():
        async with connect(gw, "echo", streaming=False, headers={"x-airlock-run": "run-a2a-host"}) as client:
            [ev] = [ev async for ev in client.send_message(message("whoami"))]
            return json.loads(ev.message.parts[0].text)

    seen = anyio.run(body)
    assert seen["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert seen["host"] == f"127.0.0.1:{echo.port}"
    assert seen["a2a-version"] == "1.0"
    assert MAIN_KEY not in json.dumps(seen) and "x-airlock-run" not in seen
    [ev] = [e for e in gw.events(1) if e["kind"] == "a2a"]
    assert ev["run_id"] == "run-a2a-host"


def test_agents_outside_the_allow_list_are_refused_with_a_reason(make_gateway, echo):
    gw = make_gateway(with_a2a(echo, allow={"models": ["*-e2e"], "agents": ["planner-*"]}))

    async def body():
        # The public card is there for any signed-in agent; calling the agent is not.
        async with connect(gw, "echo", streaming=False) as client:
            with pytest.raises(A2AClientError) as denied:
                [ev async for ev in client.send_message(message("hello"))]
            assert "-31403" in str(denied.value) and "echo" in str(denied.value)
        # An agent without an allow list may.
        async with connect(gw, "echo", key=OTHER_KEY, streaming=False) as client:
            [ev] = [ev async for ev in client.send_message(message("hello"))]
            assert ev.task.status.state == TaskState.TASK_STATE_COMPLETED

    anyio.run(body)
    res = rpc(gw, "echo", "SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}}, id="d1", **{"A2A-Version": "1.0"})
    assert res.status_code == 200 and res.headers["x-airlock-reason"] == "not_allowed"
    err = res.json()
    assert err["id"] == "d1" and err["error"]["code"] == -31403
    assert err["error"]["data"]["reason"] == "not_allowed"
    denied = [e for e in gw.events(2) if e["kind"] == "a2a"]
    assert {e["outcome"] for e in denied} == {"denied"} and {e["reason"] for e in denied} == {"not_allowed"}
    assert gw.events(1, agent=OTHER_AGENT)[0]["outcome"] == "served"


def push_requests(url: str) -> list[tuple[str, dict]]:
    push = {"url": url, "token": "t"}
    return [
        ("CreateTaskPushNotificationConfig", {"taskId": "t1", **push}),
        ("tasks/pushNotificationConfig/set", {"taskId": "t1", "pushNotificationConfig": push}),
        ("SendMessage", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}, "configuration": {"taskPushNotificationConfig": push}}),
        ("message/send", {**v03_message("x"), "configuration": {"pushNotificationConfig": push}}),
    ]


def test_push_notification_urls_are_held_to_the_egress_rules(make_gateway, echo):
    def edit(config):
        with_a2a(echo)(config)
        config["egress"] = {"deny": ["*.evil.test"]}

    gw = make_gateway(edit)
    # A private address: the remote agent would call into our network for the caller.
    for method, params in push_requests("http://127.0.0.1:9/hook"):
        res = rpc(gw, "echo", method, params)
        err = res.json()["error"]
        assert err["data"]["reason"] == "private_address", method
        assert res.headers["x-airlock-reason"] == "private_address"
    # A host the egress policy denies.
    for method, params in push_requests("https://hooks.evil.test/x"):
        err = rpc(gw, "echo", method, params).json()["error"]
        assert err["data"]["reason"] == "not_allowed" and "egress.deny" in err["message"], method
    # A public address passes the gateway; the remote agent then answers for itself (this
    # one supports no push notifications, so nothing is ever sent to that address).
    for method, params in push_requests("http://93.184.216.34/hook"):
        res = rpc(gw, "echo", method, params)
        assert res.headers.get("x-airlock-reason") not in ("not_allowed", "private_address"), method
        assert res.json().get("error", {}).get("code") != -31403, method


def test_agents_must_sign_in(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))
    card = f"{gw.url}/a2a/echo/.well-known/agent-card.json"
    for key in (None, WRONG_KEY):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        res = httpx2.get(card, headers=headers, trust_env=False)
        assert res.status_code == 401 and res.headers["www-authenticate"].startswith("Bearer")
        res = rpc(gw, "echo", "SendMessage", {}, key=key)
        assert res.status_code == 401 and res.json()["error"]["data"]["reason"] == "unauthorized"
    assert rpc(gw, "nobody", "SendMessage", {}).status_code == 404
    # Garbage gets JSON-RPC errors; methods A2A does not define are not forwarded.
    bad = httpx2.post(f"{gw.url}/a2a/echo", content=b"{nope", headers={"Authorization": f"Bearer {MAIN_KEY}"}, trust_env=False)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700
    assert rpc(gw, "echo", "tasks/delete", {}).json()["error"]["code"] == -32601
    refused = [e for e in gw.events(4, agent=None) if e["kind"] == "a2a"]
    assert {e["reason"] for e in refused} == {"unauthorized"}


def test_limits_the_loop_guard_and_the_kill_switch_apply(make_gateway, echo):
    gw = make_gateway(with_a2a(echo, guards={"loops": {"identical_calls": 2, "window": "60s"}}))
    same = {"message": {"messageId": "ignored-by-the-guard", "role": "ROLE_USER", "parts": [{"text": "again"}]}}
    for i in range(2):
        same["message"]["messageId"] = f"m{i}"
        assert "result" in rpc(gw, "echo", "SendMessage", same, **{"A2A-Version": "1.0"}).json()
    same["message"]["messageId"] = "m3"
    looped = rpc(gw, "echo", "SendMessage", same, **{"A2A-Version": "1.0"}).json()
    assert looped["error"]["data"]["reason"] == "loop_detected" and looped["error"]["code"] == -31429

    res = gw.http.post(f"{gw.admin_url}/api/agents/{MAIN_AGENT}/suspend", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert res.status_code == 200, res.text
    stopped = rpc(gw, "echo", "message/send", v03_message("after")).json()
    assert stopped["error"]["data"]["reason"] == "suspended"


def test_an_agent_wide_rate_limit_counts_a2a_calls(make_gateway, echo):
    gw = make_gateway(with_a2a(echo, limits={"requests_per_minute": 1}))
    assert "result" in rpc(gw, "echo", "message/send", v03_message("one")).json()
    limited = rpc(gw, "echo", "message/send", v03_message("two"))
    assert limited.json()["error"]["data"]["reason"] == "rate_limited"
    assert limited.headers["x-airlock-reason"] == "rate_limited"


def test_the_extended_card_is_rewritten_like_the_public_one(make_gateway, echo):
    gw = make_gateway(with_a2a(echo))

    async def body():
        async with connect(gw, "echo") as client:
            card = await client.get_extended_agent_card(GetExtendedAgentCardRequest())
        assert "secret-echo" in [s.id for s in card.skills]
        assert {i.url for i in card.supported_interfaces} == {f"{gw.url}/a2a/echo"}
        assert len(card.signatures) == 0 and list(card.security_schemes) == ["airlock"]

    anyio.run(body)


def test_a_dead_or_slow_remote_agent_fails_by_name(make_gateway, echo, tmp_path):
    doomed = RemoteAgent("doomed", tmp_path)
    gw = make_gateway(with_a2a(echo, doomed))
    assert "result" in rpc(gw, "doomed", "message/send", v03_message("alive")).json()
    doomed.stop()
    err = rpc(gw, "doomed", "message/send", v03_message("dead?")).json()["error"]
    assert err["code"] == -32603
    assert err["data"] == {"reason": "upstream_unavailable", "agent": "doomed"}
    # The config's upstream_timeout is 1 s; a blocking send of a 30 s task times out.
    err = rpc(gw, "echo", "message/send", v03_message("slow blocking")).json()["error"]
    assert err["data"] == {"reason": "upstream_timeout", "agent": "echo"}
    reasons = {e["reason"] for e in gw.events(3) if e["kind"] == "a2a"}
    assert {"upstream_unavailable", "upstream_timeout"} <= reasons


def test_a_card_sending_json_rpc_to_another_origin_is_refused(make_gateway, tmp_path):
    # Nothing listens there, and nothing may be sent there.
    elsewhere = f"http://127.0.0.1:{closed_port()}/"
    rogue = RemoteAgent("rogue", tmp_path, "--rpc-url", elsewhere)
    try:
        gw = make_gateway(with_a2a(rogue))
        res = rpc(gw, "rogue", "message/send", v03_message("hi"))
        err = res.json()["error"]
        assert err["data"]["reason"] == "not_allowed" and elsewhere in err["message"]
        assert res.headers["x-airlock-reason"] == "not_allowed"
    finally:
        rogue.stop()


def test_a_card_only_at_the_older_location_is_found(make_gateway, tmp_path):
    old = RemoteAgent("old", tmp_path, "--card-path", "/.well-known/agent.json")
    try:
        gw = make_gateway(with_a2a(old))

        async def body():
            async with connect(gw, "old", streaming=False) as client:
                [ev] = [ev async for ev in client.send_message(message("found you"))]
            assert artifact_text(ev.task) == "echo: found you"

        anyio.run(body)
    finally:
        old.stop()

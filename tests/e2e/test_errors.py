"""Fallback, and every way a call can fail: each answered in the shape the client's SDK
expects, with the reason code in the body and in `x-airlock-reason`, and recorded."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from support import MAIN_AGENT, MAIN_KEY, WRONG_KEY, expected_cost_nanos, mock_words

HELLO = [{"role": "user", "content": "hello"}]


def openai_error(excinfo: pytest.ExceptionInfo, status: int, code: str) -> dict:
    """Checks an OpenAI-shaped error and returns its `error` object."""
    e = excinfo.value
    assert e.status_code == status
    assert e.code == code, e.body
    assert e.body["code"] == code
    assert isinstance(e.body["message"], str) and e.body["message"]
    assert e.body["type"]
    assert e.response.json()["error"]["code"] == code
    assert e.response.headers["x-airlock-reason"] == code
    return e.body


def anthropic_error(excinfo: pytest.ExceptionInfo, status: int, code: str) -> dict:
    """Checks an Anthropic-shaped error and returns its `error` object."""
    e = excinfo.value
    assert e.status_code == status
    assert e.body["type"] == "error"
    assert e.body["error"]["code"] == code
    assert e.body["error"]["type"] == e.type
    assert e.body["error"]["message"]
    assert e.response.headers["x-airlock-reason"] == code
    return e.body["error"]


def recorded(gateway, status: int, reason: str, outcome: str, agent: str | None = MAIN_AGENT) -> dict:
    e = gateway.event(agent=agent)
    assert (e["status"], e["reason"], e["outcome"]) == (status, reason, outcome)
    assert e["kind"] == "llm"
    assert e["cost_nanos"] == 0
    return e


# --- fallback ---------------------------------------------------------------------------


def test_fallback_serves_from_the_second_target_when_the_first_answers_503(gateway, mock, tag):
    resp = gateway.openai().chat.completions.create(
        model="fallback-e2e", messages=HELLO, extra_headers={"x-e2e-tag": tag, "x-mock-words": "2"}
    )
    assert resp.choices[0].message.content == mock_words(2)

    seen = mock.requests_tagged(tag)
    assert [r["path"] for r in seen] == ["/status=503/v1/chat/completions", "/v1/chat/completions"]

    e = gateway.event()  # exactly one event for the call, not one per attempt
    assert e["target"] == "mock/fallback-upstream"
    assert e["provider"] == "mock"
    assert e["cost_nanos"] == expected_cost_nanos(
        "mock/fallback-upstream", input_tokens=resp.usage.prompt_tokens, output_tokens=2
    )


def test_streamed_fallback_serves_from_the_second_target(gateway):
    stream = gateway.openai().chat.completions.create(model="fallback-e2e", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == mock_words(8)
    e = gateway.event()
    assert (e["status"], e["outcome"], e["target"]) == (200, "served", "mock/fallback-upstream")


# --- identity and policy ----------------------------------------------------------------


def test_a_wrong_key_is_401_unauthorized_for_the_openai_sdk(gateway):
    with pytest.raises(openai.AuthenticationError) as ei:
        gateway.openai(key=WRONG_KEY).chat.completions.create(model="gpt-e2e", messages=HELLO)
    openai_error(ei, 401, "unauthorized")
    e = recorded(gateway, 401, "unauthorized", "failed", agent=None)
    assert e["agent"] is None


def test_a_wrong_key_is_401_unauthorized_for_the_anthropic_sdk(gateway):
    with pytest.raises(anthropic.AuthenticationError) as ei:
        gateway.anthropic(key=WRONG_KEY).messages.create(model="claude-e2e", max_tokens=10, messages=HELLO)
    anthropic_error(ei, 401, "unauthorized")
    recorded(gateway, 401, "unauthorized", "failed", agent=None)


def test_a_missing_key_is_401_unauthorized(gateway):
    res = httpx2.post(
        f"{gateway.url}/v1/chat/completions", json={"model": "gpt-e2e", "messages": HELLO}, trust_env=False
    )
    assert res.status_code == 401
    assert res.json()["error"]["code"] == "unauthorized"
    assert res.headers["x-airlock-reason"] == "unauthorized"
    recorded(gateway, 401, "unauthorized", "failed", agent=None)


def test_an_unknown_model_is_404_unknown_model(gateway):
    with pytest.raises(openai.NotFoundError) as ei:
        gateway.openai().chat.completions.create(model="no-such-e2e", messages=HELLO)
    openai_error(ei, 404, "unknown_model")
    e = recorded(gateway, 404, "unknown_model", "failed")
    assert e["model"] == "no-such-e2e"


def test_an_unknown_model_on_messages_is_an_anthropic_shaped_404(gateway):
    with pytest.raises(anthropic.NotFoundError) as ei:
        gateway.anthropic().messages.create(model="no-such-e2e", max_tokens=10, messages=HELLO)
    anthropic_error(ei, 404, "unknown_model")
    recorded(gateway, 404, "unknown_model", "failed")


def test_a_model_outside_the_agents_allow_list_is_403_not_allowed(gateway, mock, tag):
    with pytest.raises(openai.PermissionDeniedError) as ei:
        gateway.openai().chat.completions.create(
            model="secret-model", messages=HELLO, extra_headers={"x-e2e-tag": tag}
        )
    openai_error(ei, 403, "not_allowed")
    recorded(gateway, 403, "not_allowed", "denied")
    assert mock.requests_tagged(tag) == [], "a denied call never reaches the provider"


# --- bad input --------------------------------------------------------------------------


def test_a_body_over_max_body_is_413_too_large(gateway, mock, tag):
    big = "word " * 14_000  # 70 KB, over the configured 64 KiB
    with pytest.raises(openai.APIStatusError) as ei:
        gateway.openai().chat.completions.create(
            model="gpt-e2e", messages=[{"role": "user", "content": big}], extra_headers={"x-e2e-tag": tag}
        )
    openai_error(ei, 413, "too_large")
    recorded(gateway, 413, "too_large", "failed")
    assert mock.requests_tagged(tag) == []


def test_a_body_over_max_body_on_messages_is_413_for_the_anthropic_sdk(gateway):
    big = "word " * 14_000
    with pytest.raises(anthropic.ContentTooLargeError) as ei:
        gateway.anthropic().messages.create(
            model="claude-e2e", max_tokens=10, messages=[{"role": "user", "content": big}]
        )
    anthropic_error(ei, 413, "too_large")
    recorded(gateway, 413, "too_large", "failed")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"model": "gpt-e2e", "messages": [', id="malformed-json"),
        pytest.param(
            b'{"model": "gpt-e2e", "messages": [{"role": "user", "content": "caf\xe9 \xff"}]}', id="invalid-utf8"
        ),
        pytest.param(b'{"messages": []}', id="missing-model"),
        pytest.param(b'["gpt-e2e"]', id="not-an-object"),
        pytest.param(b'{"model": 5, "messages": []}', id="model-not-a-string"),
        pytest.param(b'{"model": "gpt-e2e", "messages": [], "stream": "yes"}', id="stream-not-a-boolean"),
    ],
)
def test_a_body_that_is_not_a_valid_request_is_400_bad_request(gateway, body):
    res = httpx2.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {MAIN_KEY}", "Content-Type": "application/json"},
        trust_env=False,
    )
    assert res.status_code == 400
    err = res.json()["error"]
    assert err["code"] == "bad_request"
    assert err["message"]
    assert res.headers["x-airlock-reason"] == "bad_request"
    recorded(gateway, 400, "bad_request", "failed")


def test_a_body_that_is_not_declared_as_json_is_400_bad_request(gateway, mock, tag):
    res = httpx2.post(
        f"{gateway.url}/v1/chat/completions",
        content=b'{"model": "gpt-e2e", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"Authorization": f"Bearer {MAIN_KEY}", "Content-Type": "text/plain", "x-e2e-tag": tag},
        trust_env=False,
    )
    assert res.status_code == 400
    assert res.headers["x-airlock-reason"] == "bad_request"
    assert mock.requests_tagged(tag) == []


@pytest.mark.parametrize(
    "path,body",
    [
        pytest.param("/v1/chat/completions", {"model": "gpt-e2e"}, id="chat-without-messages"),
        pytest.param(
            "/v1/messages", {"model": "claude-e2e", "messages": [{"role": "user", "content": "hi"}]},
            id="messages-without-max_tokens",
        ),
    ],
)
def test_a_request_missing_a_required_field_is_400_bad_request(gateway, mock, tag, path, body):
    res = httpx2.post(
        f"{gateway.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {MAIN_KEY}", "x-e2e-tag": tag},
        trust_env=False,
    )
    assert res.status_code == 400
    assert res.headers["x-airlock-reason"] == "bad_request"
    assert mock.requests_tagged(tag) == [], "refused before it reaches the provider"


def test_headers_over_64_kib_get_431(gateway):
    res = httpx2.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-e2e", "messages": HELLO},
        headers={"Authorization": f"Bearer {MAIN_KEY}", "x-padding": "a" * 70_000},
        trust_env=False,
    )
    assert res.status_code == 431


def test_an_openai_model_on_messages_is_an_anthropic_shaped_400_naming_chat_completions(gateway):
    with pytest.raises(anthropic.BadRequestError) as ei:
        gateway.anthropic().messages.create(model="gpt-e2e", max_tokens=10, messages=HELLO)
    err = anthropic_error(ei, 400, "bad_request")
    assert "/v1/chat/completions" in err["message"]
    recorded(gateway, 400, "bad_request", "failed")


def test_an_anthropic_model_on_chat_completions_is_400_naming_the_messages_route(gateway):
    with pytest.raises(openai.BadRequestError) as ei:
        gateway.openai().chat.completions.create(model="claude-e2e", messages=HELLO)
    err = openai_error(ei, 400, "bad_request")
    assert "/v1/messages" in err["message"]
    recorded(gateway, 400, "bad_request", "failed")


# --- upstream failures ------------------------------------------------------------------


def test_an_unreachable_upstream_is_502_upstream_unavailable(gateway):
    with pytest.raises(openai.InternalServerError) as ei:
        gateway.openai().chat.completions.create(model="unreachable-e2e", messages=HELLO)
    openai_error(ei, 502, "upstream_unavailable")
    e = recorded(gateway, 502, "upstream_unavailable", "failed")
    assert e["target"] == "dead/chat-upstream"


def test_every_target_failing_is_502_upstream_unavailable(make_gateway):
    gw = make_gateway(lambda c: c["models"].update({"all-down-e2e": {"targets": ["down/a", "down/b"]}}))
    with pytest.raises(openai.InternalServerError) as ei:
        gw.openai().chat.completions.create(model="all-down-e2e", messages=HELLO)
    openai_error(ei, 502, "upstream_unavailable")
    recorded(gw, 502, "upstream_unavailable", "failed")


def test_an_upstream_slower_than_the_timeout_is_504_upstream_timeout(gateway):
    with pytest.raises(openai.InternalServerError) as ei:
        gateway.openai().chat.completions.create(
            model="gpt-e2e", messages=HELLO, extra_headers={"x-mock-delay-ms": "3000"}
        )
    openai_error(ei, 504, "upstream_timeout")
    e = recorded(gateway, 504, "upstream_timeout", "failed")
    assert 900 <= e["latency_ms"] < 3000, "the configured 1s timeout, not the mock's 3s"


def test_an_upstream_timeout_on_messages_is_504_for_the_anthropic_sdk(gateway):
    with pytest.raises(anthropic.GatewayTimeoutError) as ei:
        gateway.anthropic().messages.create(
            model="claude-e2e", max_tokens=10, messages=HELLO, extra_headers={"x-mock-delay-ms": "3000"}
        )
    anthropic_error(ei, 504, "upstream_timeout")
    recorded(gateway, 504, "upstream_timeout", "failed")


def test_an_upstream_that_breaks_mid_stream_is_recorded_as_failed_and_metered(gateway):
    client = gateway.openai()
    received = []
    with pytest.raises(openai.APIConnectionError):
        stream = client.chat.completions.create(
            model="gpt-e2e",
            messages=HELLO,
            stream=True,
            extra_headers={"x-mock-disconnect-after": "3", "x-mock-words": "10"},
        )
        for chunk in stream:
            received.append(chunk.choices[0].delta.content if chunk.choices else None)
    # What the SDK yields before it raises depends on how the bytes were buffered.
    assert "".join(x or "" for x in received) in ("", "w1 ", "w1 w2 ", "w1 w2 w3 ")

    e = gateway.event()
    assert e["status"] == 200, "the head was already sent"
    assert (e["outcome"], e["reason"]) == ("failed", "upstream_unavailable")
    assert e["output_tokens"] >= 3, "metered from what was relayed"

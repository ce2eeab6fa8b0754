"""Credentials: the provider's key goes upstream, the agent's never does, and neither
ever appears in the gateway's log."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from support import (
    ADMIN_TOKEN,
    ANTHROPIC_PROVIDER_KEY,
    MAIN_KEY,
    OPENAI_PROVIDER_KEY,
    OTHER_KEY,
    WRONG_KEY,
    wait_for,
)

HELLO = [{"role": "user", "content": "hello"}]


def exercise(gw, tag: str) -> None:
    """A bit of everything, each call tagged for the mock's log."""
    h = {"x-e2e-tag": tag}
    oa = gw.openai(default_headers=h)
    oa.chat.completions.create(model="gpt-e2e", messages=HELLO)
    list(oa.chat.completions.create(model="gpt-e2e", messages=HELLO, stream=True))
    oa.responses.create(model="gpt-e2e", input="hello")
    oa.embeddings.create(model="embed-e2e", input="hello")
    oa.chat.completions.create(model="fallback-e2e", messages=HELLO)
    gw.openai(key=OTHER_KEY, default_headers=h).chat.completions.create(model="secret-model", messages=HELLO)
    an = gw.anthropic(default_headers=h)
    an.messages.create(model="claude-e2e", max_tokens=20, messages=HELLO)
    with an.messages.stream(model="claude-e2e", max_tokens=20, messages=HELLO) as s:
        s.get_final_message()
    anthropic.Anthropic(
        api_key=None, auth_token=MAIN_KEY, base_url=gw.url, max_retries=0, default_headers=h
    ).messages.create(model="claude-e2e", max_tokens=20, messages=HELLO)
    # Failures log warnings: make some.
    for model in ("unreachable-e2e", "no-such-e2e"):
        with pytest.raises(openai.APIStatusError):
            oa.chat.completions.create(model=model, messages=HELLO)
    with pytest.raises(openai.AuthenticationError):
        gw.openai(key=WRONG_KEY, default_headers=h).chat.completions.create(model="gpt-e2e", messages=HELLO)
    with pytest.raises(openai.InternalServerError):
        oa.chat.completions.create(model="gpt-e2e", messages=HELLO, extra_headers={"x-mock-delay-ms": "1500"})


def test_upstream_gets_the_provider_key_and_never_the_agent_key(gateway, mock, tag):
    exercise(gateway, tag)
    seen = mock.requests_tagged(tag)
    assert len(seen) >= 9

    for r in seen:
        headers = r["headers"]
        for name, value in headers.items():
            for agent_key in (MAIN_KEY, OTHER_KEY, WRONG_KEY):
                assert agent_key not in value, f"agent key forwarded in {name} to {r['path']}"
        assert "x-airlock-run" not in headers
        if r["path"].endswith("/v1/messages"):
            assert headers["x-api-key"] == ANTHROPIC_PROVIDER_KEY
            assert "authorization" not in headers
        else:
            assert headers["authorization"] == f"Bearer {OPENAI_PROVIDER_KEY}"
            assert "x-api-key" not in headers
        assert MAIN_KEY not in str(r["body"])


def test_the_log_never_shows_a_key_even_at_debug_level(make_gateway, tag):
    def verbose(c):
        c["telemetry"]["log"] = "debug"

    gw = make_gateway(verbose)
    exercise(gw, tag)
    # A config reload logs too.
    gw.write_config()
    assert wait_for(lambda: "config reloaded" in gw.log_text(), timeout=5)
    gw.events(10)

    log = gw.log_text()
    assert "airlock" in log  # the log is there at all
    for secret in (OPENAI_PROVIDER_KEY, ANTHROPIC_PROVIDER_KEY, MAIN_KEY, OTHER_KEY, WRONG_KEY, ADMIN_TOKEN):
        assert secret not in log


def test_the_admin_api_needs_the_admin_token_and_is_not_on_the_agent_port(gateway):
    with httpx2.Client(trust_env=False, timeout=5) as http:
        assert http.get(f"{gateway.admin_url}/api/events").status_code == 401
        assert http.get(f"{gateway.admin_url}/api/events", headers={"Authorization": f"Bearer {MAIN_KEY}"}).status_code == 401
        assert http.get(
            f"{gateway.admin_url}/api/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).status_code == 200
        for path in ("/api/events", "/metrics"):
            res = http.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert res.status_code in (401, 404), path

"""What operators read: Prometheus metrics and the usage roll-ups."""

from __future__ import annotations

import re

import openai
import pytest

from support import MAIN_AGENT, OTHER_AGENT, OTHER_KEY, expected_cost_nanos

HELLO = [{"role": "user", "content": "hello"}]


def test_metrics_count_requests_by_agent_and_model_and_time_airlocks_overhead(gateway):
    gateway.openai().chat.completions.create(model="gpt-e2e", messages=HELLO)
    gateway.events(1)
    text = gateway.metrics()

    requests = [l for l in text.splitlines() if l.startswith("airlock_requests_total{")]
    assert any(f'agent="{MAIN_AGENT}"' in l and 'model="gpt-e2e"' in l for l in requests), requests
    assert re.search(r"^airlock_overhead_seconds_(count|bucket|sum)\{", text, re.M), text
    assert re.search(r'^airlock_overhead_seconds_count\{[^}]*agent="e2e-bot"[^}]*\} 1$', text, re.M), text


def test_usage_rolls_up_requests_denials_tokens_and_cost(gateway):
    main, other = gateway.openai(), gateway.openai(key=OTHER_KEY)
    r1 = main.chat.completions.create(model="gpt-e2e", messages=HELLO, extra_headers={"x-mock-words": "2"})
    r2 = main.chat.completions.create(model="gpt-e2e", messages=HELLO, extra_headers={"x-mock-words": "4"})
    with pytest.raises(openai.PermissionDeniedError):
        main.chat.completions.create(model="secret-model", messages=HELLO)
    r3 = other.chat.completions.create(model="secret-model", messages=HELLO, extra_headers={"x-mock-words": "1"})
    gateway.events(3)
    gateway.events(1, agent=OTHER_AGENT)

    def cost(r):
        return expected_cost_nanos(
            "mock/chat-upstream", input_tokens=r.usage.prompt_tokens, output_tokens=r.usage.completion_tokens
        )

    by_agent = {row["key"]: row for row in gateway.usage("agent", since="1h")}
    m = by_agent[MAIN_AGENT]
    assert m["requests"] == 3
    assert m["denied"] == 1
    assert m["input_tokens"] == r1.usage.prompt_tokens + r2.usage.prompt_tokens
    assert m["output_tokens"] == 6
    assert m["cost_nanos"] == cost(r1) + cost(r2)
    assert m["cost_usd"] == pytest.approx(m["cost_nanos"] / 1e9)
    o = by_agent[OTHER_AGENT]
    assert (o["requests"], o["denied"], o["output_tokens"], o["cost_nanos"]) == (1, 0, 1, cost(r3))

    by_model = {row["key"]: row for row in gateway.usage("model", since="1h")}
    assert by_model["gpt-e2e"]["requests"] == 2
    assert by_model["secret-model"]["requests"] == 2

    by_team = {row["key"]: row for row in gateway.usage("team", since="1h")}
    assert set(by_team) >= {"qa", "ops"}


def test_events_can_be_filtered_by_kind_and_agent(gateway):
    gateway.openai().chat.completions.create(model="gpt-e2e", messages=HELLO)
    gateway.openai(key=OTHER_KEY).chat.completions.create(model="gpt-e2e", messages=HELLO)
    gateway.events(2, agent=None)

    llm = gateway.admin("/api/events", kind="llm").json()["events"]
    assert len(llm) == 2 and all(e["kind"] == "llm" for e in llm)
    assert gateway.admin("/api/events", kind="mcp").json()["events"] == []
    assert gateway.admin("/api/events", kind="bogus").status_code == 400
    assert [e["agent"] for e in gateway.admin("/api/events", agent=OTHER_AGENT).json()["events"]] == [OTHER_AGENT]
    newest, older = gateway.admin("/api/events", limit=2).json()["events"]
    assert newest["ts"] >= older["ts"], "newest first"
    assert len(gateway.admin("/api/events", limit=1).json()["events"]) == 1

"""The OpenAI SDK's Chat Completions through Airlock: answers, streams, tools, JSON mode,
and what each call leaves in the ledger."""

from __future__ import annotations

import json

import httpx2
import pytest

from support import (
    MAIN_AGENT,
    MAIN_KEY,
    MAIN_TEAM,
    OPENAI_PROVIDER_KEY,
    chat_prompt_tokens,
    expected_cost_nanos,
    mock_words,
)

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there world"},
]
PROMPT_TOKENS = chat_prompt_tokens(MESSAGES)  # 3 + 2 + 3 + 3 by the mock's rule
TARGET = "mock/chat-upstream"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


def test_chat_completion_is_metered_at_the_price_table(gateway, tag):
    client = gateway.openai()
    resp = client.chat.completions.create(
        model="gpt-e2e", messages=MESSAGES, extra_headers={"x-e2e-tag": tag, "x-mock-words": "3"}
    )

    assert resp.choices[0].message.content == mock_words(3)
    assert resp.usage.prompt_tokens == PROMPT_TOKENS
    assert resp.usage.completion_tokens == 3

    e = gateway.event()
    assert e["agent"] == MAIN_AGENT
    assert e["team"] == MAIN_TEAM
    assert e["kind"] == "llm"
    assert e["target"] == TARGET
    assert e["model"] == "gpt-e2e"
    assert e["operation"] == "chat.completions"
    assert e["input_tokens"] == resp.usage.prompt_tokens
    assert e["output_tokens"] == resp.usage.completion_tokens
    assert e["cached_input_tokens"] == 0
    assert e["reasoning_tokens"] == 0
    cost = expected_cost_nanos(TARGET, input_tokens=PROMPT_TOKENS, output_tokens=3)
    assert cost == 11 * 3_000 + 3 * 7_000  # $3 and $7 per 1M tokens
    assert e["cost_nanos"] == cost
    assert e["cost_usd"] == pytest.approx(cost / 1e9, rel=1e-12)
    assert e["run_id"] is None
    assert e["id"] and e["ts"] and e["latency_ms"] >= 0


def test_the_public_model_name_is_renamed_to_the_target_model_upstream(gateway, mock, tag):
    gateway.openai().chat.completions.create(model="gpt-e2e", messages=MESSAGES, extra_headers={"x-e2e-tag": tag})
    [seen] = mock.requests_tagged(tag)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["model"] == "chat-upstream"
    assert seen["body"]["messages"] == MESSAGES
    assert seen["headers"]["authorization"] == f"Bearer {OPENAI_PROVIDER_KEY}"


def test_stream_without_include_usage_hides_the_usage_chunk_but_is_metered(gateway, mock, tag):
    client = gateway.openai()
    stream = client.chat.completions.create(
        model="gpt-e2e",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-e2e-tag": tag, "x-mock-words": "5"},
    )
    chunks = list(stream)

    assert all(c.usage is None for c in chunks), "the client did not ask for usage"
    assert all(c.choices for c in chunks), "no usage-only chunk (empty choices) reaches the client"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == mock_words(5)
    assert chunks[-1].choices[0].finish_reason == "stop"

    # Airlock asked the provider for the usage it hid.
    [seen] = mock.requests_tagged(tag)
    assert seen["body"]["stream_options"] == {"include_usage": True}

    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)
    assert e["input_tokens"] == PROMPT_TOKENS
    assert e["output_tokens"] == 5
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=PROMPT_TOKENS, output_tokens=5)


def test_stream_with_include_usage_shows_the_usage_chunk_and_the_ledger_matches_it(gateway):
    client = gateway.openai()
    stream = client.chat.completions.create(
        model="gpt-e2e",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-mock-words": "4"},
    )
    chunks = list(stream)

    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert usage_chunks[0].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 4)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mock_words(4)

    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)
    assert e["input_tokens"] == usage.prompt_tokens
    assert e["output_tokens"] == usage.completion_tokens
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=usage.prompt_tokens, output_tokens=4)


def test_tool_calls_reach_the_sdk_parsed(gateway):
    client = gateway.openai()
    resp = client.chat.completions.create(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"q": "mock"}

    e = gateway.event()
    assert e["input_tokens"] == resp.usage.prompt_tokens
    assert e["output_tokens"] == resp.usage.completion_tokens


def test_streamed_tool_call_fragments_reassemble_in_the_sdk_helper(gateway):
    client = gateway.openai()
    with client.chat.completions.stream(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"q": "mock"}

    e = gateway.event()
    assert (e["status"], e["outcome"]) == (200, "served")
    assert e["input_tokens"] == chat_prompt_tokens([{"role": "user", "content": "weather in Paris?"}])


def test_json_mode_answer_parses_as_json(gateway):
    client = gateway.openai()
    resp = client.chat.completions.create(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_object"},
    )
    doc = json.loads(resp.choices[0].message.content)
    assert doc["ok"] is True


def test_cached_and_reasoning_tokens_are_recorded_and_cached_input_has_its_own_rate(gateway):
    client = gateway.openai()
    resp = client.chat.completions.create(
        model="gpt-e2e",
        messages=MESSAGES,
        extra_headers={"x-mock-cached-tokens": "6", "x-mock-reasoning-tokens": "2", "x-mock-words": "3"},
    )
    assert resp.usage.prompt_tokens_details.cached_tokens == 6
    assert resp.usage.completion_tokens_details.reasoning_tokens == 2
    assert resp.usage.completion_tokens == 5  # reasoning tokens are part of the output

    e = gateway.event()
    assert e["input_tokens"] == PROMPT_TOKENS  # includes the cached ones
    assert e["cached_input_tokens"] == 6
    assert e["reasoning_tokens"] == 2
    assert e["output_tokens"] == 5
    expected = expected_cost_nanos(TARGET, input_tokens=PROMPT_TOKENS, cached_input_tokens=6, output_tokens=5)
    assert expected == (PROMPT_TOKENS - 6) * 3_000 + 6 * 500 + 5 * 7_000
    assert e["cost_nanos"] == expected


def test_run_header_tags_the_event_and_stays_with_airlock(gateway, mock, tag):
    client = gateway.openai()
    client.chat.completions.create(
        model="gpt-e2e", messages=MESSAGES, extra_headers={"x-airlock-run": "r1", "x-e2e-tag": tag}
    )
    assert gateway.event()["run_id"] == "r1"
    [seen] = mock.requests_tagged(tag)
    assert "x-airlock-run" not in seen["headers"]


def test_the_agent_key_may_also_be_sent_as_x_api_key(gateway, mock, tag):
    res = httpx2.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-e2e", "messages": MESSAGES},
        headers={"x-api-key": MAIN_KEY, "x-e2e-tag": tag},
        trust_env=False,
    )
    assert res.status_code == 200
    assert res.json()["choices"][0]["message"]["content"] == mock_words(8)
    assert gateway.event()["agent"] == MAIN_AGENT
    [seen] = mock.requests_tagged(tag)
    assert "x-api-key" not in seen["headers"]
    assert seen["headers"]["authorization"] == f"Bearer {OPENAI_PROVIDER_KEY}"

"""The Anthropic SDK's Messages API through Airlock."""

from __future__ import annotations

import anthropic
import pytest

from support import ANTHROPIC_PROVIDER_KEY, MAIN_AGENT, MAIN_KEY, expected_cost_nanos, mock_words

TARGET = "anthropic/claude-upstream"
SYSTEM = "be brief"
MESSAGES = [{"role": "user", "content": "hello there world"}]
INPUT_TOKENS = 2 + 3 + 3  # system words + 3 per message + its words
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


def test_message_is_answered_and_metered(gateway, mock, tag):
    client = gateway.anthropic()
    msg = client.messages.create(
        model="claude-e2e",
        max_tokens=100,
        system=SYSTEM,
        messages=MESSAGES,
        extra_headers={"x-e2e-tag": tag, "x-mock-words": "5"},
    )
    assert msg.content[0].type == "text"
    assert msg.content[0].text == mock_words(5)
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == INPUT_TOKENS

    e = gateway.event()
    assert e["agent"] == MAIN_AGENT
    assert e["operation"] == "messages"
    assert e["target"] == TARGET
    assert e["model"] == "claude-e2e"
    assert e["input_tokens"] == INPUT_TOKENS
    assert e["output_tokens"] == msg.usage.output_tokens == 5
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=INPUT_TOKENS, output_tokens=5)

    # Upstream: the provider's key as x-api-key, a version, the upstream model name.
    [seen] = mock.requests_tagged(tag)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == ANTHROPIC_PROVIDER_KEY
    assert "anthropic-version" in seen["headers"]
    assert "authorization" not in seen["headers"]
    assert seen["body"]["model"] == "claude-upstream"


def test_message_stream_helper_gives_the_final_message_and_is_metered(gateway):
    client = gateway.anthropic()
    with client.messages.stream(
        model="claude-e2e",
        max_tokens=100,
        system=SYSTEM,
        messages=MESSAGES,
        extra_headers={"x-mock-words": "6"},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == mock_words(6)
    assert final.content[0].text == mock_words(6)

    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)
    assert e["input_tokens"] == final.usage.input_tokens == INPUT_TOKENS
    assert e["output_tokens"] == final.usage.output_tokens == 6
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=INPUT_TOKENS, output_tokens=6)


def test_tool_use_reaches_the_sdk_parsed(gateway):
    client = gateway.anthropic()
    msg = client.messages.create(
        model="claude-e2e",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    assert msg.stop_reason == "tool_use"
    [block] = msg.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"q": "mock"}
    assert gateway.event()["output_tokens"] == msg.usage.output_tokens


def test_streamed_tool_use_reassembles(gateway):
    client = gateway.anthropic()
    with client.messages.stream(
        model="claude-e2e",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_message()
    [block] = final.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"q": "mock"})
    e = gateway.event()
    assert (e["status"], e["outcome"]) == (200, "served")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cache_reads_and_writes_count_as_input_and_are_priced_at_their_own_rates(gateway, stream):
    client = gateway.anthropic()
    kw = dict(
        model="claude-e2e",
        max_tokens=100,
        messages=[{"role": "user", "content": "one two three four five six seven"}],
        extra_headers={"x-mock-cached-tokens": "4", "x-mock-cache-write-tokens": "2", "x-mock-words": "3"},
    )
    total_input = 3 + 7
    if stream:
        with client.messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    u = msg.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (total_input - 6, 4, 2)

    e = gateway.event()
    assert e["input_tokens"] == u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    assert e["cached_input_tokens"] == 4
    assert e["cache_write_tokens"] == 2
    assert e["output_tokens"] == 3
    expected = expected_cost_nanos(
        TARGET, input_tokens=total_input, cached_input_tokens=4, cache_write_tokens=2, output_tokens=3
    )
    # uncached $3, cache read $0.30, cache write $3.75, output $15 per 1M tokens
    assert expected == 4 * 3_000 + 4 * 300 + 2 * 3_750 + 3 * 15_000
    assert e["cost_nanos"] == expected


def test_bearer_auth_is_accepted_like_x_api_key(gateway, mock, tag):
    client = anthropic.Anthropic(
        api_key=None, auth_token=MAIN_KEY, base_url=gateway.url, max_retries=0, timeout=10
    )
    msg = client.messages.create(
        model="claude-e2e", max_tokens=50, messages=MESSAGES, extra_headers={"x-e2e-tag": tag}
    )
    assert msg.content[0].text == mock_words(8)
    assert gateway.event()["agent"] == MAIN_AGENT

    [seen] = mock.requests_tagged(tag)
    assert seen["headers"]["x-api-key"] == ANTHROPIC_PROVIDER_KEY
    assert "authorization" not in seen["headers"]

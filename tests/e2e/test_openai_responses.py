"""The OpenAI SDK's Responses API through Airlock, plain and streamed."""

from __future__ import annotations

from support import expected_cost_nanos, mock_words

TARGET = "mock/chat-upstream"
# The mock counts instructions' words, plus 3 and the words of a string input.
INPUT_TOKENS = 2 + 3 + 3


def test_responses_answer_is_metered_from_its_usage(gateway):
    client = gateway.openai()
    resp = client.responses.create(
        model="gpt-e2e", instructions="be brief", input="hello there world", extra_headers={"x-mock-words": "6"}
    )
    assert resp.output_text == mock_words(6)
    assert resp.usage.input_tokens == INPUT_TOKENS
    assert resp.usage.output_tokens == 6

    e = gateway.event()
    assert e["operation"] == "responses"
    assert e["target"] == TARGET
    assert e["input_tokens"] == resp.usage.input_tokens
    assert e["output_tokens"] == resp.usage.output_tokens
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=INPUT_TOKENS, output_tokens=6)


def test_responses_stream_helper_is_metered_from_the_completed_event(gateway):
    client = gateway.openai()
    deltas = []
    with client.responses.stream(
        model="gpt-e2e", instructions="be brief", input="hello there world", extra_headers={"x-mock-words": "4"}
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == mock_words(4)
    assert final.output_text == mock_words(4)

    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)
    assert e["input_tokens"] == final.usage.input_tokens == INPUT_TOKENS
    assert e["output_tokens"] == final.usage.output_tokens == 4
    assert e["cost_nanos"] == expected_cost_nanos(TARGET, input_tokens=INPUT_TOKENS, output_tokens=4)


def test_responses_create_with_stream_true_is_metered(gateway):
    client = gateway.openai()
    events = list(
        client.responses.create(
            model="gpt-e2e",
            input="hello there world",
            stream=True,
            extra_headers={"x-mock-words": "3", "x-mock-cached-tokens": "2", "x-mock-reasoning-tokens": "1"},
        )
    )
    completed = [ev for ev in events if ev.type == "response.completed"]
    assert len(completed) == 1
    usage = completed[0].response.usage
    assert usage.input_tokens_details.cached_tokens == 2
    assert usage.output_tokens_details.reasoning_tokens == 1

    e = gateway.event()
    assert (e["status"], e["outcome"]) == (200, "served")
    assert e["input_tokens"] == usage.input_tokens == 3 + 3
    assert e["cached_input_tokens"] == 2
    assert e["output_tokens"] == usage.output_tokens == 4
    assert e["reasoning_tokens"] == 1
    assert e["cost_nanos"] == expected_cost_nanos(
        TARGET, input_tokens=6, cached_input_tokens=2, output_tokens=4
    )

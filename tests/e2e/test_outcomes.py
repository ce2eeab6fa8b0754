"""How a call that completed is recorded: status 200, outcome served, no reason, for
every API, whether the answer was a stream or one JSON body."""

from __future__ import annotations

import openai
import pytest

HELLO = [{"role": "user", "content": "hello"}]

def call(gateway, api: str, stream: bool):
    oa, an = gateway.openai(), gateway.anthropic()
    if api == "chat":
        r = oa.chat.completions.create(model="gpt-e2e", messages=HELLO, stream=stream)
    elif api == "responses":
        r = oa.responses.create(model="gpt-e2e", input="hello", stream=stream)
    elif api == "embeddings":
        r = oa.embeddings.create(model="embed-e2e", input="hello")
    elif api == "messages":
        r = an.messages.create(model="claude-e2e", max_tokens=20, messages=HELLO, stream=stream)
    else:
        raise AssertionError(api)
    if stream:
        list(r)


@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
def test_a_completed_stream_is_recorded_as_served(gateway, api):
    call(gateway, api, stream=True)
    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)


@pytest.mark.parametrize("api", ["chat", "responses", "embeddings", "messages"])
def test_a_completed_json_answer_is_recorded_as_served(gateway, api):
    call(gateway, api, stream=False)
    e = gateway.event()
    assert (e["status"], e["outcome"], e["reason"]) == (200, "served", None)


def test_a_provider_error_relayed_to_the_client_is_recorded_with_its_status(gateway):
    with pytest.raises(openai.UnprocessableEntityError) as ei:
        gateway.openai().chat.completions.create(
            model="gpt-e2e", messages=HELLO, extra_headers={"x-mock-status": "422"}
        )
    assert ei.value.response.headers.get("x-airlock-reason")
    e = gateway.event()
    assert (e["status"], e["outcome"]) == (422, "failed")
    assert e["reason"] is not None

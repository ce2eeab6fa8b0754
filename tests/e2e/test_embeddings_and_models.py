"""Embeddings (the SDK's default base64 encoding) and the model list."""

from __future__ import annotations

from support import OTHER_KEY, MODELS, expected_cost_nanos

TARGET = "mock/embed-upstream"


def mock_vector(text: str, index: int) -> list[float]:
    """The mock's deterministic embedding: exact in f32."""
    return [((len(text) + index + i * 7) % 16) / 16 for i in range(8)]


def test_embeddings_decode_and_are_metered_rounding_up_to_a_whole_nano_dollar(gateway, mock, tag):
    client = gateway.openai()
    inputs = ["one two three", "four five"]
    resp = client.embeddings.create(model="embed-e2e", input=inputs, extra_headers={"x-e2e-tag": tag})

    # The SDK asked for base64 and decoded it back to floats.
    [seen] = mock.requests_tagged(tag)
    assert seen["body"]["encoding_format"] == "base64"
    assert [d.embedding for d in resp.data] == [mock_vector(t, i) for i, t in enumerate(inputs)]
    assert resp.usage.prompt_tokens == 5

    e = gateway.event()
    assert e["operation"] == "embeddings"
    assert e["target"] == TARGET
    assert e["input_tokens"] == resp.usage.prompt_tokens
    assert e["output_tokens"] == 0
    # $0.0013 per 1M tokens is 1.3 nano-dollars a token: 5 tokens cost 6.5, billed 7.
    assert expected_cost_nanos(TARGET, input_tokens=5, output_tokens=0) == 7
    assert e["cost_nanos"] == 7


def test_model_list_shows_the_public_names_the_agent_may_use(gateway):
    ids = {m.id for m in gateway.openai().models.list()}
    assert ids == {name for name in MODELS if name.endswith("-e2e")}
    assert "secret-model" not in ids


def test_an_agent_without_an_allow_list_sees_every_public_model(gateway):
    ids = {m.id for m in gateway.openai(key=OTHER_KEY).models.list()}
    assert ids == set(MODELS)

"""Allow and deny lists for models, through the official SDKs: a denied model is refused
whatever it is called, a denied target is skipped for the next one."""

from __future__ import annotations

import anthropic
import openai
import pytest

from support import MAIN_AGENT

HI = [{"role": "user", "content": "hi"}]


def deny(*models: str):
    def edit(config):
        [main] = [a for a in config["agents"] if a["id"] == MAIN_AGENT]
        main["deny"] = {"models": list(models)}
        main.pop("allow", None)

    return edit


@pytest.mark.parametrize("asked", ["gpt-e2e", "mock/chat-upstream", "mock/CHAT-Upstream", "secret-model"])
def test_a_denied_model_is_refused_in_every_spelling_and_alias(make_gateway, asked):
    gateway = make_gateway(deny("chat-upstream"))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        gateway.openai().chat.completions.create(model=asked, messages=HI)
    assert refused.value.status_code == 403
    assert refused.value.body["code"] == "not_allowed"
    event = gateway.event()
    assert event["reason"] == "not_allowed" and event["outcome"] == "denied"
    assert event["model"] == asked, "the event keeps the model asked for"


def test_a_denied_model_never_reaches_the_provider_nor_the_model_list(make_gateway, mock, tag):
    gateway = make_gateway(deny("gpt-e2e"))
    with pytest.raises(openai.PermissionDeniedError):
        gateway.openai().chat.completions.create(model="gpt-e2e", messages=HI, extra_headers={"x-e2e-tag": tag})
    assert mock.requests_tagged(tag) == []
    listed = {m.id for m in gateway.openai().models.list()}
    assert "gpt-e2e" not in listed and "embed-e2e" in listed


def test_a_denied_target_is_skipped_for_the_next_one(make_gateway):
    # fallback-e2e tries down/… first; with it denied the call goes straight to mock/….
    gateway = make_gateway(deny("down/*"))
    res = gateway.openai().chat.completions.create(model="fallback-e2e", messages=HI)
    assert res.choices[0].message.content
    assert gateway.event()["target"] == "mock/fallback-upstream"


def test_deny_holds_on_the_anthropic_route_too(make_gateway):
    gateway = make_gateway(deny("claude-*"))
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        gateway.anthropic().messages.create(model="claude-e2e", max_tokens=5, messages=HI)
    assert refused.value.body["error"]["code"] == "not_allowed"


def budget(usd: str = "10", **pricing):
    def edit(config):
        [main] = [a for a in config["agents"] if a["id"] == MAIN_AGENT]
        main["budget"] = {"usd_per_day": usd}
        main.pop("allow", None)
        config["pricing"].update(pricing)

    return edit


def test_an_unpriced_model_is_refused_under_a_budget_and_alerted(make_gateway, mock, tag):
    gateway = make_gateway(budget())
    with pytest.raises(openai.PermissionDeniedError) as refused:
        gateway.openai().chat.completions.create(model="mock/house-model-7", messages=HI, extra_headers={"x-e2e-tag": tag})
    assert refused.value.body["code"] == "unpriced_model"
    assert mock.requests_tagged(tag) == []
    alerts = gateway.admin("/api/alerts").json()["alerts"]
    assert any(a["type"] == "unpriced_model" and "mock/house-model-7" in a["message"] for a in alerts), alerts


def test_a_new_family_member_costs_its_dearest_known_sibling_and_says_so(make_gateway):
    gateway = make_gateway(budget())
    gateway.openai().chat.completions.create(model="mock/claude-sonnet-9", messages=HI)
    event = gateway.event()
    assert event["price_source"] == "family" and event["cost_nanos"] > 0
    # Another spelling of a known model is priced by the table, not free.
    gateway.openai().chat.completions.create(model="mock/GPT-4O-MINI", messages=HI)
    assert gateway.events(2)[0]["price_source"] == "table"


def test_pricing_default_prices_the_rest_and_unpriced_allow_lets_it_through(make_gateway):
    gateway = make_gateway(budget(default={"input": "1", "output": "1"}))
    gateway.openai().chat.completions.create(model="mock/house-model-7", messages=HI)
    event = gateway.event()
    assert event["price_source"] == "default" and event["cost_nanos"] > 0

    allowed = make_gateway(budget(unpriced="allow"), subdir="allow")
    allowed.openai().chat.completions.create(model="mock/house-model-7", messages=HI)
    assert allowed.event()["cost_nanos"] == 0

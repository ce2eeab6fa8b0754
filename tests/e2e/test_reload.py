"""Hot reload: a changed config file is picked up while serving; a broken one is refused
and the running config keeps serving."""

from __future__ import annotations

import copy
import time

import openai
import pytest

from support import OTHER_AGENT, OTHER_KEY, wait_for

HELLO = [{"role": "user", "content": "hello"}]


def serves(client, model: str) -> bool:
    try:
        client.chat.completions.create(model=model, messages=HELLO)
        return True
    except openai.NotFoundError:
        return False


def test_a_model_added_to_the_config_file_serves_within_two_seconds(gateway):
    client = gateway.openai()
    assert not serves(client, "new-e2e")

    config = copy.deepcopy(gateway.config)
    config["models"]["new-e2e"] = {"targets": ["mock/chat-upstream"]}
    gateway.write_config(config)
    written = time.monotonic()
    assert wait_for(lambda: serves(client, "new-e2e"), timeout=2.5, interval=0.1)
    assert time.monotonic() - written < 2.5
    assert "new-e2e" in {m.id for m in client.models.list()}


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param("models:\n  gpt-e2e: [unterminated\n", id="yaml-syntax"),
        pytest.param(None, id="unknown-key"),
        # Would reload as the built-in defaults and refuse every configured agent.
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n\n", id="comments-only"),
    ],
)
def test_an_invalid_config_file_is_rejected_and_the_old_config_keeps_serving(gateway, broken):
    client = gateway.openai()
    assert serves(client, "gpt-e2e")

    if broken is None:
        text = gateway.config_path.read_text().replace("upstream_timeout:", "upstream_timout:")
        assert "upstream_timout" in text
    else:
        text = broken
    gateway.write_config(text=text)

    assert wait_for(lambda: "rejected" in gateway.log_text(), timeout=3), gateway.log_text()
    log = gateway.log_text()
    if broken is None:
        assert "upstream_timout" in log, "the log names the bad key"
    assert serves(client, "gpt-e2e"), "the old config keeps serving"
    assert not serves(client, "no-such-e2e")


def test_a_key_removed_from_the_config_file_stops_working(gateway):
    client = gateway.openai(key=OTHER_KEY)
    assert serves(client, "gpt-e2e")

    config = copy.deepcopy(gateway.config)
    [other] = [a for a in config["agents"] if a["id"] == OTHER_AGENT]
    other["keys"] = []
    gateway.write_config(config)

    def refused() -> bool:
        try:
            client.chat.completions.create(model="gpt-e2e", messages=HELLO)
            return False
        except openai.AuthenticationError:
            return True

    assert wait_for(refused, timeout=2.5, interval=0.1)

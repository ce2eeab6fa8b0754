"""Alerts reach the configured webhooks once per threshold and window, in Airlock's JSON
or Slack's shape, never slowing the calls that cause them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from support import ADMIN_TOKEN, MAIN_AGENT, served_until_budget_refuses, wait_for

HI = [{"role": "user", "content": "hi"}]


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it is sent."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def of(self, path: str) -> list[dict]:
        return [body for p, body in self.received if p == path]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def with_alerts(receiver, **agent):
    def edit(config):
        config["alerts"] = {
            "webhooks": [{"url": receiver.url("/json")}, {"url": receiver.url("/slack"), "format": "slack"}]
        }
        config["agents"][0].update(agent)

    return edit


def call(client):
    return client.chat.completions.create(model="gpt-e2e", messages=HI, max_tokens=10)


def test_an_exhausted_budget_is_alerted_once_per_threshold(make_gateway, receiver):
    # Each call settles at 68,000 nano-dollars and reserves its worst case (a few times
    # that): the budget of 1,000,000 passes 80% before a reservation no longer fits.
    gateway = make_gateway(with_alerts(receiver, budget={"usd_per_day": "0.001"}))
    client = gateway.openai()
    assert served_until_budget_refuses(lambda: call(client)) >= 10
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            call(client)
    wait_for(lambda: len(receiver.of("/json")) >= 2 and len(receiver.of("/slack")) >= 2)
    thresholds = sorted(a["detail"]["threshold"] for a in receiver.of("/json") if a["type"] == "budget_threshold")
    assert thresholds == [80, 100], receiver.received
    alert = receiver.of("/json")[0]
    assert alert["agent"] == MAIN_AGENT and "daily budget is at 80%" in alert["message"], alert
    assert all("text" in a and "budget" in a["text"] for a in receiver.of("/slack"))
    assert len(receiver.of("/slack")) == 2
    kept = gateway.admin("/api/alerts").json()["alerts"]
    assert sorted(a["detail"]["threshold"] for a in kept) == [80, 100], "alerts are in the ledger too"


def test_a_suspension_and_a_loop_are_alerted(make_gateway, receiver):
    gateway = make_gateway(with_alerts(receiver, guards={"loops": {"identical_calls": 1}}))
    client = gateway.openai()
    call(client)
    with pytest.raises(openai.RateLimitError):
        call(client)
    res = gateway.http.post(
        f"{gateway.admin_url}/api/agents/{MAIN_AGENT}/suspend",
        json={"reason": "investigating"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert res.status_code == 200
    wait_for(lambda: {a["type"] for a in receiver.of("/json")} >= {"loop_detected", "agent_suspended"})
    suspended = next(a for a in receiver.of("/json") if a["type"] == "agent_suspended")
    assert suspended["detail"]["reason"] == "investigating"


def test_a_dead_webhook_never_slows_calls_down(make_gateway):
    def edit(config):
        config["alerts"] = {"webhooks": [{"url": "http://127.0.0.1:9/never"}]}
        config["agents"][0]["budget"] = {"usd_per_day": "0.0005"}

    gateway = make_gateway(edit)
    client = gateway.openai()
    assert served_until_budget_refuses(lambda: call(client)) >= 1
    call_ok = gateway.openai(key="al-e2e-other-93e1f5a07c2d4b6e")
    call_ok.chat.completions.create(model="gpt-e2e", messages=HI)
    assert wait_for(lambda: "alert webhook unreachable" in gateway.log_text(), timeout=5)

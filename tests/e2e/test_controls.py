"""Budgets, rate limits, the loop guard and the kill switch, as an agent on the official
`openai` SDK meets them: which error it raises, and what the ledger then holds."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from support import ADMIN_TOKEN, MAIN_AGENT, MAIN_KEY, digest, served_until_budget_refuses, wait_for

HI = [{"role": "user", "content": "hi"}]


def agent_with(**settings):
    """A config edit giving the main agent extra settings (budget, limits, guards)."""

    def edit(config):
        config["agents"][0].update(settings)

    return edit


def call(client, **kw):
    return client.chat.completions.create(model="gpt-e2e", messages=kw.pop("messages", HI), max_tokens=10, **kw)


def admin_post(gateway, path, body=None):
    return gateway.http.post(f"{gateway.admin_url}{path}", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def test_a_hundred_concurrent_calls_never_overshoot_a_budget(make_gateway):
    # Each call reserves 10 prompt + 10 output tokens at $3/$7 per 1M = $0.0001; the
    # budget covers ten such reservations.
    gateway = make_gateway(agent_with(budget={"usd_per_day": "0.001"}))
    client = gateway.openai()

    def one(_):
        try:
            call(client)
            return "served"
        except openai.RateLimitError as e:
            assert e.body["code"] == "budget_exceeded", e.body
            assert e.response.headers["x-should-retry"] == "false"
            return "denied"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(100)))
    served = results.count("served")
    assert served >= 10, results
    assert results.count("denied") == 100 - served

    events = gateway.events(100, limit=200)
    spent = sum(e["cost_nanos"] for e in events)
    assert spent <= 1_000_000, f"the budget was overshot: {spent} nano-dollars"
    assert sum(e["outcome"] == "served" for e in events) == served
    assert all(e["reason"] == "budget_exceeded" for e in events if e["outcome"] == "denied")


def test_a_spent_budget_says_what_is_left_and_when_it_resets(make_gateway):
    gateway = make_gateway(agent_with(budget={"usd_per_day": "0.00005"}))
    with pytest.raises(openai.RateLimitError) as ei:
        call(gateway.openai())
    message = ei.value.body["message"]
    assert "daily budget of $0.00005" in message and "left" in message and "resets at" in message, message
    assert ei.value.response.headers["x-airlock-budget-remaining-usd"] == "0.00005"
    assert gateway.event()["reason"] == "budget_exceeded"


def test_a_run_budget_holds_per_run_header(make_gateway):
    gateway = make_gateway(agent_with(budget={"usd_per_run": "0.0005"}))
    client = gateway.openai()

    assert served_until_budget_refuses(lambda: call(client, extra_headers={"x-airlock-run": "run-a"})) >= 2
    call(client, extra_headers={"x-airlock-run": "run-b"})  # another run, another budget


def test_requests_per_minute_are_limited_with_retry_after(make_gateway):
    gateway = make_gateway(agent_with(limits={"requests_per_minute": 3}))
    client = gateway.openai()
    for _ in range(3):
        call(client)
    with pytest.raises(openai.RateLimitError) as ei:
        call(client)
    assert ei.value.body["code"] == "rate_limited"
    headers = ei.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-should-retry"] == "true"
    assert gateway.events(4)[0]["reason"] == "rate_limited"


def test_per_model_limits_leave_other_models_alone(make_gateway):
    gateway = make_gateway(agent_with(limits={"models": {"gpt-*": {"requests_per_minute": 1}}}))
    client = gateway.openai()
    call(client)
    with pytest.raises(openai.RateLimitError):
        call(client)
    client.embeddings.create(model="embed-e2e", input="still fine")


def test_a_scripted_loop_is_stopped_and_a_different_call_still_goes(make_gateway):
    gateway = make_gateway(agent_with(guards={"loops": {"identical_calls": 3, "window": "60s"}}))
    client = gateway.openai()
    for _ in range(3):
        call(client, extra_headers={"x-request-nonce": str(time.time())})
    with pytest.raises(openai.RateLimitError) as ei:
        call(client)
    assert ei.value.body["code"] == "loop_detected"
    assert ei.value.response.headers["x-should-retry"] == "false"
    call(client, messages=[{"role": "user", "content": "something else"}])


def test_monitor_mode_lets_the_call_through_and_records_what_it_would_have_done(make_gateway):
    gateway = make_gateway(agent_with(guards={"mode": "monitor", "loops": {"identical_calls": 1}}))
    client = gateway.openai()
    call(client)
    call(client)
    newest = gateway.events(2)[0]
    assert newest["outcome"] == "served"
    assert newest["would_deny"] == ["loop_detected"]


def test_a_short_cycle_within_a_run_is_stopped(make_gateway):
    gateway = make_gateway(agent_with(guards={"loops": {"cycle_repeats": 2}}))
    client = gateway.openai()
    a = [{"role": "user", "content": "step a"}]
    b = [{"role": "user", "content": "step b"}]
    run = {"x-airlock-run": "cyc"}
    for messages in (a, b, a, b, a):
        call(client, messages=messages, extra_headers=run)
    with pytest.raises(openai.RateLimitError) as ei:
        call(client, messages=b, extra_headers=run)
    assert ei.value.body["code"] == "loop_detected"
    assert "cycling" in ei.value.body["message"]


def test_calls_per_run_are_capped(make_gateway):
    gateway = make_gateway(agent_with(guards={"loops": {"calls_per_run": 2}}))
    client = gateway.openai()
    for i in range(2):
        call(client, messages=[{"role": "user", "content": f"q{i}"}], extra_headers={"x-airlock-run": "r"})
    with pytest.raises(openai.RateLimitError) as ei:
        call(client, messages=[{"role": "user", "content": "q3"}], extra_headers={"x-airlock-run": "r"})
    assert ei.value.body["code"] == "loop_detected"


def test_the_same_call_failing_again_and_again_is_not_tried_again(make_gateway):
    gateway = make_gateway(agent_with(guards={"loops": {"repeated_failures": 2}}))
    client = gateway.openai()
    for i in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="unreachable-e2e", messages=HI)
        wait_for(lambda: len(gateway.events(i + 1)) == i + 1)
        # The failure is counted off the request path, after the answer: give that a
        # moment even on a loaded machine (0.1 s was once too short in CI).
        time.sleep(0.5)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="unreachable-e2e", messages=HI)
    assert ei.value.body["code"] == "loop_detected"


def test_the_kill_switch_refuses_at_once_and_resume_lifts_it(make_gateway, airlock_bin):
    gateway = make_gateway()
    client = gateway.openai()
    call(client)
    cli = lambda *args: subprocess.run(  # noqa: E731
        [str(airlock_bin), "agents", *args, "--config", str(gateway.config_path)],
        env=gateway.env(), capture_output=True, text=True, timeout=10,
    )
    done = cli("suspend", MAIN_AGENT, "--reason", "runaway")
    assert done.returncode == 0, done.stderr
    with pytest.raises(openai.RateLimitError) as ei:
        call(client)
    assert ei.value.body["code"] == "suspended"
    assert ei.value.response.headers["x-should-retry"] == "false"
    listed = gateway.admin("/api/agents").json()["agents"]
    assert next(a for a in listed if a["id"] == MAIN_AGENT)["suspension"]["reason"] == "runaway"
    assert cli("resume", MAIN_AGENT).returncode == 0
    call(client)


def test_spending_too_fast_suspends_the_agent(make_gateway):
    # Each call costs 68,000 nano-dollars; the limit is 100,000 a minute.
    gateway = make_gateway(agent_with(guards={"velocity": {"usd_per_minute": "0.0001"}}))
    client = gateway.openai()
    call(client)
    call(client)

    def suspended():
        try:
            call(client)
            return False
        except openai.RateLimitError as e:
            return e.body["code"] == "suspended"

    assert wait_for(suspended, timeout=3)
    reason = next(a for a in gateway.admin("/api/agents").json()["agents"] if a["id"] == MAIN_AGENT)["suspension"]["reason"]
    assert "velocity" in reason


def test_keys_are_made_rotated_and_revoked_at_run_time(make_gateway, airlock_bin):
    gateway = make_gateway()
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(airlock_bin), "keys", *args, "--config", str(gateway.config_path)],
        env=gateway.env(), capture_output=True, text=True, timeout=10,
    )
    made = run("create", "--agent", MAIN_AGENT)
    assert made.returncode == 0, made.stderr
    import json

    first = json.loads(made.stdout)
    assert first["key"].startswith("al-")
    call(gateway.openai(key=first["key"]))
    assert gateway.events(1)[0]["agent"] == MAIN_AGENT
    # The ledger keeps only the digest.
    assert first["key"] not in (gateway.dir / "ledger.db").read_bytes().decode("latin-1")

    rotated = json.loads(run("create", "--agent", MAIN_AGENT, "--rotate", first["id"], "--grace", "2s").stdout)
    call(gateway.openai(key=first["key"]))  # still inside its grace period
    call(gateway.openai(key=rotated["key"]))

    def refused(key):
        try:
            call(gateway.openai(key=key))
            return False
        except openai.AuthenticationError:
            return True

    assert wait_for(lambda: refused(first["key"]), timeout=5), "the rotated key outlived its grace"
    assert run("revoke", rotated["id"]).returncode == 0
    assert refused(rotated["key"]), "a revoked key is refused at once on this replica"
    call(gateway.openai(key=MAIN_KEY))  # config keys are untouched


def test_operator_actions_need_the_admin_token(gateway):
    res = httpx2.post(f"{gateway.admin_url}/api/agents/{MAIN_AGENT}/suspend", trust_env=False)
    assert res.status_code == 401
    res = admin_post(gateway, "/api/agents/nobody/suspend")
    assert res.status_code == 404
    res = admin_post(gateway, "/api/keys", {"agent": "nobody"})
    assert res.status_code == 404
    assert digest(MAIN_KEY)  # config keys are digests, never listed as keys
    assert gateway.admin("/api/keys").json()["keys"] == []

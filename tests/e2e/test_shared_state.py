"""Budgets and limits that hold across restarts and replicas: counters rebuilt from the
ledger, Redis shared by two Airlock processes, and what happens while Redis is down."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from support import free_port, served_until_budget_refuses, wait_for

HI = [{"role": "user", "content": "hi"}]
# Each call reserves $0.0001 and costs $0.000068 (see test_controls.py).
RESERVE, COST = 100_000, 68_000


class RedisServer:
    """A redis-server of the test's own, without persistence, on a free port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc = None

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        assert exe, "redis-server must be installed (.ci/run installs it)"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        assert wait_for(up, timeout=5)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def budgeted(usd: str, counters: str = "memory", on_failure: str = "fail_closed", ledger: str | None = None):
    def edit(config):
        config["agents"][0]["budget"] = {"usd_per_day": usd}
        config["state"]["counters"] = counters
        config["state"]["on_counter_failure"] = on_failure
        if ledger:
            config["state"]["ledger"] = ledger

    return edit


def call(client):
    return client.chat.completions.create(model="gpt-e2e", messages=HI, max_tokens=10)


def hundred_calls_across(clients) -> int:
    """100 concurrent calls spread over `clients`; every one not served must have been
    refused for the budget. Returns how many were served."""

    def one(i):
        try:
            call(clients[i % len(clients)])
            return "served"
        except openai.RateLimitError as e:
            assert e.body["code"] == "budget_exceeded"
            return "denied"

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(one, range(100)))
    return results.count("served")


def restart(gateway):
    gateway.stop()
    gateway.http = httpx2.Client(trust_env=False, timeout=10)
    gateway.start()


def test_a_restart_does_not_reset_a_budget(make_gateway):
    gateway = make_gateway(budgeted("0.0005"))
    served = served_until_budget_refuses(lambda: call(gateway.openai()))
    assert served >= 1
    gateway.events(served + 1)
    restart(gateway)
    with pytest.raises(openai.RateLimitError) as ei:
        call(gateway.openai())
    assert ei.value.body["code"] == "budget_exceeded"


def test_a_suspension_survives_a_restart(make_gateway):
    gateway = make_gateway()
    res = gateway.http.post(f"{gateway.admin_url}/api/agents/e2e-bot/suspend", headers={"Authorization": "Bearer adm-e2e-admin-token-1c5b9e"})
    assert res.status_code == 200
    restart(gateway)
    with pytest.raises(openai.RateLimitError) as ei:
        call(gateway.openai())
    assert ei.value.body["code"] == "suspended"


def test_two_replicas_sharing_redis_never_overshoot_a_budget(make_gateway, redis_server, tmp_path):
    ledger = f"sqlite://{tmp_path / 'shared.db'}"
    a = make_gateway(budgeted("0.001", redis_server.url, ledger=ledger), subdir="a")
    b = make_gateway(budgeted("0.001", redis_server.url, ledger=ledger), subdir="b")
    served = hundred_calls_across([a.openai(), b.openai()])
    assert 10 <= served <= 1_000_000 // COST, served
    events = a.events(100, limit=200)
    assert sum(e["cost_nanos"] for e in events) <= 1_000_000
    replicas_served = {e["id"][:11] for e in events if e["outcome"] == "served"}
    assert len(replicas_served) == 2, "both replicas served calls"


def test_redis_down_fails_closed_then_recovers_with_the_budget_rebuilt(make_gateway, redis_server):
    gateway = make_gateway(budgeted("0.0005", redis_server.url))
    client = gateway.openai()
    served = served_until_budget_refuses(lambda: call(client))
    gateway.events(served + 1)

    redis_server.stop()
    with pytest.raises(openai.InternalServerError) as ei:
        call(client)
    assert ei.value.status_code == 503
    assert ei.value.body["code"] == "counters_unavailable"
    assert "airlock_counters_failures_total 1" in gateway.metrics().replace(".0", "")

    redis_server.start()  # empty: no persistence

    def recovered():
        try:
            call(client)
            return "served"
        except openai.InternalServerError:
            return None
        except openai.RateLimitError as e:
            return e.body["code"]

    # Once rebuilt from the ledger the budget still remembers what was spent.
    assert wait_for(recovered, timeout=10) == "budget_exceeded"


def test_redis_down_fails_open_when_configured(make_gateway, redis_server):
    gateway = make_gateway(budgeted("1", redis_server.url, on_failure="fail_open"))
    client = gateway.openai()
    call(client)
    redis_server.stop()
    call(client)
    assert "counters unavailable" in gateway.log_text()


def test_two_replicas_sharing_redis_and_postgres_never_overshoot(make_gateway, redis_server, postgres_ledger):
    a = make_gateway(budgeted("0.001", redis_server.url, ledger=postgres_ledger), subdir="a")
    b = make_gateway(budgeted("0.001", redis_server.url, ledger=postgres_ledger), subdir="b")
    served = hundred_calls_across([a.openai(), b.openai()])
    assert served >= 10, served
    # Both replicas write into the one ledger, and either reads all of it.
    events = b.events(100, limit=200)
    assert len(events) == 100
    assert sum(e["cost_nanos"] for e in events) <= 1_000_000
    assert len({e["id"][:11] for e in events}) == 2
    rows = a.usage("agent")
    assert rows[0]["requests"] == 100 and rows[0]["denied"] == 100 - served


def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(make_gateway, redis_server, postgres_ledger):
    a = make_gateway(budgeted("1", redis_server.url, ledger=postgres_ledger), subdir="a")
    b = make_gateway(budgeted("1", redis_server.url, ledger=postgres_ledger), subdir="b")
    headers = {"Authorization": "Bearer adm-e2e-admin-token-1c5b9e"}
    made = a.http.post(f"{a.admin_url}/api/keys", json={"agent": "e2e-bot"}, headers=headers).json()

    def works_on_b():
        try:
            call(b.openai(key=made["key"]))
            return True
        except openai.AuthenticationError:
            return False

    assert wait_for(works_on_b, timeout=3), "a key made on one replica works on the other"
    assert a.http.delete(f"{a.admin_url}/api/keys/{made['id']}", headers=headers).status_code == 200
    revoked = time.monotonic()
    assert wait_for(lambda: not works_on_b(), timeout=3)
    # Replicas re-read keys every second; the margin is for a loaded CI machine.
    assert time.monotonic() - revoked < 2.5, "refused by every replica within about a second"

"""What a hostile agent or a bad moment can do to the ledger, against the real binary:
hostile values in every field an agent names, a ledger that goes down, kill -9 under load,
rows tampered with afterwards. Each test asserts that other agents' calls are kept, nothing
answered is lost, and `airlock audit verify` never vouches for what the writer did not write.
(The connection-level attacks — held streams, trickled bodies, idle sockets — are in
`crates/gateway/tests/adversarial.rs`.)"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from a2a_support import RemoteAgent, rpc, v03_message
from support import MAIN_AGENT, OTHER_AGENT, OTHER_KEY

HOSTILE = "é" * 3000 + "\x1b[2J\x1b]8;;http://evil\x07\r\nforged line" + "😀" * 1000


def call(client: openai.OpenAI, model: str = "gpt-e2e", **kw) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **kw)


def verify(airlock_bin, gw, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airlock_bin), "audit", "verify", "--config", str(gw.config_path), *args],
        capture_output=True, text=True, env=gw.env(), timeout=60,
    )


def test_hostile_values_in_every_named_field_never_cost_other_agents_their_rows(make_gateway, postgres_ledger, tmp_path, airlock_bin):
    echo = RemoteAgent("echo", tmp_path / "a2a")
    try:
        def edit(config):
            config["state"]["ledger"] = postgres_ledger
            config["state"]["checkpoint"] = str(tmp_path / "pg.checkpoint")
            config["a2a"] = {"agents": {"echo": echo.config()}}
            config["agents"][0]["allow"] = {}

        gw = make_gateway(edit)
        other = gw.openai(key=OTHER_KEY)
        hostile = gw.openai()

        def noise():
            for _ in range(40):
                call(other)

        with ThreadPoolExecutor(2) as pool:
            done = pool.submit(noise)
            # A 12 KB conversation id becomes the run id; a model name, a run header.
            params = v03_message("hello")
            params["message"]["contextId"] = HOSTILE * 2
            rpc(gw, "echo", "message/send", params)
            for _ in range(3):
                try:
                    # Header values are ASCII on the wire; the body carries the rest.
                    call(hostile, model=HOSTILE, extra_headers={"x-airlock-run": "run-" + "x" * 12000})
                except openai.APIStatusError as e:
                    assert e.status_code in (400, 404), e
            done.result()

        assert len(gw.events(40, agent=OTHER_AGENT, limit=200)) == 40
        mine = gw.events(4, agent=MAIN_AGENT)
        assert len(mine) == 4
        for e in mine:
            # Bounded, and still what the agent sent as far as it was kept.
            assert len((e["model"] or "").encode()) <= 400 and len((e["run_id"] or "").encode()) <= 400
        a2a = next(e for e in mine if e["kind"] == "a2a")
        assert a2a["run_id"].startswith("éé")
        report = verify(airlock_bin, gw)
        assert report.returncode == 0, report.stdout + report.stderr
        assert "intact: 44 events verified" in report.stdout, report.stdout
    finally:
        echo.stop()


def test_a_ledger_down_for_a_while_loses_no_call(make_gateway, private_postgres):
    gw = make_gateway(lambda c: c["state"].update(ledger=private_postgres.url))
    client = gw.openai()
    for _ in range(5):
        call(client)
    assert len(gw.events(5)) == 5
    private_postgres.stop()
    # Calls are still answered: their events wait in the writer's queue.
    for _ in range(10):
        call(client)
    time.sleep(1)
    private_postgres.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            events = gw.admin("/api/events", limit=100, agent=MAIN_AGENT).json().get("events", [])
        except Exception:  # noqa: BLE001 - the reader's connection comes back with the server
            events = []
        if len(events) >= 15 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(events) == 15, f"{len(events)} of 15 calls kept after the ledger came back"
    assert all(e["outcome"] == "served" for e in events)


def test_kill_9_under_load_loses_no_answered_call_when_durable(make_gateway):
    gw = make_gateway(lambda c: c["state"].update(durable=True))
    ledger = gw.config["state"]["ledger"].removeprefix("sqlite://")
    answered = 0
    lock = threading.Lock()
    stop = threading.Event()

    def load():
        nonlocal answered
        client = gw.openai()
        while not stop.is_set():
            try:
                call(client)
            except (openai.APIConnectionError, openai.APIStatusError):
                return
            with lock:
                answered += 1

    with ThreadPoolExecutor(8) as pool:
        workers = [pool.submit(load) for _ in range(8)]
        time.sleep(1.5)
        gw.proc.kill()
        gw.proc.wait()
        stop.set()
        for w in workers:
            w.result()
    kept = sqlite3.connect(ledger).execute("select count(*) from events").fetchone()[0]
    assert answered > 50, answered
    assert kept >= answered, f"{answered} calls answered 2xx, {kept} in the ledger"
    gw.start()  # and the ledger opens cleanly after the kill


def test_deleted_or_unlinked_rows_are_caught_and_the_checkpoint_named(make_gateway, airlock_bin):
    gw = make_gateway()
    client = gw.openai()
    for _ in range(10):
        call(client)
    gw.events(10)
    assert gw.stop() == 0
    ledger = gw.config["state"]["ledger"].removeprefix("sqlite://")
    checkpoint = ledger + ".checkpoint"
    ok = verify(airlock_bin, gw)
    assert ok.returncode == 0 and checkpoint in ok.stdout, ok.stdout

    # Truncation: the last rows deleted.
    db = sqlite3.connect(ledger)
    db.execute("delete from events where rowid > (select max(rowid) - 3 from events)")
    db.commit()
    cut = verify(airlock_bin, gw)
    assert cut.returncode != 0, cut.stdout
    assert "rows were deleted" in cut.stdout and checkpoint in cut.stdout, cut.stdout

    # Links removed so the next write would re-chain an altered row: never vouched for.
    gw2 = make_gateway(lambda c: c["state"].update(ledger=gw.config["state"]["ledger"],
                                                      checkpoint=str(gw.dir / "fresh.checkpoint")))
    db.execute("update events set cost_nanos = 0, hash = null, prev_hash = null "
               "where rowid > (select max(rowid) - 2 from events)")
    db.commit()
    call(gw2.openai())
    gw2.events(8)
    unlinked = verify(airlock_bin, gw2)
    assert unlinked.returncode != 0, unlinked.stdout
    assert "not vouched for" in unlinked.stdout, unlinked.stdout

"""The `airlock` command line: check, keys, usage, and the built-in default config."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import time

import httpx2
import openai
import pytest

from support import MAIN_AGENT, mock_words, port_busy, to_yaml, wait_for


def run(airlock_bin, *args, env=None, cwd=None, timeout=20):
    return subprocess.run(
        [str(airlock_bin), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_check_accepts_a_valid_config(gateway, airlock_bin):
    res = run(airlock_bin, "check", "--config", str(gateway.config_path), env=gateway.env())
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_check_rejects_a_typoed_key_naming_the_key_and_its_line(gateway, airlock_bin, tmp_path):
    lines = gateway.config_path.read_text().splitlines()
    [at] = [i for i, l in enumerate(lines) if l.strip().startswith("upstream_timeout:")]
    lines[at] = lines[at].replace("upstream_timeout:", "upstream_timout:")
    bad = tmp_path / "typo.yaml"
    bad.write_text("\n".join(lines) + "\n")

    res = run(airlock_bin, "check", "--config", str(bad), env=gateway.env())
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "upstream_timout" in out
    assert f"line {at + 1}" in out, out


def test_check_rejects_a_target_naming_an_unknown_provider(gateway, airlock_bin, tmp_path):
    config = dict(gateway.config)
    config["models"] = {"x-e2e": {"targets": ["nowhere/model"]}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(to_yaml(config) + "\n")
    res = run(airlock_bin, "check", "--config", str(bad), env=gateway.env())
    assert res.returncode != 0
    assert "nowhere/model" in res.stdout + res.stderr


def test_keys_new_prints_a_key_and_its_sha256_line(airlock_bin):
    res = run(airlock_bin, "keys", "new", "--agent", "x")
    assert res.returncode == 0, res.stderr
    [key] = re.findall(r"\bal-[0-9a-f]{16,}\b", res.stdout)
    [digest] = re.findall(r"sha256:[0-9a-f]{64}", res.stdout)
    assert digest == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert "x" in res.stdout
    again = run(airlock_bin, "keys", "new", "--agent", "x")
    assert key not in again.stdout, "every key is fresh"


def test_usage_command_reads_the_ledger_as_a_table_and_as_json(gateway, airlock_bin):
    client = gateway.openai()
    client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
    client.embeddings.create(model="embed-e2e", input="hi")
    gateway.events(2)

    args = ["usage", "--config", str(gateway.config_path), "--since", "1h", "--by", "model"]
    table = run(airlock_bin, *args, env=gateway.env())
    assert table.returncode == 0, table.stderr
    assert "gpt-e2e" in table.stdout and "embed-e2e" in table.stdout

    as_json = run(airlock_bin, *args, "--json", env=gateway.env())
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    rows = doc["rows"]
    by_key = {r["key"]: r for r in rows}
    assert by_key["gpt-e2e"]["requests"] == 1
    assert by_key["embed-e2e"]["requests"] == 1
    assert by_key["embed-e2e"]["input_tokens"] == 1

    as_csv = run(airlock_bin, *args, "--format", "csv", env=gateway.env())
    assert as_csv.returncode == 0, as_csv.stderr
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["model"]: int(r["requests"]) for r in parsed} == {"gpt-e2e": 1, "embed-e2e": 1}
    gpt = next(r for r in parsed if r["model"] == "gpt-e2e")
    assert int(gpt["cost_nanos"]) == by_key["gpt-e2e"]["cost_nanos"]
    assert as_json.stdout == run(airlock_bin, *args, "--format", "json", env=gateway.env()).stdout

    by_agent = run(airlock_bin, "usage", "--config", str(gateway.config_path), "--since", "1h", "--by", "agent", "--json", env=gateway.env())
    doc = json.loads(by_agent.stdout)
    rows = doc["rows"]
    assert [r["key"] for r in rows] == [MAIN_AGENT]

    # Narrowed to one agent and one kind, by day (the table prints days as dates).
    usage = ["usage", "--config", str(gateway.config_path), "--since", "today"]
    mine = run(airlock_bin, *usage, "--by", "model", "--agent", MAIN_AGENT, "--kind", "llm", "--json", env=gateway.env())
    assert {r["key"] for r in json.loads(mine.stdout)["rows"]} == {"gpt-e2e", "embed-e2e"}
    nobody = run(airlock_bin, *usage, "--agent", "nobody", "--json", env=gateway.env())
    assert json.loads(nobody.stdout)["rows"] == []
    days = run(airlock_bin, *usage, "--by", "day", env=gateway.env())
    assert time.strftime("%Y-%m-%d", time.gmtime()) in days.stdout
    bad = run(airlock_bin, *usage, "--kind", "email", env=gateway.env())
    assert bad.returncode != 0 and "--kind must be" in bad.stderr


# --- the built-in default ---------------------------------------------------------------

DEFAULT_GATEWAY = 4000
DEFAULT_ADMIN = 4002


class DefaultServe:
    """`airlock serve` without a config, in an empty working directory."""

    def __init__(self, airlock_bin, cwd, mock, n, openai_key="sk-x"):
        self.log_path = cwd / f"serve{n}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "AIRLOCK_"))}
        env.pop("RUST_LOG", None)
        env.update(
            OPENAI_API_KEY=openai_key,
            AIRLOCK_OPENAI_BASE_URL=f"{mock.url}/v1",
            AIRLOCK_ADMIN_TOKEN="adm-e2e-default",
        )
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(airlock_bin), "serve"], cwd=cwd, env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )
        ready = wait_for(self.healthy, timeout=15, interval=0.1)
        if not ready:
            self.stop()
            raise AssertionError(f"the default gateway did not start:\n{self.text()}")
        # The banner is printed right after the listeners are up.
        wait_for(lambda: "gateway on" in self.text(), timeout=3)

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"airlock serve exited with {self.proc.returncode}:\n{self.text()}")
        try:
            return httpx2.get(f"http://127.0.0.1:{DEFAULT_ADMIN}/healthz", timeout=1, trust_env=False).status_code == 200
        except httpx2.TransportError:
            return False

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()
        return code


def test_builtin_default_makes_a_key_once_that_works_with_the_openai_sdk(airlock_bin, mock, tmp_path):
    if port_busy(DEFAULT_GATEWAY) or port_busy(DEFAULT_ADMIN):
        pytest.skip("the built-in default needs 127.0.0.1:4000 and :4002, which are in use")
    cwd = tmp_path / "empty"
    cwd.mkdir()

    first = DefaultServe(airlock_bin, cwd, mock, 1)
    try:
        text = first.text()
        keys = re.findall(r"^\s*export OPENAI_API_KEY=(al-\S+)\s*$", text, re.M)
        assert len(keys) == 1, text
        key = keys[0]
        assert re.search(rf"export OPENAI_BASE_URL=http://127\.0\.0\.1:{DEFAULT_GATEWAY}/v1", text), text

        client = openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{DEFAULT_GATEWAY}/v1", max_retries=0, timeout=10)
        resp = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-words": "2"},
        )
        assert resp.choices[0].message.content == mock_words(2)
    finally:
        assert first.stop() == 0
    assert (cwd / "airlock.db").exists(), "the ledger is ./airlock.db"

    second = DefaultServe(airlock_bin, cwd, mock, 2)
    try:
        assert "export OPENAI_API_KEY=" not in second.text(), "the key is printed only once"
        # The key from the first start still works: it is stored (hashed) in the ledger.
        client = openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{DEFAULT_GATEWAY}/v1", max_retries=0, timeout=10)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices
    finally:
        assert second.stop() == 0
    assert key not in second.text()

    # Restarted in the agent's shell, where the banner exported the agent's key as
    # OPENAI_API_KEY: Airlock leaves that provider out rather than send the key upstream.
    tag = "banner-key-" + str(time.monotonic_ns())
    third = DefaultServe(airlock_bin, cwd, mock, 3, openai_key=key)
    try:
        assert "OPENAI_API_KEY holds an Airlock agent key" in third.text(), third.text()
        client = openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{DEFAULT_GATEWAY}/v1", max_retries=0, timeout=10)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                           extra_headers={"x-e2e-tag": tag})
        assert mock.requests_tagged(tag) == []
    finally:
        assert third.stop() == 0


def test_a_provider_key_that_is_an_airlock_key_is_refused_at_start(gateway, airlock_bin):
    env = gateway.env()
    env["E2E_OPENAI_KEY"] = "al-" + "0" * 48
    res = run(airlock_bin, "serve", "--config", str(gateway.config_path), env=env, timeout=20)
    assert res.returncode != 0
    assert re.search(r"providers\.\w+\.api_key is an Airlock agent key", res.stderr), res.stderr
    assert env["E2E_OPENAI_KEY"] not in res.stderr + res.stdout


def test_tail_prints_calls_as_they_happen_filtered_by_agent_and_decision(gateway, airlock_bin):
    import queue
    import threading
    import time

    proc = subprocess.Popen(
        [str(airlock_bin), "tail", "--config", str(gateway.config_path), "--agent", MAIN_AGENT, "--decision", "denied"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gateway.env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        client = gateway.openai()
        got = None
        deadline = time.monotonic() + 10
        # Calls until tail is listening and shows one: a served call never shows.
        while got is None and time.monotonic() < deadline:
            client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.PermissionDeniedError):
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            try:
                got = lines.get(timeout=0.5)
            except queue.Empty:
                pass
        assert got is not None, proc.stderr.read() if proc.poll() is not None else "no line"
        assert MAIN_AGENT in got and " llm " in got and "403 denied (not_allowed)" in got, got
        assert "served" not in got and "\x1b[" not in got, "no colour when stdout is not a terminal"
        # An open feed does not hold up shutdown, and tail ends with it.
        assert gateway.stop(timeout=5) == 0
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_audit_verify_names_the_row_edited_in_the_sqlite_ledger(gateway, airlock_bin):
    import sqlite3

    client = gateway.openai()
    for _ in range(3):
        client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
    events = gateway.events(3)
    args = ["audit", "verify", "--config", str(gateway.config_path)]
    intact = run(airlock_bin, *args, env=gateway.env())
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "intact: 3 events verified" in intact.stdout

    exported = run(airlock_bin, "audit", "export", "--config", str(gateway.config_path), "--since", "1h", env=gateway.env())
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["id"] for r in rows] == [e["id"] for e in reversed(events)], "oldest first"
    assert rows[0]["prev_hash"] == "" and all(r["prev_hash"] == p["hash"] for p, r in zip(rows, rows[1:]))
    as_csv = run(airlock_bin, "audit", "export", "--config", str(gateway.config_path), "--format", "csv", env=gateway.env())
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["hash"] for r in table] == [r["hash"] for r in rows]
    assert int(table[0]["cost_nanos"]) == rows[0]["cost_nanos"]

    # Someone lowers the cost of the middle call behind the gateway's back.
    middle = events[1]["id"]
    db = sqlite3.connect(gateway.dir / "ledger.db")
    with db:
        db.execute("UPDATE events SET cost_nanos = 1 WHERE id = ?", (middle,))
    db.close()
    broken = run(airlock_bin, *args, env=gateway.env())
    assert broken.returncode == 1
    assert f"event {middle} (#2 in the ledger) was altered" in broken.stdout, broken.stdout
    report = json.loads(run(airlock_bin, *args, "--json", env=gateway.env()).stdout)
    assert report["broken"] == {"kind": "altered", "id": middle, "position": 2}

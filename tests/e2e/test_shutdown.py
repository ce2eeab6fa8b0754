"""SIGTERM: calls in flight finish, their events reach the ledger, and the process exits 0."""

from __future__ import annotations

import json
import signal
import subprocess

import httpx2


def test_sigterm_lets_a_stream_in_flight_finish_and_records_it(make_gateway, airlock_bin):
    gw = make_gateway()
    client = gw.openai()
    stream = client.chat.completions.create(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"x-mock-chunk-delay-ms": "40", "x-mock-words": "20"},
    )
    chunks = iter(stream)
    first = next(chunks)
    gw.proc.send_signal(signal.SIGTERM)
    rest = list(chunks)
    text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
    assert text == " ".join(f"w{i}" for i in range(1, 21))

    assert gw.proc.wait(timeout=5) == 0
    # No new calls once stopped.
    try:
        httpx2.get(f"{gw.admin_url}/healthz", trust_env=False, timeout=1)
        raise AssertionError("the admin listener still answers")
    except httpx2.TransportError:
        pass

    # The event was flushed to the ledger before exit.
    res = subprocess.run(
        [str(airlock_bin), "usage", "--config", str(gw.config_path), "--since", "1h", "--by", "agent", "--json"],
        capture_output=True, text=True, env=gw.env(), timeout=20,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    rows = doc["rows"] if isinstance(doc, dict) else doc
    assert [(r["key"], r["requests"], r["output_tokens"]) for r in rows] == [("e2e-bot", 1, 20)]

"""An agent that hangs up mid-stream: recorded as cancelled, metered from what was relayed."""

from __future__ import annotations

import json

import httpx2

from support import MAIN_KEY


def test_client_hanging_up_mid_stream_is_recorded_as_cancelled_and_metered(gateway):
    body = {"model": "gpt-e2e", "messages": [{"role": "user", "content": "tell me a long story"}], "stream": True}
    headers = {
        "Authorization": f"Bearer {MAIN_KEY}",
        "x-mock-chunk-delay-ms": "50",
        "x-mock-words": "100",
    }
    received = []
    with httpx2.Client(trust_env=False, timeout=10) as http:
        with http.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers) as res:
            assert res.status_code == 200
            for line in res.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                if len(received) >= 5:
                    break
    # Leaving both blocks closed the connection with ~95 words still to come.

    e = gateway.event()
    assert e["status"] == 499
    assert e["outcome"] == "cancelled"
    assert e["reason"] == "client_closed"
    assert 0 < e["output_tokens"] < 100, "metered from what was relayed"
    assert e["input_tokens"] > 0
    assert e["cost_nanos"] > 0
    # Settled when the agent left, not when the upstream would have finished (100 x 50ms).
    assert e["latency_ms"] < 4000

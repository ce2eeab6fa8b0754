"""Interception end to end: the official `openai` and `anthropic` SDKs, with unchanged client
code and configured only by environment — `HTTPS_PROXY` with the Airlock key as the proxy
password, `SSL_CERT_FILE` with Airlock's CA, and `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL`
pointing at a host name under the reserved `.test` domain — reach the mock provider through
the egress proxy, which ends their TLS with a certificate its CA issues and runs each request
through the LLM pipeline. No test names a real provider host, and the `.test` names are never
resolved: their requests go to the mapped provider, the mock on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import MAIN_AGENT, MAIN_KEY, OTHER_KEY, expected_cost_nanos, free_port

# The agent's program: plain SDK calls, everything else comes from the environment.
CLIENT = r"""
import json, sys
import anthropic, openai

which, mode, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    if which == "openai":
        client = openai.OpenAI(max_retries=0)
        messages = [{"role": "user", "content": prompt}]
        if mode == "stream":
            chunks = list(client.chat.completions.create(
                model="chat-upstream", messages=messages, stream=True,
                stream_options={"include_usage": True}))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            usage = {"input": chunks[-1].usage.prompt_tokens, "output": chunks[-1].usage.completion_tokens}
        else:
            r = client.chat.completions.create(model="chat-upstream", messages=messages)
            text = r.choices[0].message.content
            usage = {"input": r.usage.prompt_tokens, "output": r.usage.completion_tokens}
    else:
        client = anthropic.Anthropic(max_retries=0)
        messages = [{"role": "user", "content": prompt}]
        if mode == "stream":
            with client.messages.stream(model="claude-upstream", max_tokens=64, messages=messages) as s:
                text = "".join(s.text_stream)
                final = s.get_final_message()
        else:
            final = client.messages.create(model="claude-upstream", max_tokens=64, messages=messages)
            text = final.content[0].text
        usage = {"input": final.usage.input_tokens, "output": final.usage.output_tokens}
    print(json.dumps({"text": text, "usage": usage}))
except (openai.APIStatusError, anthropic.APIStatusError) as e:
    print(json.dumps({"status": e.status_code, "body": e.body}))
"""

HOSTS = {"api.openai.test": "mock", "api.anthropic.test": "anthropic"}


def with_interception(**extra):
    def edit(config):
        config["listen"]["egress"] = f"127.0.0.1:{free_port()}"
        config["egress"] = {"intercept": dict(HOSTS)}
        config["agents"][0]["allow"]["models"] += ["chat-upstream", "claude-upstream"]
        for key, value in extra.items():
            config[key] = value

    return edit


def run_client(gw, which: str, mode: str = "json", prompt: str = "hello there", key: str = MAIN_KEY, **env_extra) -> dict:
    """Runs CLIENT in a fresh interpreter with only the environment an operator would set."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        HTTPS_PROXY=f"http://{MAIN_AGENT}:{key}@{gw.config['listen']['egress']}",
        # The CA file alone: these clients need to trust nothing else here.
        SSL_CERT_FILE=str(gw.dir / "airlock-ca.pem"),
        OPENAI_BASE_URL="https://api.openai.test/v1",
        OPENAI_API_KEY="sk-agent-placeholder",
        ANTHROPIC_BASE_URL="https://api.anthropic.test",
        ANTHROPIC_API_KEY="sk-ant-agent-placeholder",
    )
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, which, mode, prompt], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_sdks_reach_the_provider_through_interception_and_are_metered_exactly(make_gateway, mock):
    gw = make_gateway(with_interception())
    assert (gw.dir / "airlock-ca.pem").exists(), "the CA was made at first start"
    assert oct((gw.dir / "airlock-ca.key").stat().st_mode & 0o777) == "0o600"

    results = [
        ("mock/chat-upstream", run_client(gw, "openai")),
        ("mock/chat-upstream", run_client(gw, "openai", "stream")),
        ("anthropic/claude-upstream", run_client(gw, "anthropic")),
        ("anthropic/claude-upstream", run_client(gw, "anthropic", "stream")),
    ]
    events = list(reversed(gw.events(4)))
    for (target, got), event in zip(results, events):
        assert got["text"], got
        assert event["kind"] == "llm" and event["outcome"] == "served", event
        assert event["intercepted"] is True and event["target"] == target
        assert event["host"] in HOSTS
        assert event["input_tokens"] == got["usage"]["input"]
        assert event["output_tokens"] == got["usage"]["output"]
        assert event["cost_nanos"] == expected_cost_nanos(
            target, input_tokens=got["usage"]["input"], output_tokens=got["usage"]["output"]
        )
    routes = {r["key"]: r["requests"] for r in gw.usage(group_by="route")}
    assert routes == {"intercepted": 4}, routes
    # The provider saw Airlock's provider key, never the agent's placeholder nor its Airlock key.
    seen = mock.requests()[-4:]
    assert all(MAIN_KEY not in json.dumps(r["headers"]) for r in seen)
    assert all("placeholder" not in json.dumps(r["headers"]) for r in seen)


def test_budget_and_guards_apply_inside_the_interception(make_gateway, mock):
    def edit(config):
        with_interception(guards={"dlp": {"default_action": "redact"}})(config)
        config["agents"][1]["budget"] = {"usd_per_day": 0.000001}

    gw = make_gateway(edit)
    got = run_client(gw, "openai", prompt="my key AKIAIOSFODNN7EXAMPLE")
    assert got["text"]
    assert mock.requests()[-1]["body"]["messages"][0]["content"] == "my key [REDACTED:aws_access_key]"

    refused = run_client(gw, "openai", key=OTHER_KEY)
    assert refused["status"] == 429 and refused["body"]["code"] == "budget_exceeded", refused


def test_pass_credentials_sends_the_agents_own_provider_key(make_gateway, mock):
    def edit(config):
        with_interception()(config)
        config["egress"]["intercept"]["api.openai.test"] = {"provider": "mock", "pass_credentials": True}

    gw = make_gateway(edit)
    run_client(gw, "openai")
    assert mock.requests()[-1]["headers"]["authorization"] == "Bearer sk-agent-placeholder"
    # An agent that put its Airlock key where the provider key goes never sends it upstream.
    run_client(gw, "openai", OPENAI_API_KEY=MAIN_KEY)
    assert MAIN_KEY not in json.dumps(mock.requests()[-1]["headers"])


def test_a_client_without_the_key_or_the_ca_is_refused_clearly(make_gateway):
    gw = make_gateway(with_interception())
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    url = "https://api.openai.test/v1/models"
    proxy = gw.config["listen"]["egress"]
    no_key = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-x", f"http://{proxy}", url],
        capture_output=True, text=True, env=env, timeout=20,
    )
    assert "407" in no_key.stderr + no_key.stdout
    untrusted = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-x", f"http://{MAIN_AGENT}:{MAIN_KEY}@{proxy}", url],
        capture_output=True, text=True, env=env, timeout=20,
    )
    assert untrusted.returncode == 60, untrusted.stderr  # curl: the certificate is not trusted
    assert "handshake" in gw.log_text() or "TLS" in gw.log_text()


def test_plain_http_to_an_intercepted_host_goes_through_the_pipeline_too(make_gateway, mock):
    import httpx2

    gw = make_gateway(with_interception())
    proxy = f"http://{MAIN_AGENT}:{MAIN_KEY}@{gw.config['listen']['egress']}"
    with httpx2.Client(proxy=proxy, trust_env=False, timeout=10) as client:
        res = client.post(
            "http://api.openai.test/v1/chat/completions",
            json={"model": "chat-upstream", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert res.status_code == 200 and res.json()["usage"]["total_tokens"] > 0, res.text
    event = gw.event()
    assert event["intercepted"] is True and event["target"] == "mock/chat-upstream" and event["operation"] == "chat.completions"

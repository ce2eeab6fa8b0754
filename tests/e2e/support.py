"""Processes and helpers for the end-to-end tests: the mock provider, a gateway started
from a config written into the test's tmp dir, the admin API, and the pricing formula.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import anthropic
import httpx2
import openai

REPO_ROOT = Path(__file__).resolve().parents[2]

# Agent keys the tests present, and the provider keys Airlock injects. All distinctive,
# so a leak is easy to find in logs and in what the mock received.
MAIN_KEY = "al-e2e-main-4b1d9c0e7a5f3a2c"
OTHER_KEY = "al-e2e-other-93e1f5a07c2d4b6e"
WRONG_KEY = "al-e2e-not-a-key-000000000000"
OPENAI_PROVIDER_KEY = "sk-e2e-provider-openai-5e0c71d9a3b2"
ANTHROPIC_PROVIDER_KEY = "sk-ant-e2e-provider-8f2a64c1d7e9"
ADMIN_TOKEN = "adm-e2e-admin-token-1c5b9e"

MAIN_AGENT = "e2e-bot"
MAIN_TEAM = "qa"
OTHER_AGENT = "e2e-other"
OTHER_TEAM = "ops"

# USD per 1M tokens, as written in the config's `pricing` section. Chosen so the
# expected cost is exact integer arithmetic; the embedding rate (1.3 nano-dollars a
# token) also exercises rounding up.
PRICES: dict[str, dict[str, str]] = {
    "mock/chat-upstream": {"input": "3", "cached_input": "0.5", "output": "7"},
    "mock/embed-upstream": {"input": "0.0013", "output": "0"},
    "mock/fallback-upstream": {"input": "1", "output": "2"},
    "down/fallback-upstream": {"input": "100", "output": "100"},
    "anthropic/claude-upstream": {
        "input": "3",
        "cached_input": "0.3",
        "cache_write": "3.75",
        "output": "15",
    },
}

# Public model name -> targets.
MODELS: dict[str, list[str]] = {
    "gpt-e2e": ["mock/chat-upstream"],
    "embed-e2e": ["mock/embed-upstream"],
    "claude-e2e": ["anthropic/claude-upstream"],
    "fallback-e2e": ["down/fallback-upstream", "mock/fallback-upstream"],
    "unreachable-e2e": ["dead/chat-upstream"],
    "secret-model": ["mock/chat-upstream"],
}


def binary(env_name: str, name: str) -> Path:
    """A built binary: $ENV_NAME, else target/debug/NAME, else $CARGO_TARGET_DIR/debug/NAME."""
    explicit = os.environ.get(env_name)
    if explicit:
        return Path(explicit)
    candidates = [REPO_ROOT / "target" / "debug" / name]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.insert(0, Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / name)
    for c in candidates:
        if c.is_file():
            return c
    raise RuntimeError(
        f"{name} not found (tried {', '.join(map(str, candidates))}); build it with "
        f"`cargo build -p airlock -p airlock-mock` or set {env_name}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    return free_port()


def port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def rate_nanos(usd_per_million: str) -> int:
    """USD per 1M tokens -> nano-dollars per 1M tokens (exact)."""
    value = Decimal(usd_per_million) * 1_000_000_000
    assert value == value.to_integral_value()
    return int(value)


def expected_cost_nanos(
    target: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> int:
    """The contract's formula: each kind of token at its own rate, in integer nano-dollars,
    rounded up: ceil(sum(tokens * nanos_per_1M) / 1e6). `input_tokens` includes cached
    and cache-write tokens."""
    p = PRICES[target]
    inp = rate_nanos(p["input"])
    cached = rate_nanos(p.get("cached_input", p["input"]))
    write = rate_nanos(p.get("cache_write", p["input"]))
    out = rate_nanos(p["output"])
    uncached = input_tokens - cached_input_tokens - cache_write_tokens
    total = uncached * inp + cached_input_tokens * cached + cache_write_tokens * write + output_tokens * out
    return -(-total // 1_000_000)


def mock_words(n: int) -> str:
    """The text the mock answers with `n` words."""
    return " ".join(f"w{i}" for i in range(1, n + 1))


def chat_prompt_tokens(messages: list[dict]) -> int:
    """The mock's counting rule for chat/Anthropic messages: 3 per message plus one per
    whitespace-separated word of text content."""
    total = 0
    for m in messages:
        total += 3
        content = m.get("content")
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            total += sum(len(b.get("text", "").split()) for b in content)
    return max(total, 1)


def decode_embedding(b64: str) -> list[float]:
    import struct

    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# --- YAML ------------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid double-quoted YAML scalar


def to_yaml(value: Any, indent: int = 0) -> str:
    """A small block-style YAML writer, so the written configs read like a user's."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values()) and indent >= 1:
                inner = ", ".join(f"{kk}: {_scalar(vv)}" for kk, vv in v.items())
                lines.append(f"{pad}{k}: {{ {inner} }}")
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}:" if v else f"{pad}{k}: {{}}")
                if v:
                    lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
                lines.append(f"{pad}{k}: [{', '.join(_scalar(x) for x in v)}]")
            elif isinstance(v, list):
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                body = to_yaml(item, indent + 1).splitlines()
                first = body[0].strip()
                lines.append(f"{pad}- {first}")
                lines.extend(body[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


# --- the mock provider ------------------------------------------------------------------


def start_listening(argv: list[str], log) -> tuple[subprocess.Popen, int]:
    """Starts a server that prints `listening on 127.0.0.1:PORT` when ready (the mock, the
    MCP upstreams); returns the process and its port."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{Path(argv[0]).name} {' '.join(argv[1:3])} did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop_process(proc: subprocess.Popen, timeout: float = 5) -> None:
    """SIGTERM, then SIGKILL if it takes longer than `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Mock:
    """One `airlock-mock` process."""

    def __init__(self, bin_path: Path, log_path: Path):
        self.log = open(log_path, "wb")
        self.proc, self.port = start_listening([str(bin_path), "--listen", "127.0.0.1:0"], self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx2.Client(trust_env=False, timeout=10)

    def requests(self) -> list[dict]:
        return self.http.get(f"{self.url}/mock/requests").json()

    def requests_tagged(self, tag: str) -> list[dict]:
        """Recorded requests carrying `x-e2e-tag: <tag>` (tests tag their calls)."""
        return [r for r in self.requests() if r["headers"].get("x-e2e-tag") == tag]

    def stop(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- the gateway ------------------------------------------------------------------------


def base_config(mock: Mock, tmp_path: Path) -> dict:
    """The config most tests run: providers pointing at the mock, a model table with a
    fallback, exact prices, two agents, small limits."""
    return {
        "listen": {
            "gateway": f"127.0.0.1:{free_port()}",
            "admin": f"127.0.0.1:{free_port()}",
        },
        "state": {"ledger": f"sqlite://{tmp_path / 'ledger.db'}", "counters": "memory"},
        "limits": {"max_body": "64KiB", "upstream_timeout": "1s"},
        "providers": {
            "mock": {"kind": "openai", "base_url": f"{mock.url}/v1", "api_key": "${E2E_OPENAI_KEY}"},
            "anthropic": {"kind": "anthropic", "base_url": mock.url, "api_key": "${E2E_ANTHROPIC_KEY}"},
            "down": {"kind": "openai", "base_url": f"{mock.url}/status=503/v1", "api_key": "${E2E_OPENAI_KEY}"},
            "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key": "${E2E_OPENAI_KEY}"},
        },
        "models": {name: {"targets": list(targets)} for name, targets in MODELS.items()},
        "pricing": {k: dict(v) for k, v in PRICES.items()},
        "agents": [
            {
                "id": MAIN_AGENT,
                "team": MAIN_TEAM,
                "keys": [digest(MAIN_KEY)],
                "allow": {"models": ["*-e2e"]},
            },
            {"id": OTHER_AGENT, "team": OTHER_TEAM, "keys": [digest(OTHER_KEY)]},
        ],
        "telemetry": {"log": "info"},
    }


class Gateway:
    """One `airlock serve --config FILE` process with its config in a tmp dir."""

    def __init__(self, bin_path: Path, tmp_path: Path, config: dict):
        self.bin = bin_path
        self.dir = tmp_path
        self.config = config
        self.config_path = tmp_path / "airlock.yaml"
        self.log_path = tmp_path / "airlock.log"
        self.proc: subprocess.Popen | None = None
        self.http = httpx2.Client(trust_env=False, timeout=10)

    # addresses
    @property
    def url(self) -> str:
        return "http://" + self.config["listen"]["gateway"]

    @property
    def admin_url(self) -> str:
        return "http://" + self.config["listen"]["admin"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "AIRLOCK_"))}
        env.update(
            AIRLOCK_ADMIN_TOKEN=ADMIN_TOKEN,
            E2E_OPENAI_KEY=OPENAI_PROVIDER_KEY,
            E2E_ANTHROPIC_KEY=ANTHROPIC_PROVIDER_KEY,
        )
        env.pop("RUST_LOG", None)
        return env

    def write_config(self, config: dict | None = None, text: str | None = None) -> None:
        """Writes the config file atomically (so a reload never sees half a file)."""
        if config is not None:
            self.config = config
        body = text if text is not None else to_yaml(self.config) + "\n"
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(body)
        os.replace(tmp, self.config_path)

    def start(self) -> "Gateway":
        self.write_config()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--config", str(self.config_path)],
            env=self.env(),
            cwd=self.dir,
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"airlock exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.http.get(f"{self.admin_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"airlock did not become healthy:\n{self.log_text()}")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM; returns the exit code (killing it if it takes longer than `timeout`)."""
        self.http.close()
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                raise AssertionError(f"airlock did not exit within {timeout}s of SIGTERM")
        self.log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # clients
    def openai(self, key: str = MAIN_KEY, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=f"{self.url}/v1", max_retries=0, timeout=10, **kw)

    def anthropic(self, key: str | None = MAIN_KEY, **kw: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=key, base_url=self.url, max_retries=0, timeout=10, **kw)

    # admin API
    def admin(self, path: str, **params: Any) -> httpx2.Response:
        return self.http.get(
            f"{self.admin_url}{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )

    def events(self, count: int = 1, agent: str | None = MAIN_AGENT, limit: int = 100, settle: float = 0.0) -> list[dict]:
        """The newest events (newest first), polling until at least `count` are there:
        ledger writes are batched off the request path. `settle` waits that much longer
        afterwards, to catch events that should NOT be there."""
        deadline = time.monotonic() + 5
        while True:
            res = self.admin("/api/events", limit=limit, agent=agent)
            assert res.status_code == 200, res.text
            events = res.json()["events"]
            if len(events) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if settle:
            time.sleep(settle)
            events = self.admin("/api/events", limit=limit, agent=agent).json()["events"]
        assert len(events) >= count, f"expected {count} events, got {events}"
        return events

    def event(self, **kw: Any) -> dict:
        """The only event of the agent; fails if there is more than one."""
        events = self.events(1, settle=0.2, **kw)
        assert len(events) == 1, f"expected exactly one event, got {json.dumps(events, indent=1)}"
        return events[0]

    def usage(self, group_by: str = "agent", since: str | None = None) -> list[dict]:
        res = self.admin("/api/usage", group_by=group_by, since=since)
        assert res.status_code == 200, res.text
        return res.json()["rows"]

    def metrics(self) -> str:
        res = self.http.get(f"{self.admin_url}/metrics")
        assert res.status_code == 200
        return res.text


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class PrivateCluster:
    """A PostgreSQL cluster made with `initdb` in a temp dir, listening on a free loopback
    port, trusting local logins: a ledger a test can take down and bring back. As root
    (CI), the server runs as the `postgres` user, as PostgreSQL requires."""

    def __init__(self):
        import glob
        import pwd
        import shutil
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)")
        self.bin = Path(bins[-1])
        # Not the test's tmp dir: the server's user must be able to enter it.
        self.dir = Path(tempfile.mkdtemp(prefix="airlock-pg-"))
        os.chmod(self.dir, 0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._shutil = shutil
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "ledger")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/ledger"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=60, cwd=self.dir)

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, cwd=self.dir)
        self._shutil.rmtree(self.dir, ignore_errors=True)



def served_until_budget_refuses(call: Callable[[], Any], most: int = 40) -> int:
    """Calls `call` until the budget refuses one (`budget_exceeded`); how many were served.
    A budget is reserved at the call's worst case (`README`, Budgets), so tests say "until
    refused" rather than count on one call's size."""
    for served in range(most):
        try:
            call()
        except openai.RateLimitError as e:
            assert e.body["code"] == "budget_exceeded", e.body
            return served
        # Settlement (the reservation becoming the real cost) runs after the answer: let it,
        # so the refusal is the budget's and not a reservation still in flight.
        time.sleep(0.1)
    raise AssertionError(f"{most} calls served under the budget: it never refused one")

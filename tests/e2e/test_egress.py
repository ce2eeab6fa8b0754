"""The egress proxy with real clients: curl and httpx through `HTTPS_PROXY` to a local HTTPS
server whose test CA they trust, plain HTTP in absolute form, and the private-address
defence with every spelling of loopback. All traffic stays on 127.0.0.1."""

from __future__ import annotations

import base64
import http.server
import os
import socket
import sqlite3
import ssl
import subprocess
import threading

import httpx2
import pytest
import trustme

from support import MAIN_AGENT, MAIN_KEY, OTHER_KEY, WRONG_KEY, free_port


class Hello(http.server.BaseHTTPRequestHandler):
    """Answers every GET with its path (`/peer`: with the caller's port), every POST with
    the length of what it got."""

    protocol_version = "HTTP/1.1"

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/peer":
            return self._answer(f"peer {self.client_address[1]}".encode())
        self._answer(f"hello {self.path} via {self.headers.get('host')}".encode())

    def do_POST(self):
        got = self.rfile.read(int(self.headers.get("content-length", 0)))
        self._answer(f"got {len(got)} bytes".encode())

    def log_message(self, *args):
        pass


def serve(server: http.server.ThreadingHTTPServer) -> http.server.ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    serve(tls), serve(plain)
    yield {"ca": str(ca_file), "tls": tls.server_port, "plain": plain.server_port}
    tls.shutdown(), plain.shutdown()


def with_egress(allow_private=("127.0.0.1",), **egress):
    def edit(config):
        config["listen"]["egress"] = f"127.0.0.1:{free_port()}"
        config["egress"] = {"allow_private": list(allow_private), **egress}

    return edit


def proxy_url(gw, key: str = MAIN_KEY) -> str:
    return f"http://{MAIN_AGENT}:{key}@{gw.config['listen']['egress']}"


def raw(gw, request: str, key: str | None = MAIN_KEY) -> tuple[int, dict, str]:
    """One request to the proxy over a plain socket: what curl and httpx would send,
    without their retries, for the refusals."""
    host, port = gw.config["listen"]["egress"].split(":")
    auth = ""
    if key:
        token = base64.b64encode(f"{MAIN_AGENT}:{key}".encode()).decode()
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"{request}\r\n{auth}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and request.startswith("CONNECT"):
                break
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def curl(*args: str, **env: str) -> subprocess.CompletedProcess:
    """curl with the proxy settings given here only (conftest's NO_PROXY would bypass it)."""
    clean = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "http_proxy")}
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, env={**clean, **env}, timeout=20
    )


def test_curl_tunnels_https_through_the_proxy_and_the_tunnel_is_recorded(make_gateway, servers):
    gw = make_gateway(with_egress())
    res = curl("--cacert", servers["ca"], f"https://127.0.0.1:{servers['tls']}/secret", HTTPS_PROXY=proxy_url(gw))
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"hello /secret via 127.0.0.1:{servers['tls']}"
    event = gw.event()
    assert event["kind"] == "egress" and event["operation"] == "CONNECT" and event["outcome"] == "served"
    assert event["target"] is None or "127.0.0.1" in str(event["target"])
    assert event["host"] == "127.0.0.1" and event["port"] == servers["tls"]
    # TLS both ways: more than the plaintext, and nothing decrypted.
    assert event["bytes_up"] > 100 and event["bytes_down"] > 100
    assert "path" not in event


def test_httpx_honours_https_proxy_and_the_proxy_checks_the_key(make_gateway, servers, monkeypatch):
    gw = make_gateway(with_egress())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(gw))
    with httpx2.Client(verify=servers["ca"], trust_env=True, timeout=10) as client:
        res = client.post(f"https://127.0.0.1:{servers['tls']}/upload", content=b"x" * 5000)
    assert res.status_code == 200 and res.text == "got 5000 bytes"
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(gw, WRONG_KEY))
    with httpx2.Client(verify=servers["ca"], trust_env=True, timeout=10) as client:
        with pytest.raises(httpx2.ProxyError):
            client.get(f"https://127.0.0.1:{servers['tls']}/")
    status, headers, _ = raw(gw, f"CONNECT 127.0.0.1:{servers['tls']} HTTP/1.1", key=None)
    assert status == 407 and headers["proxy-authenticate"].startswith("Basic")


def test_plain_http_is_forwarded_in_origin_form_and_recorded(make_gateway, servers):
    gw = make_gateway(with_egress())
    res = curl("-x", proxy_url(gw), f"http://127.0.0.1:{servers['plain']}/page?q=1")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"hello /page?q=1 via 127.0.0.1:{servers['plain']}"
    event = gw.event()
    assert event["operation"] == "GET" and event["path"] == "/page?q=1" and event["status"] == 200
    assert event["bytes_down"] == event["bytes_out"] == len(res.stdout)


def test_plain_http_reuses_a_kept_alive_connection_to_the_checked_address(make_gateway, servers):
    gw = make_gateway(with_egress())
    # Three agents' processes, three connections to the proxy, one to the destination.
    peers = set()
    for _ in range(3):
        res = curl("-x", proxy_url(gw), f"http://127.0.0.1:{servers['plain']}/peer")
        assert res.returncode == 0 and res.stdout.startswith("peer "), res.stderr
        peers.add(res.stdout)
    assert len(peers) == 1, peers
    # Each request is still its own call: checked, recorded.
    assert len(gw.events(3)) == 3


def test_a_tunnel_to_an_ai_provider_is_recorded_as_an_unmetered_llm_call(make_gateway, servers):
    # The loopback server stands in for an AI provider's host (never a real one in tests).
    gw = make_gateway(with_egress(ai_hosts=["127.0.0.1"]))
    res = curl("--cacert", servers["ca"], f"https://127.0.0.1:{servers['tls']}/v1/models", HTTPS_PROXY=proxy_url(gw))
    assert res.returncode == 0, res.stderr
    event = gw.event()
    assert event["kind"] == "llm" and event["provider"] == "127.0.0.1" and event["intercepted"] is False
    assert event["operation"] == "CONNECT" and event["outcome"] == "served"
    assert event["bytes_up"] > 100 and event["bytes_down"] > 100 and event["cost_nanos"] == 0
    [row] = [r for r in gw.usage(group_by="provider") if r["key"] == "127.0.0.1"]
    assert row["requests"] == 1 and row["cost_nanos"] == 0
    assert {r["key"]: r["requests"] for r in gw.usage(group_by="route")} == {"recognised": 1}
    # Other hosts stay plain egress.
    gw2 = make_gateway(with_egress())
    curl("--cacert", servers["ca"], f"https://127.0.0.1:{servers['tls']}/", HTTPS_PROXY=proxy_url(gw2))
    assert gw2.event()["kind"] == "egress"


LOOPBACK_FORMS = [
    "127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0.0.0.0",
    "[::1]", "[::ffff:127.0.0.1]", "localhost", "localhost.",
]


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_every_spelling_of_loopback_is_refused_before_any_connection(make_gateway, servers, form):
    gw = make_gateway(with_egress(allow_private=()))
    port = servers["plain"]  # a real listener: had the proxy connected, it would have answered
    status, headers, body = raw(gw, f"CONNECT {form}:{port} HTTP/1.1\r\nHost: {form}:{port}")
    assert status == 403, body
    assert headers["x-airlock-reason"] == "private_address"
    status, headers, body = raw(gw, f"GET http://{form}:{port}/ HTTP/1.1\r\nHost: {form}:{port}")
    assert status == 403, body
    assert headers["x-airlock-reason"] == "private_address"


def test_host_policy_global_and_per_agent(make_gateway, servers):
    def edit(config):
        with_egress(allow=["127.0.0.1"], deny=[f"127.0.0.1:{servers['plain']}"])(config)
        config["agents"][1]["allow"] = {"hosts": []}

    gw = make_gateway(edit)
    tls, plain = servers["tls"], servers["plain"]
    assert raw(gw, f"CONNECT 127.0.0.1:{tls} HTTP/1.1\r\nHost: 127.0.0.1:{tls}")[0] == 200
    status, headers, body = raw(gw, f"CONNECT 127.0.0.1:{plain} HTTP/1.1\r\nHost: 127.0.0.1:{plain}")
    assert status == 403 and headers["x-airlock-reason"] == "not_allowed" and "egress.deny" in body
    status, headers, body = raw(gw, f"CONNECT 127.0.0.1:{tls} HTTP/1.1\r\nHost: 127.0.0.1:{tls}", key=OTHER_KEY)
    assert status == 403 and "allow.hosts" in body


def test_per_host_rate_limits_answer_429_with_retry_after(make_gateway, servers):
    def edit(config):
        with_egress()(config)
        config["agents"][0]["limits"] = {"hosts": {"127.0.0.*": {"requests_per_minute": 1}}}

    gw = make_gateway(edit)
    url = f"http://127.0.0.1:{servers['plain']}/"
    assert curl("-x", proxy_url(gw), url).returncode == 0
    status, headers, _ = raw(gw, f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1")
    assert status == 429 and headers["x-airlock-reason"] == "rate_limited" and int(headers["retry-after"]) >= 1


def test_an_open_tunnel_is_closed_at_shutdown(make_gateway, servers):
    gw = make_gateway(with_egress())
    host, port = gw.config["listen"]["egress"].split(":")
    token = base64.b64encode(f"{MAIN_AGENT}:{MAIN_KEY}".encode()).decode()
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(f"CONNECT 127.0.0.1:{servers['plain']} HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode())
    assert s.recv(1024).startswith(b"HTTP/1.1 200")
    assert gw.stop() == 0
    assert s.recv(1024) == b""  # closed by the gateway, not left hanging
    s.close()
    # ... and recorded before the ledger closed.
    with sqlite3.connect(gw.dir / "ledger.db") as db:
        assert db.execute("SELECT count(*) FROM events WHERE kind = 'egress' AND operation = 'CONNECT'").fetchone() == (1,)

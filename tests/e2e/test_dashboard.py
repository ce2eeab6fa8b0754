"""The admin dashboard in a real browser: Debian's headless Chromium driven by Playwright
(tests/e2e/dashboard/browser.mjs) against a running gateway, plus the HTTP rules the page
relies on (sign-in, cookies, CSRF header, security headers)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import anyio
import httpx2
import pytest

from mcp_support import Upstream, connect, names
from support import ADMIN_TOKEN, MAIN_AGENT, MAIN_KEY, OTHER_AGENT, OTHER_KEY

HERE = Path(__file__).parent
BROWSER_TEST = HERE / "dashboard" / "browser.mjs"
# Screenshots of each page, kept after the run (CI artefacts).
ARTIFACTS = Path(os.environ.get("AIRLOCK_ARTIFACTS", HERE.parent.parent / "artifacts")) / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def test_the_dashboard_in_a_browser(make_gateway, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    rug = Upstream("streamable-http", "rug", tmp_path)

    def edit(config):
        config["limits"]["upstream_timeout"] = "10s"
        config["mcp"] = {"servers": {"rug": rug.config()}}
        config["agents"][0]["budget"] = {"usd_per_day": 5, "usd_per_month": 50}

    gw = make_gateway(edit)
    try:
        # A call before the browser opens, with the official SDK: the overview counts it.
        gw.openai().chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])

        # The tool is pinned at first sight, then its upstream changes it.
        async def pin_then_change():
            async with connect(gw) as client:
                assert "rug__mutable" in names((await client.list_tools()).tools)
                (tmp_path / "mutable_description.txt").write_text("Returns a fixed answer, now from a cache.")
                assert "rug__mutable" not in names((await client.list_tools()).tools)

        anyio.run(pin_then_change)

        env = {
            **os.environ,
            "ADMIN_URL": gw.admin_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_URL": gw.url,
            "AGENT_KEY": MAIN_KEY,
            "AGENT_ID": MAIN_AGENT,
            "MODEL": "gpt-e2e",
            "ARTIFACTS": str(ARTIFACTS),
            "CHROMIUM": CHROMIUM,
        }
        run = subprocess.run(["node", str(BROWSER_TEST)], env=env, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n(screenshots in {ARTIFACTS})"
        assert run.stdout.strip().endswith("ok")
        for page in ["overview", "live", "agent", "tools", "events"]:
            assert (ARTIFACTS / f"{page}.png").stat().st_size > 10_000, page

        # What the browser did reached the gateway: the approved tool is served again.
        async def served_again():
            async with connect(gw) as client:
                assert "rug__mutable" in names((await client.list_tools()).tools)

        anyio.run(served_again)
    finally:
        rug.stop()


def test_the_page_and_sessions_follow_the_rules(gateway):
    http = httpx2.Client(timeout=10)
    page = http.get(f"{gateway.admin_url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert http.get(f"{gateway.admin_url}/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert http.get(f"{gateway.admin_url}/ui/nope.js").status_code == 404
    # The page is on the admin listener only.
    assert http.get(f"{gateway.url}/ui/app.js").status_code == 404

    # Signing in: a wrong token is refused (slowly), a malformed body is a 400.
    assert http.post(f"{gateway.admin_url}/api/session", json={"token": "guess"}).status_code == 401
    assert http.post(f"{gateway.admin_url}/api/session", content=b"{").status_code == 400
    signed = http.post(f"{gateway.admin_url}/api/session", json={"token": ADMIN_TOKEN})
    assert signed.status_code == 200
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN_TOKEN not in cookie
    session = {"cookie": cookie.split(";")[0]}

    # The cookie reads the API; a write also needs the dashboard's header, which another
    # site's form or script can't send.
    assert http.get(f"{gateway.admin_url}/api/agents", headers=session).status_code == 200
    suspend = f"{gateway.admin_url}/api/agents/{MAIN_AGENT}/suspend"
    assert http.post(suspend, headers=session, json={}).status_code == 401
    assert http.post(suspend, headers={**session, "x-airlock-dashboard": "1"}, json={}).status_code == 200
    resume = f"{gateway.admin_url}/api/agents/{MAIN_AGENT}/resume"
    assert http.post(resume, headers={**session, "x-airlock-dashboard": "1"}, json={}).status_code == 200

    # Signing out ends the session on the server, not only in the browser.
    out = http.delete(f"{gateway.admin_url}/api/session", headers=session)
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert http.get(f"{gateway.admin_url}/api/agents", headers=session).status_code == 401
    assert ADMIN_TOKEN not in gateway.log_text()


def test_the_api_behind_the_pages(make_gateway):
    def edit(config):
        config["agents"][0]["budget"] = {"usd_per_day": 5, "usd_per_run": 1}

    gw = make_gateway(edit)
    client = gw.openai()
    for _ in range(3):
        client.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(Exception):
        client.chat.completions.create(model="secret-model", messages=[{"role": "user", "content": "hi"}])
    gw.openai(key=OTHER_KEY).chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
    events = gw.events(count=4)
    gw.events(count=1, agent=OTHER_AGENT)
    spent = sum(e["cost_nanos"] for e in events)

    def usage(**params):
        res = gw.admin("/api/usage", **params)
        assert res.status_code == 200, res.text
        return {r["key"]: r for r in res.json()["rows"]}

    # Per agent, per kind, by reason, target and time bucket.
    mine = usage(group_by="reason", agent=MAIN_AGENT, since="today")
    assert mine[None]["requests"] == 3 and mine["not_allowed"]["requests"] == 1
    assert set(usage(group_by="target", agent=MAIN_AGENT, kind="llm")) == {"mock/chat-upstream", None}
    assert usage(group_by="target", agent=MAIN_AGENT, kind="mcp") == {}
    hours = usage(group_by="hour", since="1h")
    assert sum(r["requests"] for r in hours.values()) == 5
    assert all(int(k) % 3_600_000 == 0 for k in hours)
    days = {int(datetime.fromisoformat(e["ts"]).timestamp()) // 86_400 * 86_400_000 for e in events}
    assert {int(k) for k in usage(group_by="day", since="30d", agent=MAIN_AGENT)} == days
    assert gw.admin("/api/usage", group_by="week").status_code == 400
    assert gw.admin("/api/usage", since="yesterday").status_code == 400

    # Listings: by outcome and reason, a page at a time.
    denied = gw.admin("/api/events", outcome="denied").json()["events"]
    assert [e["reason"] for e in denied] == ["not_allowed"]
    assert gw.admin("/api/events", reason="not_allowed").json()["events"] == denied
    assert gw.admin("/api/events", outcome="nope").status_code == 400
    first = gw.admin("/api/events", limit=2, agent=MAIN_AGENT).json()["events"]
    rest = gw.admin("/api/events", limit=10, agent=MAIN_AGENT, before=first[-1]["id"]).json()["events"]
    assert [e["id"] for e in first + rest] == [e["id"] for e in events]
    unknown = gw.admin("/api/events", before="ev_not_in_the_ledger")
    assert unknown.status_code == 400 and "ev_not_in_the_ledger" in unknown.json()["error"]["message"]
    assert gw.admin("/api/events", id=first[0]["id"]).json()["events"] == first[:1]

    # The agent page: its budgets against what the ledger says it spent.
    agent = gw.admin(f"/api/agents/{MAIN_AGENT}").json()
    day = next(b for b in agent["budgets"] if b["period"] == "day")
    assert day["limit_nanos"] == 5_000_000_000 and day["spent_nanos"] == spent > 0
    run = next(b for b in agent["budgets"] if b["period"] == "run")
    assert run["spent_nanos"] is None and run["resets_ms"] is None
    assert agent["allow"]["models"] == ["*-e2e"] and agent["allow"]["tools"] is None
    assert gw.admin("/api/agents/nobody").status_code == 404

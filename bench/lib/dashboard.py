"""bench/dashboard's measuring half: times the admin API requests each dashboard page makes
against a gateway whose ledger holds a million events, and the query the usage figures
were answered with before the hourly rollup, on the same file.

    dashboard.py measure ADMIN_URL TOKEN LEDGER_FILE OUT_JSON
    dashboard.py report OUT_JSON META_ENV        (markdown on stdout)
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import statistics
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

RUNS = 20
AGENT = "agent-07"


def pages() -> dict[str, list[str]]:
    """The requests of each page, as dashboard/app.js makes them (in parallel)."""
    u = lambda **p: "/api/usage?" + urllib.parse.urlencode(p)  # noqa: E731
    mine = lambda **p: u(agent=AGENT, since="30d", **p)  # noqa: E731
    return {
        "overview": [
            u(group_by="outcome", since="today"),
            u(group_by="agent", since="today"),
            u(group_by="agent", since="month"),
            u(group_by="reason", since="24h"),
            u(group_by="route", since="month", kind="llm"),
            u(group_by="hour", since="24h"),
        ],
        "overview, 30-day chart": [u(group_by="day", since="30d")],
        "agents": ["/api/agents", u(group_by="agent", since="today"), u(group_by="agent", since="month")],
        "agent page": [
            f"/api/agents/{AGENT}",
            mine(group_by="target", kind="llm"),
            mine(group_by="target", kind="mcp"),
            mine(group_by="target", kind="egress"),
            mine(group_by="target", kind="a2a"),
            mine(group_by="reason"),
            f"/api/events?agent={AGENT}&limit=20",
        ],
        "live (first rows)": ["/api/events?limit=50"],
        "events": ["/api/events?limit=50"],
        "events: denied": ["/api/events?limit=50&outcome=denied"],
        "events: one reason": ["/api/events?limit=50&reason=loop_detected"],
        "events: agent + kind": [f"/api/events?limit=50&agent={AGENT}&kind=mcp"],
        "events: a reason no call has": ["/api/events?limit=50&reason=no_such_reason"],
        "events: agent + rare outcome": [f"/api/events?limit=50&agent={AGENT}&outcome=cancelled"],
    }


class Admin:
    def __init__(self, url: str, token: str):
        self.host = urllib.parse.urlsplit(url).netloc
        self.headers = {"authorization": f"Bearer {token}"}

    def get(self, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[float, dict]:
        own = conn is None
        conn = conn or http.client.HTTPConnection(self.host, timeout=60)
        start = time.perf_counter()
        conn.request("GET", path, headers=self.headers)
        res = conn.getresponse()
        body = res.read()
        took = (time.perf_counter() - start) * 1000
        if own:
            conn.close()
        if res.status != 200:
            raise SystemExit(f"{path}: {res.status} {body[:200]!r}")
        return took, json.loads(body)


def stats(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"p50": statistics.median(ms), "max": ms[-1], "runs": len(ms)}


def measure(url: str, token: str, ledger: str, out: str) -> None:
    admin = Admin(url, token)
    results: dict = {"requests": {}, "pages": {}, "paging": {}, "before_rollup": {}}
    conn = http.client.HTTPConnection(admin.host, timeout=60)
    for page, paths in pages().items():
        for path in paths:
            for _ in range(2):
                admin.get(path, conn)
            results["requests"][path] = stats([admin.get(path, conn)[0] for _ in range(RUNS)])
        # The page as a browser loads it: its requests at once.
        walls = []
        with ThreadPoolExecutor(len(paths)) as pool:
            for _ in range(RUNS):
                start = time.perf_counter()
                list(pool.map(admin.get, paths))
                walls.append((time.perf_counter() - start) * 1000)
        results["pages"][page] = {**stats(walls), "requests": len(paths)}

    # "Older events", 200 pages deep: keyset paging costs the same on every page.
    before, times = None, []
    for _ in range(200):
        took, data = admin.get("/api/events?limit=50" + (f"&before={before}" if before else ""), conn)
        times.append(took)
        before = data["events"][-1]["id"]
    results["paging"] = {"first 10": stats(times[:10]), "pages 190-200": stats(times[-10:])}

    # What the same figures cost summed straight from the events, as before the rollup.
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    now = int(time.time() * 1000)
    month = now - now % 86_400_000 - (time.gmtime().tm_mday - 1) * 86_400_000
    for name, sql, args in [
        ("usage by agent, this month",
         "SELECT agent, COUNT(*), SUM(outcome = 'denied'), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos) "
         "FROM events WHERE ts_ms >= ? GROUP BY agent", (month,)),
        ("usage by day, 30 days",
         "SELECT ts_ms - ts_ms % 86400000, COUNT(*), SUM(cost_nanos) FROM events WHERE ts_ms >= ? GROUP BY 1",
         (now - 30 * 86_400_000,)),
    ]:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            db.execute(sql, args).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        results["before_rollup"][name] = stats(times)
    results["rows"] = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    results["rollup_rows"] = db.execute("SELECT COUNT(*) FROM usage_hours").fetchone()[0]
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


def report(out: str, meta_path: str) -> None:
    r = json.load(open(out))
    meta = dict(line.rstrip("\n").split("=", 1) for line in open(meta_path) if "=" in line)
    print("# Dashboard over a million events\n")
    print(f"{meta['date']} · {meta['cpu']} ({meta['nproc']} cores) · airlock {meta['airlock_rev']}"
          f"{' · QUICK run' if meta.get('quick') else ''}\n")
    print(f"SQLite ledger: {r['rows']:,} events over {meta['days']} days "
          f"({meta['size_mb']} MB; {r['rollup_rows']:,} rollup rows), written through the ledger's own "
          f"writer (batches, hash chain, rollups) at {meta['fill_rate']} events/s.\n")
    section("Pages (their API requests at once, as the browser makes them)", "page | requests",
            [(f"{page} | {s['requests']}", s) for page, s in r["pages"].items()])
    section("Each request (one after another, keep-alive)", "request",
            [(f"`{path}`", s) for path, s in r["requests"].items()])
    section("Paging back through the events table (50 a page)", "pages", r["paging"].items())
    section("The same figures summed from the events alone (as before the rollups)", "query",
            r["before_rollup"].items())


def section(title: str, head: str, rows) -> None:
    """A markdown table of timings: the row's name(s), then p50 and max."""
    names = head.count("|") + 1
    print(f"## {title}\n")
    print(f"| {head} | p50 | max |\n|{'---|' * names}---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s['p50']:.1f} ms | {s['max']:.1f} ms |")
    print()

if __name__ == "__main__":
    if sys.argv[1] == "measure":
        measure(*sys.argv[2:6])
    else:
        report(*sys.argv[2:4])

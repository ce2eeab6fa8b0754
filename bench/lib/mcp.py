"""The report of bench/mcp: MCP tools/call round trips, direct to the MCP server and
through Airlock, side by side.

    mcp.py RESULTS_DIR      the markdown report on stdout

Standard library only; shares its helpers with report.py.
"""

import glob
import os
import sqlite3
import sys

from report import comparison_rows, foreign, jsonl, meta, table_command


def ledger(db):
    rows = sqlite3.connect(db).execute(
        "select outcome, count(*) from events group by outcome order by 2 desc"
    )
    return ", ".join(f"{n:,} {outcome}" for outcome, n in rows) or "no rows"


def cmd_report(results):
    m = meta(results)
    fr = foreign(results)
    fmax = int(m.get("foreign_max", 15))
    hz = float(m.get("hz", 100))
    concs = m["concs"].split()
    runs = {c: jsonl(os.path.join(results, f"c{c}.jsonl")) for c in concs}
    cpu = {}
    with open(os.path.join(results, "cpu.txt")) as f:
        for line in f:  # a repeated measurement's line comes last and wins
            name, airlock, upstream = line.split()
            cpu[name[1:]] = (int(airlock), int(upstream))

    out = []
    out.append(f"# Airlock MCP gateway benchmark — {m['date']}")
    out.append("")
    out.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. "
        f"Load average before: {m['load_before']} ({m['quiet']})."
    )
    out.append(
        f"Airlock {m['airlock_rev']} (release, SQLite ledger, `log: warn`); MCP server: "
        f"tests/e2e/mcp/upstream.py (Python {m['python']}, `mcp` {m['mcp']}, uvicorn, "
        "Streamable HTTP, stateful). The probe, Airlock and the server share the cores."
    )
    out.append("")
    out.append(
        f"One `tools/call` of `echo` (`{{\"text\":\"hello, benchmark\"}}`), {m['requests']} "
        f"measured calls per path after {m['warmup']} warm-up ones at each concurrency, "
        "interleaved: each probe worker keeps one keep-alive connection per path and "
        "alternates between the paths (so at concurrency C about C/2 calls are in flight on "
        "each path, C at the server). Direct: `POST /mcp` on the server, which answers with "
        "SSE. Through Airlock: `POST /mcp/alpha`, one session per path opened beforehand. "
        "Round trips/s = concurrency ÷ mean round trip (each connection's calls over the "
        "time spent on them, summed)."
    )
    out.append("")
    out.append("| | direct (MCP server) | through Airlock | through / direct | added |")
    out.append("|---|---|---|---|---|")
    for c in concs:
        d, a = runs[c].get("direct", {}), runs[c].get("airlock", {})
        mark = " ⚠" if fr.get(f"c{c}", 0) > fmax else ""
        out += comparison_rows(f"c={c}", "round trips/s", mark, d, a, ("p50", "p90", "p99", "mean"), 2)
    out.append("")
    out.append(
        "CPU per call (utime + stime from /proc over each measurement, warm-up included): "
        "Airlock per call through it; the MCP server per call of either path."
    )
    out.append("")
    for c in concs:
        if c not in cpu:
            continue
        a_j, u_j = cpu[c]
        calls_a = runs[c].get("airlock", {}).get("sent", 0)
        calls = sum(r.get("sent", 0) for r in runs[c].values())
        if calls_a and calls:
            out.append(
                f"- c={c}: Airlock {a_j / hz / calls_a * 1e6:,.0f} µs, "
                f"MCP server {u_j / hz / calls * 1e6:,.0f} µs."
            )
    out.append("")
    errors = {c: sum(r.get("errors", 0) for r in runs[c].values()) for c in concs}
    sent = 0
    for path in glob.glob(os.path.join(results, "*.jsonl*")):
        sent += jsonl(path).get("airlock", {}).get("sent", 0)
    out.append(
        "Other processes' CPU while measuring, % of one core (over "
        f"{fmax}% is repeated once after waiting for quiet): "
        + ", ".join(f"c={c} {fr.get(f'c{c}', '?')}" for c in concs)
        + ". Errors: "
        + ", ".join(f"c={c} {errors[c]}" for c in concs)
        + f". Ledger: {ledger(m['ledger'])} for {sent:,} calls sent through Airlock."
    )
    if m.get("quick"):
        out.append("")
        out.append("**BENCH_QUICK run: not for quoting.**")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(table_command(__doc__, cmd_report))

"""The report of bench/egress: bulk transfers and plain HTTP requests, directly and
through Airlock's egress proxy, side by side, with Airlock's CPU per MB and per request.

    egress.py RESULTS_DIR      the markdown report on stdout

Standard library only; shares its helpers with report.py.
"""

import os
import sqlite3
import sys

from report import comparison_rows, foreign, jsonl, meta, table_command


def ledger(db):
    """'N served CONNECT, …' and the bytes the tunnels carried down, from the ledger."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "select operation, outcome, count(*) from events group by 1, 2 order by 3 desc"
    )
    text = ", ".join(f"{n:,} {outcome} {op}" for op, outcome, n in rows) or "no rows"
    down = con.execute("select sum(bytes_out) from events where operation = 'CONNECT'")
    return text, down.fetchone()[0] or 0


def cpu_lines(results):
    out = {}
    with open(os.path.join(results, "cpu.txt")) as f:
        for line in f:  # a repeated measurement's line comes last and wins
            name, airlock, mock, source = line.split()
            out[name] = (int(airlock), int(mock), int(source))
    return out


def cmd_report(results):
    m = meta(results)
    fr = foreign(results)
    fmax = int(m.get("foreign_max", 15))
    hz = float(m.get("hz", 100))
    concs = m["concs"].split()
    nbytes, rounds = int(m["bytes"]), int(m["rounds"])
    bulk = jsonl(os.path.join(results, "bulk.jsonl"))
    runs = {c: jsonl(os.path.join(results, f"c{c}.jsonl")) for c in concs}
    cpu = cpu_lines(results)
    mark = lambda name: " ⚠" if fr.get(name, 0) > fmax else ""  # noqa: E731

    out = [f"# Airlock egress proxy benchmark — {m['date']}", ""]
    out.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. "
        f"Load average before: {m['load_before']} ({m['quiet']}). Airlock {m['airlock_rev']} "
        "(release, SQLite ledger, `log: warn`, `egress.allow_private: [127.0.0.1]`). "
        "The probe, Airlock, the mock and the byte source share the cores."
    )
    out.append("")
    out.append(
        f"1. **Bulk**: {rounds} measured rounds (after one warm-up round) of {nbytes >> 20} MiB "
        f"from a byte source (Python, `bench/lib/bulk_source.py`) per path, the paths "
        "alternating round by round; each round a new connection (direct) or a new "
        "`CONNECT` tunnel through Airlock, timed from asking for the bytes to the last one. "
        "MB = 10^6 bytes."
    )
    out.append(
        f"2. **Plain HTTP**: `POST /v1/chat/completions` on the mock, {m['requests']} measured "
        f"requests per path after {m['warmup']} warm-up ones at each concurrency, interleaved "
        "(each probe worker keeps one keep-alive connection per path and alternates). Through "
        "Airlock the request goes to the egress proxy in absolute form with "
        "`Proxy-Authorization`. Requests/s = concurrency ÷ mean round trip."
    )
    out.append("")
    out.append("| | direct | through Airlock | through / direct | added |")
    out.append("|---|---|---|---|---|")
    d, p = bulk.get("direct", {}), bulk.get("proxy", {})
    if d.get("median_mbps") and p.get("median_mbps"):
        dv, pv = d["median_mbps"], p["median_mbps"]
        out.append(
            f"| bulk: median MB/s{mark('bulk')} | {dv:,.0f} | {pv:,.0f} | {pv / dv:.2f}× | |"
        )
        rng = lambda r: f"{min(r['mbps']):,.0f}–{max(r['mbps']):,.0f}"  # noqa: E731
        out.append(f"| bulk: range of the rounds, MB/s | {rng(d)} | {rng(p)} | | |")
        do, po = d["open_median_us"] / 1e3, p["open_median_us"] / 1e3
        out.append(
            f"| bulk: opening (TCP connect / `CONNECT` answered), median ms | {do:.2f} | "
            f"{po:.2f} | | {po - do:+.2f} |"
        )
    for c in concs:
        d, p = runs[c].get("direct", {}), runs[c].get("proxy", {})
        out += comparison_rows(f"c={c}", "requests/s", mark("c" + c), d, p, ("p50", "p90", "p99"), 3)
    out.append("")

    out.append(
        "CPU time (utime + stime from /proc over each measurement, warm-up included; "
        f"{1e3 / hz:.0f} ms ticks):"
    )
    out.append("")
    if "bulk" in cpu:
        a_j, _, s_j = cpu["bulk"]
        mb = (rounds + 1) * nbytes / 1e6  # through the tunnel; the source served twice that
        out.append(
            f"- bulk: Airlock {a_j / hz / mb * 1e3:.2f} ms per MB tunnelled "
            f"({a_j / hz:.2f} s for {mb:,.0f} MB); the byte source "
            f"{s_j / hz / (2 * mb) * 1e3:.2f} ms per MB sent (both paths)."
        )
    for c in concs:
        if f"c{c}" not in cpu:
            continue
        a_j, m_j, _ = cpu[f"c{c}"]
        via = runs[c].get("proxy", {}).get("sent", 0)
        calls = sum(r.get("sent", 0) for r in runs[c].values())
        if via and calls:
            out.append(
                f"- c={c}: Airlock {a_j / hz / via * 1e6:,.0f} µs per request through it; "
                f"the mock {m_j / hz / calls * 1e6:,.0f} µs per request of either path."
            )
    out.append("")

    names = ["bulk"] + [f"c{c}" for c in concs]
    errors = sum(r.get("errors", 0) for r in bulk.values())
    errors += sum(r.get("errors", 0) for c in concs for r in runs[c].values())
    rows, down = ledger(m["ledger"])
    out.append(
        "Other processes' CPU while measuring, % of one core (over "
        f"{fmax}% is repeated once after waiting for quiet): "
        + ", ".join(f"{n} {fr.get(n, '?')}" for n in names)
        + f". Errors: {errors}. Ledger: {rows}; the tunnels carried {down:,} bytes down "
        "(the smoke test's included)."
    )
    if m.get("quick"):
        out.append("")
        out.append("**BENCH_QUICK run: not for quoting.**")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(table_command(__doc__, cmd_report))

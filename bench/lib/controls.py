"""The report of bench/controls: the cost of budgets, rate limits and loop guard with
memory counters, with Redis counters, and without controls.

    controls.py RESULTS_DIR      the markdown report on stdout

Standard library only; shares its helpers with report.py.
"""

import glob
import os
import statistics
import sys

from report import best_rate, fmt_ms, foreign, jsonl, meta, oha_step, rate_runs, table_command, verdict

VARIANTS = ("none", "memory", "redis")
PATHS = ("direct",) + VARIANTS
LABEL = {
    "direct": "direct (mock)",
    "none": "Airlock, no controls",
    "memory": "controls, memory counters",
    "redis": "controls, Redis counters",
}


def env(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            if key:
                out[key] = value
    return out


def cmd_report(results):
    m = meta(results)
    chk = env(os.path.join(results, "checks.env"))
    fr = foreign(results)
    fmax = int(m.get("foreign_max", 15))
    rounds = [
        jsonl(f)
        for f in sorted(glob.glob(os.path.join(results, "c1-*.jsonl")))
    ]

    def ms(rnd, path, key):
        v = rnd.get(path, {}).get(key)
        return None if v is None else v / 1000.0

    def med(path, key):
        vals = [ms(r, path, key) for r in rounds]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def med_added(path, key):
        vals = [
            ms(r, path, key) - ms(r, "direct", key)
            for r in rounds
            if ms(r, path, key) is not None and ms(r, "direct", key) is not None
        ]
        return (statistics.median(vals), min(vals), max(vals)) if vals else (None, None, None)

    rates = m.get("rates", "").split()
    runs, oha_sent = rate_runs(results, VARIANTS) if rates else ({v: {} for v in VARIANTS}, {v: 0 for v in VARIANTS})
    best = {v: best_rate(runs[v]) for v in VARIANTS}

    lines = []
    w = lines.append
    row = lambda label, cells: w(f"| {label} | " + " | ".join(cells) + " |")  # noqa: E731

    w(f"# Airlock controls benchmark — {m['date']}")
    w("")
    w(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. "
        f"Load average before: {m['load_before']} ({m['quiet']}); after: {m['load_after']}."
    )
    w(
        f"Airlock {m['airlock_rev']} (release), three instances, each with its own SQLite "
        f"ledger, all forwarding to the same mock; Redis {chk.get('redis_version', '?')} "
        f"(private, no persistence, loopback); oha {m.get('oha') or 'not used'}. "
        "Load generator, mock, Redis and the three Airlocks share the cores."
    )
    w("")
    w(
        "Controls on (memory and Redis): `budget: {usd_per_day: 1000000}`, "
        "`limits: {requests_per_minute: 100000000, tokens_per_minute: 100000000000}`, "
        "`guards: {loops: {identical_calls: 100000000, window: 60s}}`, price `mock/bench` "
        "$1 / $2 per 1M tokens in, out: every call is estimated, fingerprinted, reserved, "
        "rate- and loop-counted and settled, and never refused."
    )
    if m.get("quick"):
        w("")
        w("**BENCH_QUICK run: short samples, not for quoting.**")
    w("")
    n_rounds = len(rounds)
    w(
        f"Concurrency 1, {m['c1_requests']} requests per path per round after "
        f"{m['c1_warmup']} warm-up ones, over one keep-alive connection per path, interleaved "
        f"(request i to path i mod 4); {n_rounds} round(s), the median of the rounds shown "
        "(every round in the details below). Added = path − direct, same round."
    )
    w("")
    w("| | " + " | ".join(LABEL[p] for p in PATHS) + " |")
    w("|---|" + "---|" * len(PATHS))
    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        cells = [fmt_ms(med("direct", key), 3)]
        for v in VARIANTS:
            a, lo, hi = med_added(v, key)
            spread = f", rounds {lo:+.3f}…{hi:+.3f}" if n_rounds > 1 else ""
            cells.append(f"{fmt_ms(med(v, key), 3)} (+{a:.3f}{spread})" if a is not None else "n/a")
        row(f"c=1 latency {label}, ms (added)", cells)
    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        base = med("none", key)
        cells = ["", "1.00×"]
        for v in ("memory", "redis"):
            x = med(v, key)
            cells.append(f"{x / base:.2f}×" if x and base else "n/a")
        row(f"ratio to no controls, latency {label}", cells)
    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        base = med_added("none", key)[0]
        cells = ["", "1.00×"]
        for v in ("memory", "redis"):
            x = med_added(v, key)[0]
            cells.append(f"{x / base:.2f}×" if x is not None and base else "n/a")
        row(f"ratio to no controls, added {label}", cells)
    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        base = med("none", key)
        cells = ["", ""]
        for v in ("memory", "redis"):
            vals = [
                ms(r, v, key) - ms(r, "none", key)
                for r in rounds
                if ms(r, v, key) is not None and ms(r, "none", key) is not None
            ]
            cells.append(f"+{statistics.median(vals) * 1000:.0f} µs" if vals else "n/a")
        row(f"cost of the controls (− no controls), {label}", cells)
    if rates:
        def rate_cell(v):
            b = best[v]
            if b is None:
                return "none held"
            s = runs[v][b]
            busy = fr.get(f"step_{v}_{b}", 0)
            return f"{b:,} (p99 {fmt_ms(s[3])} ms)" + (f" ⚠ others {busy}%" if busy > fmax else "")

        row(
            f"highest fixed rate held, req/s (p99 < {m['p99_ms']} ms, c={m['rate_conc']}, "
            f"{m['step_secs']} s steps)",
            [""] + [rate_cell(v) for v in VARIANTS],
        )
        row(
            "… relative to no controls",
            ["", "1.00×"]
            + [
                f"{best[v] / best['none']:.2f}×" if best[v] and best["none"] else "n/a"
                for v in ("memory", "redis")
            ],
        )
    row(
        "Airlock RSS, MiB: 2 s after start / at the end (VmHWM)",
        [""]
        + [
            f"{int(chk[f'rss_idle_kib_{v}']) / 1024:.1f} / {int(chk[f'rss_after_kib_{v}']) / 1024:.1f} "
            f"({int(chk[f'rss_hwm_kib_{v}']) / 1024:.1f})"
            for v in VARIANTS
        ],
    )
    w("")

    # The aim.
    aim = float(m["aim_p99_ms"])
    a, lo, hi = med_added("redis", "p99_us")
    w("Aim:")
    if a is not None:
        worst = f"; worst round {hi:.3f} ms" if n_rounds > 1 else ""
        w(
            f"- with Redis counters, added p99 < {aim:g} ms (c=1): {a:.3f} ms{worst} — "
            f"{verdict(hi < aim)}"
        )
    w("")

    c1_busy = [v for k, v in fr.items() if k.startswith("c1_")]
    steps = [v for k, v in fr.items() if k.startswith("step_")]
    w(
        "Other processes' CPU while measuring, % of one core (a measurement over "
        f"{fmax}% is repeated once after waiting for quiet): c=1 rounds "
        f"{', '.join(str(fr[k]) for k in sorted(fr) if k.startswith('c1_')) or '?'}"
        + (f"; rate steps at most {max(steps)}" if steps else "")
        + "."
        + (" ⚠ some measurement stayed disturbed." if any(x > fmax for x in c1_busy + steps) else "")
    )
    w("")

    # Checks: one ledger row per request, none refused; Redis really used.
    w("Checks:")
    probe_files = [
        f
        for pattern in ("smoke.jsonl", "c1-*.jsonl", "c1-*.jsonl.try1")
        for f in glob.glob(os.path.join(results, pattern))
    ]
    for v in VARIANTS:
        sent = sum(jsonl(f).get(v, {}).get("sent", 0) for f in probe_files) + oha_sent.get(v, 0)
        rows = int(chk.get(f"ledger_rows_{v}", -1))
        denied = int(chk.get(f"ledger_denied_{v}", -1))
        usd = int(chk.get(f"ledger_cost_nanos_{v}", 0)) / 1e9
        fails = chk.get(f"counter_failures_{v}", "?")
        same = "one per request" if rows == sent else "**they differ**"
        w(
            f"- {v}: {rows:,} ledger rows for {sent:,} requests sent ({same}); "
            f"**{denied} refused**; outcomes `{chk.get(f'ledger_outcomes_{v}', '?')}`; "
            f"cost ${usd:.6f}; counter failures {fails}."
        )
    stats = chk.get("redis_commandstats", "")
    pretty = ", ".join(
        f"{name} ×{int(calls):,} ({float(usec):.1f} µs/call)"
        for name, calls, usec in (s.split() for s in stats.split(";") if s.strip())
    )
    w(f"- Redis: {chk.get('redis_dbsize', '?')} keys at the end; commands served: {pretty or 'none'}.")
    w("")

    # Every round.
    w("<details><summary>Every c=1 round (ms: p50 / p90 / p99 / max)</summary>")
    w("")
    w("| round | " + " | ".join(PATHS) + " |")
    w("|---|" + "---|" * len(PATHS))
    for i, r in enumerate(rounds, 1):
        busy = fr.get(f"c1_{i}", 0)
        cells = []
        for p in PATHS:
            x = r.get(p, {})
            cells.append(
                " / ".join(fmt_ms(None if x.get(k) is None else x[k] / 1000, 3)
                           for k in ("p50_us", "p90_us", "p99_us", "max_us"))
                + (f" ({x['errors']} errors)" if x.get("errors") else "")
            )
        w(f"| {i}{' ⚠' if busy > fmax else ''} | " + " | ".join(cells) + " |")
    w("</details>")
    w("")
    if rates:
        w("<details><summary>Every fixed-rate step (achieved req/s / p99 ms)</summary>")
        w("")
        all_rates = sorted({r for v in VARIANTS for r in runs[v]})
        w("| target req/s | " + " | ".join(VARIANTS) + " |")
        w("|---|" + "---|" * len(VARIANTS))
        for rate in all_rates:
            cells = []
            for v in VARIANTS:
                s = runs[v].get(rate)
                if s is None:
                    cells.append("")
                    continue
                busy = fr.get(f"step_{v}_{rate}", 0)
                mark = ("" if s[0] else " ✗") + (f" ⚠ others {busy}%" if busy > fmax else "")
                first = os.path.join(results, "rates", f"{v}-{rate}.json.miss")
                if os.path.exists(first):
                    f = oha_step(first, float(rate), float(m["p99_ms"]))
                    mark += f" (2nd try; 1st: {f[1]:,.0f} / {fmt_ms(f[3])} ✗)"
                cells.append(f"{s[1]:,.0f} / {fmt_ms(s[3])}{mark}")
            w(f"| {rate:,} | " + " | ".join(cells) + " |")
        w("")
        w(
            "✗ = not held (errors, under 97% of the target answered, or p99 over the bound)"
            + ("; a missed step is run once more and counts as missed only if it misses again."
               if m.get("confirm_miss") else ".")
        )
        w("</details>")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(table_command(__doc__, cmd_report))

"""Helpers of bench/run: judging one fixed-rate step, and the final table.

    report.py check-errors FILE.jsonl      exit 1 if any probe target had errors
    report.py step OHA.json RATE P99_MS    'held ...' or 'missed ...'
    report.py report RESULTS_DIR           the markdown report on stdout

Standard library only.
"""

import glob
import json
import os
import re
import sys

PATHS = ("direct", "nginx", "airlock")
# A step is held when this share of the target rate was answered with 2xx.
ACHIEVED_SHARE = 0.97


def jsonl(path):
    with open(path) as f:
        return {row["target"]: row for row in map(json.loads, filter(str.strip, f))}


def oha_step(path, rate, p99_ms):
    """(held, achieved_rps, p50_ms, p99_ms, ok, errors) for one oha JSON file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False, 0.0, None, None, 0, 1
    summary = data.get("summary", {})
    elapsed = summary.get("total") or 0.0
    codes = data.get("statusCodeDistribution") or {}
    ok = sum(n for code, n in codes.items() if str(code).startswith("2"))
    bad = sum(n for code, n in codes.items() if not str(code).startswith("2"))
    errors = bad + sum((data.get("errorDistribution") or {}).values())
    pct = data.get("latencyPercentiles") or {}
    p50 = pct.get("p50")
    p99 = pct.get("p99")
    achieved = ok / elapsed if elapsed else 0.0
    p50 = p50 * 1e3 if p50 is not None else None
    p99 = p99 * 1e3 if p99 is not None else None
    held = (
        errors == 0
        and achieved >= ACHIEVED_SHARE * rate
        and p99 is not None
        and p99 < p99_ms
    )
    return held, achieved, p50, p99, ok, errors


def fmt_ms(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def cmd_step(path, rate, p99_ms):
    held, achieved, p50, p99, ok, errors = oha_step(path, float(rate), float(p99_ms))
    word = "held" if held else "missed"
    print(
        f"{word}: {achieved:.0f}/s achieved, p50 {fmt_ms(p50)} ms, "
        f"p99 {fmt_ms(p99)} ms, {errors} errors"
    )


def cmd_check_errors(path):
    rows = jsonl(path)
    bad = [t for t, r in rows.items() if r.get("errors") or not r.get("n")]
    if bad:
        print("failed:", ", ".join(bad), file=sys.stderr)
        return 1
    return 0


def meta(results):
    out = {}
    with open(os.path.join(results, "meta.env")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            out[key] = value
    return out


def foreign(results):
    """measurement name -> % of one core used by other processes meanwhile."""
    out = {}
    try:
        with open(os.path.join(results, "foreign.env")) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if value:
                    out[key] = int(value)
    except OSError:
        pass
    return out


def rate_runs(results, paths=PATHS):
    """path -> {rate: (held, achieved, p50, p99, ok)}; also requests sent per path."""
    p99_ms = float(meta(results)["p99_ms"])
    runs = {p: {} for p in paths}
    sent = {p: 0 for p in paths}
    for path in glob.glob(os.path.join(results, "rates", "*.json*")):
        m = re.fullmatch(
            r"(warmup-)?(\w+?)(?:-(\d+))?\.json((?:\.miss)?(?:\.try1)?)", os.path.basename(path)
        )
        if not m or m.group(2) not in runs:
            continue
        name = m.group(2)
        held, achieved, p50, p99, ok, errors = oha_step(path, float(m.group(3) or 0), p99_ms)
        sent[name] += ok + errors
        if m.group(1) or m.group(4):
            continue
        runs[name][int(m.group(3))] = (held, achieved, p50, p99, ok)
    return runs, sent


def best_rate(steps):
    held = [r for r, s in steps.items() if s[0]]
    return max(held) if held else None


def us_to_ms(x):
    return None if x is None else x / 1000.0


def cell(value, base, digits=2, unit=""):
    """`value (+added)` against the direct path."""
    if value is None:
        return "n/a"
    if base is None:
        return f"{value:.{digits}f}{unit}"
    return f"{value:.{digits}f}{unit} (+{value - base:.{digits}f})".replace("+-", "−")


def added(rows, path, key):
    a, d = rows.get(path, {}).get(key), rows.get("direct", {}).get(key)
    return None if a is None or d is None else a - d


def mib(kib):
    return f"{int(kib) / 1024:.1f} MiB"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def cmd_report(results):
    m = meta(results)
    c1 = jsonl(os.path.join(results, "c1.jsonl"))
    delay = jsonl(os.path.join(results, "delay.jsonl"))
    stream = jsonl(os.path.join(results, "stream.jsonl"))
    runs, oha_sent = rate_runs(results)
    best = {p: best_rate(runs[p]) for p in PATHS}

    def row(label, values):
        return f"| {label} | " + " | ".join(values) + " |"

    def per_path(fn):
        return [fn(p) for p in PATHS]

    fr = foreign(results)
    fmax = int(m.get("foreign_max", 15))

    def disturbed(name):
        busy = fr.get(name, 0)
        return f" ⚠ others used {busy}% of a core" if busy > fmax else ""

    lines = []
    w = lines.append
    w(f"# Airlock benchmark — {m['date']}")
    w("")
    w(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. "
        f"Load average before: {m['load_before']} ({m['quiet']}); after: {m['load_after']}."
    )
    w(
        f"nginx {m['nginx']} with {m['nginx_workers']} worker processes; Airlock "
        f"{m['airlock_rev']} (release, {m['airlock_threads']} threads at start: "
        f"{m['nproc']} tokio workers + ledger writer + others), metering on, SQLite ledger; "
        f"oha {m['oha']}. Load generator, mock, proxy all share the {m['nproc']} cores."
    )
    if m.get("quick"):
        w("")
        w("**BENCH_QUICK run: short samples, not for quoting.**")
    w("")
    w("Added = this path minus direct-to-mock, measured in the same run, requests interleaved.")
    w("")
    w("| | direct (mock) | nginx | Airlock | aim |")
    w("|---|---|---|---|---|")

    def lat(rows, key, p):
        return us_to_ms(rows.get(p, {}).get(key))

    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        base = lat(c1, key, "direct")
        w(
            row(
                f"c=1 latency {label}, ms (added), {m['c1_requests']} req/path" + disturbed("c1"),
                [cell(lat(c1, key, "direct"), None, 3)]
                + [cell(lat(c1, key, p), base, 3) for p in ("nginx", "airlock")]
                + ["added p99 < 1 ms" if label == "p99" else ""],
            )
        )
    for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
        base = lat(delay, key, "direct")
        w(
            row(
                f"upstream delay {m['delay_ms']} ms, c={m['delay_conc']}: {label}, ms (added)"
                + disturbed("delay"),
                [cell(lat(delay, key, "direct"), None, 2)]
                + [cell(lat(delay, key, p), base, 2) for p in ("nginx", "airlock")]
                + [""],
            )
        )

    def rate_cell(p):
        b = best[p]
        if b is None:
            return "none held"
        s = runs[p][b]
        return f"{b:,} (p99 {fmt_ms(s[3])} ms)" + disturbed(f"step_{p}_{b}")

    ratio = (
        best["airlock"] / best["nginx"]
        if best["airlock"] and best["nginx"]
        else None
    )
    top = max(int(r) for r in m["rates"].split())
    w(
        row(
            f"highest fixed rate held, req/s (p99 < {m['p99_ms']} ms, c={m['rate_conc']})",
            [rate_cell(p) + (" (top step)" if best[p] == top else "") for p in PATHS]
            + ["≥ 0.8× nginx"],
        )
    )
    w(
        row(
            "… relative to nginx",
            [
                f"{best['direct'] / best['nginx']:.2f}×" if best["direct"] and best["nginx"] else "n/a",
                "1.00×",
                f"{ratio:.2f}×" if ratio else "n/a",
                "",
            ],
        )
    )
    for key, label, digits in (
        ("ttft_mean_us", "stream TTFT mean", 2),
        ("gap_mean_us", "gap between deltas, mean", 3),
        ("gap_p99_us", "gap between deltas, p99", 2),
    ):
        base = lat(stream, key, "direct")
        aim = "added < 1 ms" if key == "ttft_mean_us" else ""
        w(
            row(
                f"{label}, ms (added), {m['streams']} streams × {m['stream_words']} deltas × "
                f"{m['stream_chunk_ms']} ms" + disturbed("stream"),
                [cell(lat(stream, key, "direct"), None, digits)]
                + [cell(lat(stream, key, p), base, digits) for p in ("nginx", "airlock")]
                + [aim],
            )
        )
    w(
        row(
            "Airlock RSS: idle / peak under load / after",
            ["", "", f"{mib(m['rss_idle_kib'])} / {mib(m['rss_peak_kib'])} / "
             f"{mib(m['rss_after_kib'])} (VmHWM {mib(m['rss_hwm_kib'])})", ""],
        )
    )
    w("")

    # Aims.
    add_p99 = added(c1, "airlock", "p99_us")
    add_ttft = added(stream, "airlock", "ttft_mean_us")
    steps = [v for k, v in fr.items() if k.startswith("step_")]
    w(
        "Other processes' CPU while measuring, % of one core (a measurement over "
        f"{m.get('foreign_max', '?')}% is repeated once after waiting for quiet): "
        f"c=1 {fr.get('c1', '?')}, delay {fr.get('delay', '?')}, streams {fr.get('stream', '?')}, "
        f"rate steps at most {max(steps) if steps else '?'}."
    )
    w("")
    w("Aims:")
    if ratio is not None:
        w(f"- throughput ≥ 0.8× nginx: {ratio:.2f}× — {verdict(ratio >= 0.8)}")
    else:
        w("- throughput ≥ 0.8× nginx: no rate held by both — **not measured**")
    if add_p99 is not None:
        w(f"- added p99 < 1 ms (c=1): {add_p99 / 1000:.3f} ms — {verdict(add_p99 < 1000)}")
    if add_ttft is not None:
        w(f"- added TTFT < 1 ms: {add_ttft / 1000:.3f} ms — {verdict(add_ttft < 1000)}")
    w("")

    # Metering check: every request sent to Airlock is a ledger row.
    probe_files = [
        os.path.join(results, f"{name}.jsonl{suffix}")
        for name in ("smoke", "c1", "delay", "stream")
        for suffix in ("", ".try1")
    ]
    probe_sent = sum(
        jsonl(f).get("airlock", {}).get("sent", 0) for f in probe_files if os.path.exists(f)
    )
    expected = probe_sent + oha_sent["airlock"]
    rows = int(m["ledger_rows"])
    w(
        f"Ledger: {rows} event rows written for {expected} requests sent to Airlock "
        + ("(metering on for every call)." if rows == expected else "(**they differ**).")
    )
    w("")

    # Rate steps in full.
    w("<details><summary>Every fixed-rate step (achieved req/s, p99 ms)</summary>")
    w("")
    rates = sorted({r for p in PATHS for r in runs[p]})
    w("| target req/s | " + " | ".join(PATHS) + " |")
    w("|---|" + "---|" * len(PATHS))
    for r in rates:
        cells = []
        for p in PATHS:
            s = runs[p].get(r)
            if s is None:
                cells.append("")
            else:
                mark = "" if s[0] else " ✗"
                mark += disturbed(f"step_{p}_{r}")
                cells.append(f"{s[1]:,.0f} / {fmt_ms(s[3])}{mark}")
        w(f"| {r:,} | " + " | ".join(cells) + " |")
    w("")
    w("✗ = not held (errors, under 97% of the target answered, or p99 over the bound).")
    w("</details>")
    w("")

    # Raw probe figures.
    w("<details><summary>Probe figures (µs)</summary>")
    w("")
    w("```")
    for name in ("c1", "delay", "stream"):
        for p, r in jsonl(os.path.join(results, f"{name}.jsonl")).items():
            w(f"{name} {json.dumps(r)}")
    w("```")
    w("</details>")
    print("\n".join(lines))


def comparison_rows(scope, rate_label, mark, direct, through, stats, digits):
    """Table rows comparing one probe target with another: the rate, then each latency
    statistic (`p50` reads the probe's `p50_us`) in ms with `digits` decimals, as ratio
    and difference."""
    rows = []
    dr, tr = direct.get("rps"), through.get("rps")
    if dr and tr:
        rows.append(f"| {scope}: {rate_label}{mark} | {dr:,.0f} | {tr:,.0f} | {tr / dr:.2f}× | |")
    for stat in stats:
        dv, tv = direct.get(f"{stat}_us"), through.get(f"{stat}_us")
        if dv is None or tv is None:
            continue
        rows.append(
            f"| {scope}: latency {stat}, ms{mark} | {dv / 1e3:.{digits}f} | {tv / 1e3:.{digits}f} | "
            f"{tv / dv:.2f}× | {(tv - dv) / 1e3:+.{digits}f} |"
        )
    return rows


def table_command(doc, report, argv=None):
    """The command line of a table script: `python3 lib/X.py RESULT_DIR` prints the table."""
    argv = sys.argv if argv is None else argv
    if len(argv) == 2:
        report(argv[1])
        return 0
    print(doc, file=sys.stderr)
    return 2


def main(argv):
    if len(argv) >= 2 and argv[1] == "step" and len(argv) == 5:
        cmd_step(argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 3 and argv[1] == "check-errors":
        return cmd_check_errors(argv[2])
    if len(argv) == 3 and argv[1] == "report":
        cmd_report(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

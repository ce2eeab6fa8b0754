"""The measurement and the report of bench/intercept.

    intercept.py measure --requests N --key KEY --direct URL --base-url URL --proxy URL --ca FILE
                                    JSON of per-path latency statistics on stdout (needs httpx2)
    intercept.py report RESULTS_DIR the markdown report on stdout (standard library only)
"""

import argparse
import json
import os
import statistics
import sys
import time

BODY = {"model": "bench", "messages": [{"role": "user", "content": "hello, benchmark"}], "max_tokens": 16}


def measure(argv):
    import httpx2

    p = argparse.ArgumentParser()
    for name in ("--key", "--direct", "--base-url", "--proxy", "--ca"):
        p.add_argument(name, required=True)
    p.add_argument("--requests", type=int, required=True)
    a = p.parse_args(argv)
    auth = {"authorization": f"Bearer {a.key}"}
    clients = {
        "direct": httpx2.Client(base_url=a.direct, trust_env=False, timeout=10),
        "base_url": httpx2.Client(base_url=a.base_url, headers=auth, trust_env=False, timeout=10),
        # The agent's own provider key would go here; Airlock swaps in the configured one.
        "intercepted": httpx2.Client(
            base_url="https://api.openai.test/v1", proxy=a.proxy, verify=a.ca,
            headers={"authorization": "Bearer sk-agent"}, trust_env=False, timeout=10,
        ),
    }
    times = {name: [] for name in clients}
    errors = {name: 0 for name in clients}
    warmup = a.requests // 10
    for i in range(warmup + a.requests):
        for name, client in clients.items():
            start = time.perf_counter()
            res = client.post("/chat/completions", json=BODY)
            took = time.perf_counter() - start
            if res.status_code != 200 or b'"usage"' not in res.content:
                errors[name] += 1
            elif i >= warmup:
                times[name].append(took)
    out = {}
    for name, ts in times.items():
        ts.sort()
        q = lambda f: ts[min(len(ts) - 1, int(f * len(ts)))] * 1e6 if ts else None
        out[name] = {"sent": len(ts) + errors[name], "errors": errors[name], "p50_us": q(0.5),
                     "p90_us": q(0.9), "p99_us": q(0.99), "mean_us": statistics.fmean(ts) * 1e6 if ts else None}
    print(json.dumps(out))


def report(results):
    sys.path.insert(0, os.path.dirname(__file__))
    from report import comparison_rows, foreign, meta

    m = meta(results)
    fr = foreign(results)
    with open(os.path.join(results, "run.json")) as f:
        runs = json.load(f)
    mark = " ⚠" if fr.get("run", 0) > int(m.get("foreign_max", 15)) else ""
    out = [f"# Airlock interception benchmark — {m['date']}", ""]
    out.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. Load average before: "
        f"{m['load_before']} ({m['quiet']}). Airlock {m['airlock_rev']} (release, SQLite ledger, `log: warn`) "
        f"in front of airlock-mock; client: Python {m['python']} httpx2, one keep-alive connection per path."
    )
    out.append("")
    out.append(
        f"One small `POST /chat/completions`, {m['requests']} measured calls per path after "
        f"{int(m['requests']) // 10} warm-up ones, interleaved. *base URL*: to Airlock's "
        "`/v1/chat/completions` with the agent's key. *intercepted*: to `https://api.openai.test/v1` "
        "through Airlock's egress proxy (`HTTPS_PROXY` with the key as password); Airlock ends the TLS "
        "with a certificate from its CA and runs the request through the same pipeline. Both reach the "
        "same mock with the same body; times include the Python client's own work, the same on every path."
    )
    out.append("")
    out.append("| | base URL | intercepted | intercepted / base URL | added |")
    out.append("|---|---|---|---|---|")
    out += comparison_rows("c=1", "calls/s", mark, runs["base_url"], runs["intercepted"], ("p50", "p90", "p99", "mean"), 3)
    d, b = runs["direct"], runs["base_url"]
    if d.get("p50_us") and b.get("p50_us"):
        out.append("")
        out.append(
            f"For scale: straight to the mock {d['p50_us'] / 1e3:.3f} ms at p50; through the base URL "
            f"{b['p50_us'] / 1e3:.3f} ms ({b['p50_us'] / d['p50_us']:.2f}×)."
        )
    out.append("")
    out.append(
        f"Other processes' CPU while measuring: {fr.get('run', '?')}% of one core. Errors: "
        + ", ".join(f"{k} {v['errors']}" for k, v in runs.items()) + "."
    )
    if m.get("quick"):
        out += ["", "**BENCH_QUICK run: not for quoting.**"]
    print("\n".join(out))


def main(argv):
    if len(argv) >= 2 and argv[1] == "measure":
        measure(argv[2:])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        report(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

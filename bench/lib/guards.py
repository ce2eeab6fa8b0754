"""The prompts and the report of bench/guards: what the content guards add to an LLM call.

    guards.py prompt clean|secrets   a chat request with a 100 KB prompt on stdout
    guards.py report RESULTS_DIR     the markdown report on stdout

The prompt is the kind an agent sends: instructions, a pasted log, code, a JSON tool result
and prose with numbers, dates, URLs and words like "key" and "token" in their ordinary
sense — made by a seeded generator, the same bytes every run. `secrets` is the same prompt
with a fake AWS key, an email address and a card number pasted in.

Standard library only; shares its helpers with report.py.
"""

import json
import os
import random
import sys

from report import comparison_rows, foreign, jsonl, meta

SIZE = 100_000
WORDS = (
    "the a to of and in for is on that with as this by be it from at or are you your we can "
    "request response service deploy cluster budget token tokens key keys value config order "
    "customer invoice report build release latency retry cache queue worker agent model tool "
    "prompt summary table column field record error warning timeout upstream password reset "
    "policy access team account payment shipping region version update migrate schema index"
).split()


def sentence(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 99_999)))
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), f"2026-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}")
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), f"https://docs.example.com/{rng.choice(WORDS)}/{rng.randint(1, 400)}")
    return " ".join(words).capitalize() + "."


def log_line(rng):
    return (
        f"2026-11-{rng.randint(1, 28):02}T{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:{rng.randint(0, 59):02}Z "
        f"{rng.choice(['INFO', 'WARN', 'ERROR'])} {rng.choice(WORDS)}-{rng.randint(1, 9)} "
        f"request_id={rng.getrandbits(64):016x} status={rng.choice([200, 201, 404, 429, 503])} "
        f"duration_ms={rng.randint(1, 4000)} bytes={rng.randint(100, 90_000)}"
    )


def code(rng):
    name = rng.choice(WORDS)
    return (
        f"def handle_{name}(request, retries={rng.randint(1, 5)}):\n"
        f"    token_budget = request.get('max_tokens', {rng.randint(256, 4096)})\n"
        f"    key = f\"{{request['tenant']}}:{name}\"\n"
        f"    return cache.get(key) or fetch(key, timeout={rng.randint(1, 30)})\n"
    )


def tool_result(rng):
    rows = [
        {"id": rng.randint(1000, 99_999), "sku": f"SKU-{rng.randint(10_000, 99_999)}", "qty": rng.randint(1, 40),
         "price": round(rng.uniform(1, 900), 2), "status": rng.choice(["shipped", "pending", "returned"])}
        for _ in range(rng.randint(3, 8))
    ]
    return json.dumps({"orders": rows, "page": rng.randint(1, 9)})


def prompt_text():
    rng = random.Random(20261127)
    parts = []
    size = 0
    while size < SIZE:
        kind = rng.random()
        if kind < 0.5:
            part = " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
        elif kind < 0.7:
            part = "\n".join(log_line(rng) for _ in range(rng.randint(3, 10)))
        elif kind < 0.85:
            part = code(rng)
        else:
            part = tool_result(rng)
        parts.append(part)
        size += len(part) + 2
    return "\n\n".join(parts)[:SIZE]


SECRETS = [
    "my key is AKIAIOSFODNN7EXAMPLE if that matters",
    "send the summary to jane.doe@example.com tonight",
    "they paid with 4111 1111 1111 1111 last week",
]


def cmd_prompt(which):
    text = prompt_text()
    if which == "secrets":
        step = len(text) // (len(SECRETS) + 1)
        for i, secret in reversed(list(enumerate(SECRETS, 1))):
            at = text.rfind(" ", 0, i * step)
            text = f"{text[:at]} {secret} {text[at:]}"
    body = {
        "model": "mock/bench",
        "max_tokens": 16,
        "messages": [
            {"role": "system", "content": "You are a support assistant. Answer briefly."},
            {"role": "user", "content": text},
        ],
    }
    print(json.dumps(body))


def cmd_report(results):
    m = meta(results)
    fr = foreign(results)
    fmax = int(m.get("foreign_max", 15))
    hz = float(m.get("hz", 100))
    prompts = ("clean", "secrets")
    runs = {p: jsonl(os.path.join(results, f"{p}.jsonl")) for p in prompts}
    cpu = {}
    with open(os.path.join(results, "cpu.txt")) as f:
        for line in f:  # a repeated measurement's line comes last and wins
            name, jiffies = line.split()
            cpu[name] = int(jiffies)

    out = [f"# Airlock content guards benchmark — {m['date']}", ""]
    out.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}. "
        f"Load average before: {m['load_before']} ({m['quiet']})."
    )
    out.append(
        f"Airlock {m['airlock_rev']} (release, SQLite ledger, `log: warn`) in front of airlock-mock; "
        "the probe, Airlock and the mock share the cores."
    )
    out.append("")
    out.append(
        f"`POST /v1/chat/completions` with a {int(m['bytes']):,}-byte body (a 100 KB user message: "
        "prose, logs, code, JSON), "
        f"{m['requests']} measured calls per path after {m['warmup']} warm-up ones, interleaved over "
        "one keep-alive connection per path, concurrency 1. *plain*: an agent without DLP rules; "
        "*guarded*: an agent with `guards.dlp.default_action: redact` (every built-in detector). "
        "The clean prompt is scanned and nothing is found; the other carries a fake AWS key, an "
        "email address and a card number, which are redacted before the mock sees them."
    )
    out.append("")
    out.append("| | plain | guarded | guarded / plain | added |")
    out.append("|---|---|---|---|---|")
    for p in prompts:
        plain, guarded = runs[p].get("plain", {}), runs[p].get("guarded", {})
        mark = " ⚠" if fr.get(p, 0) > fmax else ""
        out += comparison_rows(f"{p} prompt", "calls/s", mark, plain, guarded, ("p50", "p99", "mean"), 3)
    out.append("")
    direct = runs["clean"].get("direct", {})
    plain = runs["clean"].get("plain", {})
    if direct.get("p50_us") and plain.get("p50_us"):
        out.append(
            f"For scale: the same clean call straight to the mock takes {direct['p50_us'] / 1e3:.3f} ms at p50; "
            f"through Airlock without DLP {plain['p50_us'] / 1e3:.3f} ms."
        )
    calls = {p: sum(r.get("sent", 0) for name, r in runs[p].items() if name != "direct") for p in prompts}
    lines = [f"{p} {cpu[p] / hz / calls[p] * 1e6:,.0f} µs" for p in prompts if p in cpu and calls[p]]
    if lines:
        out.append("")
        out.append("Airlock CPU per call through it (both agents, warm-up included): " + ", ".join(lines) + ".")
    out.append("")
    out.append(
        "Other processes' CPU while measuring, % of one core (over "
        f"{fmax}% is repeated once after waiting for quiet): "
        + ", ".join(f"{p} {fr.get(p, '?')}" for p in prompts)
        + ". Errors: "
        + ", ".join(f"{p} {sum(r.get('errors', 0) for r in runs[p].values())}" for p in prompts)
        + "."
    )
    if m.get("quick"):
        out += ["", "**BENCH_QUICK run: not for quoting.**"]
    print("\n".join(out))


def main(argv):
    if len(argv) == 3 and argv[1] == "prompt" and argv[2] in ("clean", "secrets"):
        cmd_prompt(argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        cmd_report(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# bench/lib/common.sh — helpers shared by bench/run, controls, mcp and egress (sourced, not run).
#
# The sourcing script sets HERE (the bench/ directory) and `set -euo pipefail` first.
# Globals it may set before calling: QUIET_WAIT, QUIET_BUDGET (wait_quiet), R (results dir,
# for measured), KEY, BODY, RATE_CONC (oha_run).

ROOT=$(dirname "$HERE")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release
TOOLS=${AIRLOCK_BENCH_TOOLS:-$HOME/.cache/airlock-bench-tools}
OHA=$TOOLS/bin/oha
REPORT="python3 $HERE/lib/report.py"
PROBE=$BIN/airlock-bench-probe

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
ensure_nginx() {
    command -v nginx >/dev/null && return
    log "installing nginx from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    command -v nginx >/dev/null || die "nginx did not install"
}

ensure_oha() {
    [[ -x $OHA ]] && return
    log "installing oha from crates.io into $TOOLS (once; takes a few minutes)"
    cargo install oha --locked --root "$TOOLS" >&2
    [[ -x $OHA ]] || die "oha did not install"
}

build_binaries() { # [PACKAGE...]: default airlock, airlock-mock, airlock-bench-probe (each a binary of that name)
    local b pkgs=("$@") args=()
    ((${#pkgs[@]})) || pkgs=(airlock airlock-mock airlock-bench-probe)
    for b in "${pkgs[@]}"; do args+=(-p "$b"); done
    log "building release binaries into $TARGET_DIR"
    (cd "$ROOT" && cargo build --release -q "${args[@]}")
    for b in "${pkgs[@]}"; do
        [[ -x $BIN/$b ]] || die "$BIN/$b missing after the build"
    done
}

airlock_rev() { # what to call the measured source: BENCH_REV, or git's short HEAD (+dirty)
    echo "${BENCH_REV:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty')}"
}

# ---------------------------------------------------------------- quiet machine
cpu_busy_pct() { # over $1 seconds, all cores
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat
    sleep "$1"
    read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
    local total=$(( (b1+b2+b3+b4+b5+b6+b7+b8) - (a1+a2+a3+a4+a5+a6+a7+a8) ))
    local idle=$(( (b4+b5) - (a4+a5) ))
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

QUIET_WAIT=${QUIET_WAIT:-120}
QUIET_BUDGET=${QUIET_BUDGET:-300}
QUIET_LEFT=$QUIET_BUDGET
wait_quiet() { # waits up to QUIET_WAIT seconds, and QUIET_BUDGET in all over the run
    local start=$SECONDS busy pct
    local deadline=$((SECONDS + (QUIET_WAIT < QUIET_LEFT ? QUIET_WAIT : QUIET_LEFT)))
    while :; do
        busy=$(ps -eo comm= | grep -xE 'cargo|rustc|cc1|cc1plus|rust-lld|ld' | sort | uniq -c |
            awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}' || true)
        pct=$(cpu_busy_pct 3)
        if [[ -z $busy && $pct -lt 20 ]]; then
            QUIET="quiet: CPU ${pct}% busy over 3 s, no compiler running"
            QUIET_LEFT=$((QUIET_LEFT - (SECONDS - start)))
            return
        fi
        if (( SECONDS >= deadline )); then
            QUIET="NOT quiet after $((SECONDS - start))s of waiting: CPU ${pct}% busy, compilers: ${busy:-none}"
            log "warning: $QUIET; measuring anyway"
            QUIET_LEFT=$((QUIET_LEFT - (SECONDS - start)))
            return
        fi
        log "machine busy (CPU ${pct}%, compilers: ${busy:-none}); waiting"
        sleep 10
    done
}

# ---------------------------------------------------------------- ports, processes
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

NEXT_PORT=${BENCH_PORT_BASE:-18400}
pick_port() { # VAR: the variable's value if set, else the next free port from NEXT_PORT
    local p
    if [[ ${!1:-} ]]; then return; fi
    for ((p = NEXT_PORT; p < NEXT_PORT + 500; p++)); do
        if ! port_open "$p"; then
            NEXT_PORT=$((p + 1))
            printf -v "$1" '%s' "$p"
            return
        fi
    done
    die "no free port from $NEXT_PORT"
}

PIDS=()
make_work() { # the temp dir WORK, and a trap that stops everything in PIDS on exit
    WORK=$(mktemp -d /tmp/airlock-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    set +e
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ ${BENCH_KEEP:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

wait_port() { # port what
    local i
    for ((i = 0; i < 100; i++)); do
        port_open "$1" && return
        sleep 0.1
    done
    die "$2 did not open port $1 (see $WORK)"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

ledger_rows() { # sqlite file: number of event rows
    python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])' "$1"
}

# ---------------------------------------------------------------- other processes' CPU
# CPU time used by anything but this benchmark (its services, its load generators and
# itself) while a measurement runs, in % of one core. Another engineer's build or test
# run on the same 2 cores would otherwise pass for a slow proxy: a measurement during
# which others used more than FOREIGN_MAX % is repeated once after waiting for quiet.
FOREIGN_MAX=${BENCH_FOREIGN_MAX:-15}
HZ=$(getconf CLK_TCK)
OURS=()
our_pids() {
    OURS=($$ "${PIDS[@]}")
    local pid
    for pid in "${PIDS[@]}"; do OURS+=($(pgrep -P "$pid" || true)); done
}
jiffies_busy() { awk '/^cpu / {print $2 + $3 + $4}' /proc/stat; }
jiffies_ours() {
    local pid sum=0 j
    for pid in "${OURS[@]}"; do
        j=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sum=$((sum + ${j:-0}))
    done
    echo "$sum"
}
cpu_mark() { our_pids; MARK_T=$EPOCHREALTIME MARK_BUSY=$(jiffies_busy) MARK_OURS=$(jiffies_ours); }
cpu_foreign() { # % of one core used by other processes since cpu_mark
    local busy ours
    busy=$(jiffies_busy) ours=$(jiffies_ours)
    awk -v b=$((busy - MARK_BUSY)) -v o=$((ours - MARK_OURS)) -v t0="$MARK_T" -v t1="$EPOCHREALTIME" -v hz="$HZ" \
        'BEGIN { f = 100 * (b - o) / ((t1 - t0) * hz); printf "%d", f < 0 ? 0 : f }'
}

measured() { # NAME OUTPUT FUNCTION [ARGS...]: runs it, once more if others were busy meanwhile
    local name=$1 output=$2 try
    shift 2
    for try in 1 2; do
        # A repeated measurement's first output is kept aside: its requests are in the ledger.
        ((try == 2)) && mv "$output" "$output.try1"
        cpu_mark
        "$@"
        FOREIGN=$(cpu_foreign)
        ((FOREIGN <= FOREIGN_MAX || try == 2)) && break
        log "  other processes used ${FOREIGN}% of a core during $name: waiting for quiet, then once more"
        wait_quiet
    done
    ((FOREIGN > FOREIGN_MAX)) && log "  warning: $name disturbed again (${FOREIGN}% of a core used by others)"
    echo "$name=$FOREIGN" >>"$R/foreign.env"
}

# ---------------------------------------------------------------- fixed-rate steps
oha_run() { # url rate secs out
    "$OHA" --no-tui --output-format json -m POST \
        -H "authorization: Bearer $KEY" -H "content-type: application/json" -d "$BODY" \
        -c "$RATE_CONC" -q "$2" -z "${3}s" --latency-correction -w \
        "$1" >"$4" 2>"$4.err" || true
}

step() { # path rate: one fixed-rate step of STEP_SECS against URL_<path>; sets VERDICT
    local url_var=URL_$1 out=$R/rates/$1-$2.json
    measured "step_$1_$2" "$out" oha_run "${!url_var}" "$2" "$STEP_SECS" "$out"
    VERDICT=$($REPORT step "$out" "$2" "$P99_MS")
    log "  $1 @ $2/s: $VERDICT (others: ${FOREIGN}% of a core)"
    if [[ ${RATE_CONFIRM_MISS:-} && $VERDICT != held* ]]; then
        # A single tail spike misses a step: with RATE_CONFIRM_MISS, a miss counts only if
        # the step misses again. The first files are kept aside (their requests are in the ledger).
        mv "$out" "$out.miss"
        [[ -e $out.try1 ]] && mv "$out.try1" "$out.miss.try1"
        measured "step_$1_$2" "$out" oha_run "${!url_var}" "$2" "$STEP_SECS" "$out"
        VERDICT=$($REPORT step "$out" "$2" "$P99_MS")
        log "  $1 @ $2/s again: $VERDICT (others: ${FOREIGN}% of a core)"
    fi
}

rate_steps() { # PATH...: warm-up, then the steps of RATES in turns, then two bisection steps
    local p rate all_failed lo hi mid url_var
    for p in "$@"; do
        url_var=URL_$p
        oha_run "${!url_var}" "${RATES%% *}" 2 "$R/rates/warmup-$p.json"
    done
    declare -gA HELD=() FAILED_AT=()
    for rate in $RATES; do
        for p in "$@"; do
            [[ ${FAILED_AT[$p]:-} ]] && continue
            step "$p" "$rate"
            if [[ $VERDICT == held* ]]; then HELD[$p]=$rate; else FAILED_AT[$p]=$rate; fi
        done
        all_failed=1
        for p in "$@"; do [[ ${FAILED_AT[$p]:-} ]] || all_failed=; done
        [[ $all_failed ]] && break
    done
    # Two bisection steps between the last rate held and the first one missed.
    for p in "$@"; do
        lo=${HELD[$p]:-0} hi=${FAILED_AT[$p]:-}
        [[ $hi ]] || continue
        for _ in 1 2; do
            mid=$(((lo + hi) / 2 / 100 * 100))
            ((mid <= lo || mid >= hi)) && break
            step "$p" "$mid"
            if [[ $VERDICT == held* ]]; then lo=$mid; else hi=$mid; fi
        done
    done
}

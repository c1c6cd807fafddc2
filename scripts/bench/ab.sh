#!/usr/bin/env bash
# A/B of two builds of synmon's benches in one invocation: journey, load, rules, notify.
#
#   scripts/bench/ab.sh OLD_DIR NEW_DIR
#
# OLD_DIR and NEW_DIR are two checkouts (worktrees) whose bench binaries are already built with
# `cargo bench --no-run --locked` (and, for `load`, whose `target/release/synmon` is built: the
# load bench starts `$DIR/target/release/synmon`). The bench binaries bake their checkout in
# (`CARGO_MANIFEST_DIR`: journeys/, synmon.example.yaml, ops/reports/, target/release/synmon), so
# each one is run as built; the newest `target/release/deps/<bench>-<hash>` executable of each
# checkout is used unless AB_OLD_<BENCH> / AB_NEW_<BENCH> (e.g. AB_NEW_LOAD=path) names one.
#
# Each bench runs old, new, old, new, ... (AB_ROUNDS rounds, default 2), with quick settings
# (each overridable from the environment):
#   JOURNEY_BENCH_RUNS=10            journey: 2 warm-ups + 10 accuracy iterations and 10 runs
#   LOAD_SECS=20 LOAD_CHECKS=1000    load: 1,000 checks at 1 s, 20 s measured, per keep-alive mode
#   RULES_BENCH=                     rules: both figures (synthetic and example)
#   NOTIFY_BENCH_N=2000 NOTIFY_BENCH_TRIALS=1
#                                    notify: 2,000 notifications; 1 detection trial (its resolve
#                                    waits for a 1 m rule window to empty: ~70-120 s)
# Before each run it waits (at most AB_MAX_WAIT s, default 600) until the 1-minute load average
# is below AB_MAX_LOAD (default 3), and records /proc/loadavg before and after the run.
# AB_BENCHES selects benches (default "journey load rules notify"); AB_OUT the output directory
# (default a new /tmp/synmon-ab.*), which keeps every run's stdout/stderr and summary.md.
#
# The journey bench writes ops/reports/perf-YYYYMMDD.json in the checkout it was built from:
# this script snapshots each checkout's ops/reports/ before a journey run and restores it after
# (deleting files the run created), so neither checkout is left dirty.
#
# The load bench starts `$DIR/target/release/synmon`, but first runs `cargo build --release -p
# synmon --bin synmon` in its working directory. That build uses the release profile without
# dev-dependency features, a different unit from the `target/release/synmon` that `cargo bench
# --no-run` links: it would recompile (minutes, inside the A/B) in OLD_DIR and replace the binary
# under test. So for the load runs a `cargo` earlier on PATH answers exactly that command with
# success and passes every other command to the real cargo: both sides run the binary that
# `cargo bench --no-run` built in their checkout, built the same way.
#
# Output: for each bench, the key figures of every run side by side, the median of the old
# runs, the median of the new runs, and new/old. Exit status 1 if any run failed.
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '2,4p' "$0" >&2
    exit 2
fi
OLD=$(cd "$1" && pwd)
NEW=$(cd "$2" && pwd)
ROUNDS=${AB_ROUNDS:-2}
BENCHES=${AB_BENCHES:-journey load rules notify}
MAX_LOAD=${AB_MAX_LOAD:-3}
MAX_WAIT=${AB_MAX_WAIT:-600}
OUT=${AB_OUT:-$(mktemp -d /tmp/synmon-ab.XXXXXX)}
mkdir -p "$OUT"
export JOURNEY_BENCH_RUNS=${JOURNEY_BENCH_RUNS:-10}
export LOAD_SECS=${LOAD_SECS:-20}
export LOAD_CHECKS=${LOAD_CHECKS:-1000}
export RULES_BENCH=${RULES_BENCH:-}
export NOTIFY_BENCH_N=${NOTIFY_BENCH_N:-2000}
export NOTIFY_BENCH_TRIALS=${NOTIFY_BENCH_TRIALS:-1}

dir_of() { if [ "$1" = old ]; then echo "$OLD"; else echo "$NEW"; fi; }

# The bench binary of a checkout: AB_OLD_<BENCH>/AB_NEW_<BENCH>, else the newest
# target/release/deps/<bench>-<16 hex> executable.
bin_of() {
    local side=$1 bench=$2 var
    var="AB_${side^^}_${bench^^}"
    if [ -n "${!var:-}" ]; then
        echo "${!var}"
        return
    fi
    local dir
    dir=$(dir_of "$side")
    find "$dir/target/release/deps" -maxdepth 1 -type f -executable \
        -regextype posix-extended -regex ".*/${bench}-[0-9a-f]{16}" -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -1 | cut -d' ' -f2-
}

load1() { cut -d' ' -f1 /proc/loadavg; }
loadavg3() { cut -d' ' -f1-3 /proc/loadavg; }

wait_for_quiet() {
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
        if [ "$waited" -ge "$MAX_WAIT" ]; then
            echo "  (load $(loadavg3) still >= $MAX_LOAD after ${waited} s: running anyway)" >&2
            return
        fi
        sleep 10
        waited=$((waited + 10))
    done
    [ "$waited" -gt 0 ] && echo "  (waited ${waited} s for load < $MAX_LOAD)" >&2
    return 0
}

# ops/reports/ of a checkout, kept aside while a journey run may write into it.
SNAP_DIR=""
SNAP_OF=""
snapshot_reports() {
    SNAP_OF="$1/ops/reports"
    SNAP_DIR="$OUT/reports-snapshot"
    rm -rf "$SNAP_DIR"
    mkdir -p "$SNAP_DIR"
    if [ -d "$SNAP_OF" ]; then
        cp -a "$SNAP_OF/." "$SNAP_DIR/"
        touch "$SNAP_DIR/.existed"
    fi
}
restore_reports() {
    [ -n "$SNAP_OF" ] || return 0
    if [ -d "$SNAP_OF" ]; then
        local f
        for f in "$SNAP_OF"/* "$SNAP_OF"/.[!.]*; do
            [ -e "$f" ] || continue
            [ -e "$SNAP_DIR/$(basename "$f")" ] || rm -rf "$f"
        done
    fi
    if [ -e "$SNAP_DIR/.existed" ]; then
        rm -f "$SNAP_DIR/.existed"
        mkdir -p "$SNAP_OF"
        cp -a "$SNAP_DIR/." "$SNAP_OF/"
    else
        rmdir "$SNAP_OF" 2>/dev/null || true
    fi
    SNAP_OF=""
}
trap restore_reports EXIT
trap 'restore_reports; exit 130' INT TERM

echo "A/B $(date -Iseconds): old $OLD ($(git -C "$OLD" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
    "new $NEW ($(git -C "$NEW" rev-parse --short HEAD 2>/dev/null || echo '?')); $(nproc) cores; output in $OUT"
echo "settings: AB_ROUNDS=$ROUNDS JOURNEY_BENCH_RUNS=$JOURNEY_BENCH_RUNS LOAD_SECS=$LOAD_SECS" \
    "LOAD_CHECKS=$LOAD_CHECKS RULES_BENCH=$RULES_BENCH NOTIFY_BENCH_N=$NOTIFY_BENCH_N" \
    "NOTIFY_BENCH_TRIALS=$NOTIFY_BENCH_TRIALS AB_MAX_LOAD=$MAX_LOAD"
: >"$OUT/runs.tsv"
for bench in $BENCHES; do
    for side in old new; do
        b=$(bin_of "$side" "$bench")
        if [ -z "$b" ] || [ ! -x "$b" ]; then
            echo "no $bench bench binary for $side ($(dir_of "$side")/target/release/deps): build it with cargo bench --no-run" >&2
            exit 2
        fi
        echo "  $bench/$side: $b (built $(date -r "$b" '+%F %T'))"
    done
    if [ "$bench" = load ]; then
        for side in old new; do
            [ -x "$(dir_of "$side")/target/release/synmon" ] || {
                echo "no $(dir_of "$side")/target/release/synmon: cargo build --release there first" >&2
                exit 2
            }
        done
    fi
done

SCRATCH=$(mktemp -d /tmp/synmon-ab-cwd.XXXXXX)
mkdir -p "$SCRATCH/shim"
REAL_CARGO=$(command -v cargo)
{
    echo '#!/bin/sh'
    echo '# ab.sh: the load bench'"'"'s own build step is a no-op here (see scripts/bench/ab.sh).'
    echo '[ "$*" = "build --release -p synmon --bin synmon" ] && exit 0'
    echo "exec \"$REAL_CARGO\" \"\$@\""
} >"$SCRATCH/shim/cargo"
chmod +x "$SCRATCH/shim/cargo"
failed=0
for bench in $BENCHES; do
    for round in $(seq 1 "$ROUNDS"); do
        for side in old new; do
            b=$(bin_of "$side" "$bench")
            dir=$(dir_of "$side")
            path=$PATH
            [ "$bench" = load ] && path="$SCRATCH/shim:$PATH"
            wait_for_quiet
            [ "$bench" = journey ] && snapshot_reports "$dir"
            l0=$(loadavg3)
            t0=$(date +%s.%N)
            echo "== $bench $side round $round (load $l0) ..."
            rc=0
            (cd "$SCRATCH" && PATH=$path exec "$b" --bench) >"$OUT/$bench-$side-$round.out" \
                2>"$OUT/$bench-$side-$round.err" || rc=$?
            t1=$(date +%s.%N)
            l1=$(loadavg3)
            [ "$bench" = journey ] && restore_reports
            wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
            if [ "$rc" -ne 0 ]; then
                failed=1
                echo "   FAILED (exit $rc) after ${wall} s; last lines of stderr:"
                tail -5 "$OUT/$bench-$side-$round.err" | sed 's/^/     /'
            else
                echo "   done in ${wall} s (load after: $l1)"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$bench" "$side" "$round" "$rc" "$l0" "$l1" "$wall" \
                >>"$OUT/runs.tsv"
        done
    done
done
rm -rf "$SCRATCH"

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, re, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
runs = [l.split("\t") for l in (out / "runs.tsv").read_text().splitlines() if l]

def num(pattern, text, group=1):
    m = re.search(pattern, text)
    return float(m.group(group).replace(",", "")) if m else None

def journey(text):
    line = next((l for l in text.splitlines() if l.startswith("{") and '"bench":"journey"' in l), None)
    if line is None:
        return {}
    j = json.loads(line)
    r, a = j["runner"], j["accuracy"]
    return {
        "synmon CPU per run, ms (lower is better)": r["synmon_cpu_ms_per_run"],
        "synmon peak RSS (VmHWM), MiB": r["peak_rss_mib"],
        "timed latency (journey SLO), median ms": r["timed_latency_ms"]["median"],
        "`save mapping` step, median ms": r["save_mapping_ms"]["median"],
        "session creation, median ms": r["session_create_ms"]["median"],
        "whole run wall, median ms": r["run_total_ms"]["median"],
        "chromedriver + Chromium CPU per run, ms": r["chromedriver_chromium_cpu_ms_per_run"],
        "in-page error (measured - truth), median ms": a["in_page"]["error_ms"]["median"],
        "synmon CPU per in-page save interaction, ms": a["in_page"]["synmon_cpu_ms_per_interaction"],
        "runs passed": r["passed"],
    }

def load(text):
    f = {}
    for l in text.splitlines():
        m = re.match(r"keep_alive=(true|false):", l)
        if not m:
            continue
        k = "keep-alive" if m.group(1) == "true" else "new connection"
        f[f"{k}: synmon CPU, % of one core (same configured load)"] = num(r"CPU ([\d.]+)% of one core", l)
        f[f"{k}: peak RSS (VmHWM), MiB"] = num(r"peak RSS ([\d.]+) MiB", l)
        f[f"{k}: lateness p99, median over checks, ms"] = num(r"median ([\d.]+) ms / worst", l)
        f[f"{k}: lateness p99, worst check, ms"] = num(r"worst ([\d.]+) ms", l)
        f[f"{k}: runs/s counted (new harness only)"] = num(r"\(([\d.]+) runs/s", l)
    return f

def rules(text):
    return {
        "synthetic: evaluate, median ms": num(r"evaluate: median ([\d.]+) ms", text),
        "synthetic: evaluate, p95 ms": num(r"evaluate: median [\d.]+ ms, p95 ([\d.]+) ms", text),
        "synthetic: VmRSS after evaluating, KiB": num(r"after evaluating \((\d+) KiB\)", text),
        "example: one evaluation, median ms": num(r"one evaluation \([^)]*\): median ([\d.]+) ms", text),
        "example: rules part, median ms": num(r"\(rules ([\d.]+) ms", text),
        "example: SLO status part, median ms": num(r"SLO status ([\d.]+) ms", text),
        "example: registry fill (30 days of runs), s": num(r"filled in ([\d.]+) s", text),
        "example: VmRSS after evaluating, KiB": num(r"VmRSS (\d+) KiB after evaluating", text),
    }

def notify(text):
    return {
        "route+group+dedup+enqueue, ms": num(r"enqueue: +([\d.]+) ms", text),
        "delivery (one worker), ms": num(r"delivery \(one worker\): +([\d.]+) ms", text),
        "delivery, notifications/s": num(r"delivery \(one worker\): +[\d.]+ ms \(([\d.]+)/s\)", text),
        "end to end, notifications/s": num(r"end to end: +([\d.]+)/s", text),
        "fault on -> trigger at the webhook, median ms": num(r"trigger at the webhook: min [\d.]+ ms, median ([\d.]+) ms", text),
        "fault off -> resolve at the webhook, median ms": num(r"resolve at the webhook: min [\d.]+ ms, median ([\d.]+) ms", text),
    }

parsers = {"journey": journey, "load": load, "rules": rules, "notify": notify}
compared = {
    "journey": "every figure from the JSON line both versions print (the bench is unchanged but for imports)",
    "load": "CPU % of one core at the same configured load (1,000 checks at 1 s), peak RSS and lateness: printed identically by both harnesses; the per-probe/per-run us are not compared (the old harness divides by checks x seconds, the new by counted runs)",
    "rules": "both figures (synthetic 10,000 rules; example rules over 30 days)",
    "notify": "outbox throughput and detection-to-delivery",
}

def fmt(v):
    if v is None:
        return "-"
    return f"{v:g}"

for bench in dict.fromkeys(r[0] for r in runs):
    rs = [r for r in runs if r[0] == bench]
    cols = [(r[1], r[2]) for r in rs]
    figs, fails = {}, []
    for r in rs:
        side, rnd, rc = r[1], r[2], int(r[3])
        text = (out / f"{bench}-{side}-{rnd}.out").read_text(errors="replace")
        if rc != 0:
            fails.append(f"{side} round {rnd} exited {rc}")
        for k, v in parsers[bench](text).items():
            figs.setdefault(k, {})[(side, rnd)] = v
    print(f"\n### {bench}\n")
    print(f"Compared: {compared[bench]}.\n")
    head = [f"{s} {n}" for s, n in cols]
    print("| figure | " + " | ".join(head) + " | old median | new median | new/old |")
    print("|---|" + "---|" * (len(head) + 3))
    loads = [f"{r[4].split()[0]} -> {r[5].split()[0]}" for r in rs]
    print("| load avg (1 min) before -> after | " + " | ".join(loads) + " | | | |")
    print("| wall time of the run, s | " + " | ".join(r[6] for r in rs) + " | | | |")
    for k, by in figs.items():
        vals = [by.get(c) for c in cols]
        if all(v is None for v in vals):
            continue  # a figure no run printed (e.g. detection with NOTIFY_BENCH_TRIALS=0)
        o = [by[c] for c in cols if c[0] == "old" and by.get(c) is not None]
        n = [by[c] for c in cols if c[0] == "new" and by.get(c) is not None]
        om = statistics.median(o) if o else None
        nm = statistics.median(n) if n else None
        ratio = f"{nm / om:.3f}" if om and nm is not None else "-"
        print(f"| {k} | " + " | ".join(fmt(v) for v in vals) + f" | {fmt(om)} | {fmt(nm)} | {ratio} |")
    for f in fails:
        print(f"\nFAILED: {f} (see {out}/{bench}-*.err)")
PY
exit $failed

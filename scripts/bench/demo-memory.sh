#!/usr/bin/env bash
# The demo's memory, the figures that size the k8s requests in deploy/k8s/ (BENCHMARKS.md,
# "Demo and packaging"): runs `synmon demo` for DURATION seconds (default 150) and samples
# /proc every 2 s:
#   - the demo process's VmHWM (the daemon runs inside it): its peak RSS;
#   - over every descendant of the demo except rvp-sandbox (chromedriver and its Chromium
#     processes): the summed VmRSS and the summed Pss of smaps_rollup; the maxima are printed.
# Usage: scripts/bench/demo-memory.sh [target/debug|target/release]   (DURATION=N to change)
# Needs the synmon and rvp-sandbox binaries in that folder (`cargo build --workspace --bins`),
# chromium and chromedriver.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR="${1:-target/debug}"
DURATION="${DURATION:-150}"
LISTEN_PORT="${LISTEN_PORT:-13005}"
SANDBOX_PORT="${SANDBOX_PORT:-13000}"
DATA_DIR="$(mktemp -d)"
trap 'rm -rf "$DATA_DIR"' EXIT

PATH="$BIN_DIR:$PATH" "$BIN_DIR/synmon" demo --listen "127.0.0.1:$LISTEN_PORT" \
  --sandbox-port "$SANDBOX_PORT" --data-dir "$DATA_DIR" >"$DATA_DIR/demo.log" 2>&1 &
DEMO=$!

# Every descendant of $1 (children first found through /proc/PID/task/*/children).
descendants() {
  local p c
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$p"
    descendants "$p"
  done
}

kb() { awk -v k="$2" '$1 == k":" { print $2; exit }' "$1" 2>/dev/null || true; }

max_rss=0 max_pss=0 hwm=0
end=$((SECONDS + DURATION))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$DEMO" 2>/dev/null; do
  rss=0 pss=0
  for p in $(descendants "$DEMO"); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "rvp-sandbox" ] && continue
    r=$(kb /proc/"$p"/status VmRSS); rss=$((rss + ${r:-0}))
    s=$(kb /proc/"$p"/smaps_rollup Pss); pss=$((pss + ${s:-0}))
  done
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
  [ "$pss" -gt "$max_pss" ] && max_pss=$pss
  h=$(kb /proc/"$DEMO"/status VmHWM); [ "${h:-0}" -gt "$hwm" ] && hwm=${h:-0}
  sleep 2
done
kill -TERM "$DEMO" 2>/dev/null || true
wait "$DEMO" || true

echo "synmon demo for ${DURATION} s ($BIN_DIR), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "synmon (daemon in the demo process) peak RSS, VmHWM: $((hwm / 1024)) MiB"
echo "chromedriver + Chromium, max summed RSS: $((max_rss / 1024)) MiB"
echo "chromedriver + Chromium, max summed PSS: $((max_pss / 1024)) MiB"

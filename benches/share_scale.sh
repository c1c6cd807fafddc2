#!/usr/bin/env bash
# Work sharing: runs per minute sustained by 1, 2 and 3 replicas of one location (release
# binary, real PostgreSQL, HTTP checks against a local nginx answering 200 at once: the CPU
# spent is synmon's own). Offered load: CHECKS checks every second; "sustained" is the runs
# stored whose intended start falls in a MEASURE-second window after WARMUP seconds, per
# minute, next to what was offered, with the slots nobody ran (missed claims), the slots
# replicas skipped because they fell behind (overruns, from their /metrics, since start), the
# mean start lateness, the CPU of all replicas and of PostgreSQL over the window (% of one
# core) and each replica's share. Run it with CHECKS below and above what one replica sustains
# (e.g. 3000 and 8000 on 2 cores) to see where the curve bends.
#
# Usage: cargo build --release --bin synmon && bash benches/share_scale.sh
# Env: SYNMON_BIN (default target/release/synmon), SYNMON_TEST_POSTGRES_URL (admin URL), CHECKS (default 3000), WARMUP (15), MEASURE (30),
#      REPLICAS ("1 2 3").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SYNMON_BIN:-target/release/synmon}
ADMIN=${SYNMON_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CHECKS=${CHECKS:-3000}
WARMUP=${WARMUP:-15}
MEASURE=${MEASURE:-30}
REPLICAS=${REPLICAS:-"1 2 3"}
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin synmon" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx (nginx-light) is required" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# utime + stime of the given processes, in clock ticks (exited ones are not counted).
cpu_ticks() {
  local sum=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$sum"
}
HZ=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The target: nginx answering 200 to every path.
NGPORT=$(free_port)
mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGPORT; location / { return 200 "ok"; } }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)

base=${ADMIN%/*}
echo "# share_scale: $CHECKS HTTP checks every 1 s offered ($((CHECKS * 60)) runs/min), $(nproc) cores, $(date -u +%FT%TZ)"
printf '%-9s %-10s %-10s %-8s %-9s %-9s %-11s %-13s %s\n' replicas runs/min sustained missed overruns late-ms synmon-cpu postgres-cpu per-replica
for n in $REPLICAS; do
  db="synmon_bench_share_$RANDOM$RANDOM"
  psql "$ADMIN" -qAtc "CREATE DATABASE $db" >/dev/null
  url="$base/$db"
  rpids=()
  rports=()
  for i in $(seq 0 $((n - 1))); do
    d="$WORK/$db/r$i"; mkdir -p "$d/alerts" "$d/journeys"
    echo 'rules: []' > "$d/alerts/rules.yaml"
    port=$(free_port)
    rports+=("$port")
    {
      printf 'targets:\n  bench:\n    base_url: "http://127.0.0.1:%s"\ntenant: t\ncredentials:\n  username: u\n  password: pass-word\n' "$NGPORT"
      printf 'artifacts: artifacts\nreplica_id: bench-%s\nlocation: eu\n' "$i"
      printf 'server:\n  listen: 127.0.0.1:%s\nstore:\n  url: "%s"\nalerts: alerts\n' "$port" "$url"
      printf 'checks:\n  interval: 1s\n  max_offset: 1s\n  timeout: 900ms\n  retry_on_failure: { count: 0 }\n  journeys: []\n  http:\n'
      for c in $(seq -w 0 $((CHECKS - 1))); do printf '    - { name: c%s, url: /c%s }\n' "$c" "$c"; done
    } > "$d/synmon.yaml"
    RUST_LOG=warn "$BIN" run --config "$d/synmon.yaml" > /dev/null 2> "$d/log" &
    rpids+=($!); PIDS+=($!)
  done
  sleep "$WARMUP"
  for i in "${!rpids[@]}"; do
    kill -0 "${rpids[$i]}" 2>/dev/null || { echo "replica $i exited:" >&2; tail -5 "$WORK/$db/r$i/log" >&2; exit 1; }
  done
  from=$(date +%s)
  c0=$(cpu_ticks "${rpids[@]}"); g0=$(cpu_ticks $(pgrep -x postgres))
  sleep "$MEASURE"
  c1=$(cpu_ticks "${rpids[@]}"); g1=$(cpu_ticks $(pgrep -x postgres))
  to=$(date +%s)
  # Slots a replica skipped because it fell behind (its own overruns: not claims) and the mean
  # start lateness, from every replica's /metrics (counted since it started).
  overruns=0; late_sum=0; late_n=0
  for port in "${rports[@]}"; do
    read -r o s c < <(curl -fsS "http://127.0.0.1:$port/metrics" | awk '
      /^synmon_check_overruns_total/ {o += $2}
      /^synmon_schedule_lateness_seconds_sum/ {s += $2}
      /^synmon_schedule_lateness_seconds_count/ {c += $2}
      END {printf "%d %f %d\n", o, s, c}')
    overruns=$((overruns + o)); late_n=$((late_n + c))
    late_sum=$(awk -v a="$late_sum" -v b="$s" 'BEGIN{print a + b}')
  done
  late_ms=$(awk -v s="$late_sum" -v n="$late_n" 'BEGIN{printf "%.0f", n ? s * 1000 / n : 0}')
  sleep 3
  runs=$(psql "$url" -qAtc "SELECT count(*) FROM runs WHERE scheduled_at >= to_timestamp($from) AND scheduled_at < to_timestamp($to)")
  missed=$(psql "$url" -qAtc "SELECT count(*) FROM slot_claims WHERE missed AND slot_us >= $from::bigint * 1000000 AND slot_us < $to::bigint * 1000000")
  shares=$(psql "$url" -qAtc "SELECT string_agg(replica || '=' || n, ' ' ORDER BY replica) FROM (SELECT replica, count(*) n FROM runs WHERE scheduled_at >= to_timestamp($from) AND scheduled_at < to_timestamp($to) GROUP BY replica) s")
  per_min=$((runs * 60 / (to - from)))
  offered=$((CHECKS * 60))
  # CPU as % of one core over the measured window (synmon: all replicas; postgres: every
  # backend alive at both ends, which the replicas' pooled connections are).
  scpu=$(( (c1 - c0) * 100 / HZ / MEASURE ))
  gcpu=$(( (g1 - g0) * 100 / HZ / MEASURE ))
  printf '%-9s %-10s %-10s %-8s %-9s %-9s %-11s %-13s %s\n' "$n" "$per_min" "$((per_min * 100 / offered))%" "$missed" "$overruns" "$late_ms" "$scpu%" "$gcpu%" "$shares"
  for p in "${rpids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql "$ADMIN" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done

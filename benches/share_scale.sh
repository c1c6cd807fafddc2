#!/usr/bin/env bash
# Work sharing: runs per minute sustained by 1, 2 and 3 replicas of one location (release
# binary, real PostgreSQL, HTTP checks against a local nginx answering 200 at once: the CPU
# spent is synmon's own). Offered load: CHECKS checks every second; "sustained" is the runs
# stored whose intended start falls in a MEASURE-second window after WARMUP seconds, per
# minute, next to what was offered, with the slots nobody ran (missed claims) and each
# replica's share.
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
printf '%-9s %-16s %-14s %-10s %s\n' replicas runs/min sustained missed per-replica
for n in $REPLICAS; do
  db="synmon_bench_share_$RANDOM$RANDOM"
  psql "$ADMIN" -qAtc "CREATE DATABASE $db" >/dev/null
  url="$base/$db"
  rpids=()
  for i in $(seq 0 $((n - 1))); do
    d="$WORK/$db/r$i"; mkdir -p "$d/alerts" "$d/journeys"
    echo 'rules: []' > "$d/alerts/rules.yaml"
    port=$(free_port)
    {
      printf 'targets:\n  bench:\n    base_url: "http://127.0.0.1:%s"\ntenant: t\ncredentials:\n  username: u\n  password: pass-word\n' "$NGPORT"
      printf 'journeys: journeys\nartifacts: artifacts\nreplica_id: bench-%s\nlocation: eu\n' "$i"
      printf 'server:\n  listen: 127.0.0.1:%s\nstore:\n  url: "%s"\nalerts: alerts\n' "$port" "$url"
      printf 'checks:\n  interval: 1s\n  max_offset: 1s\n  timeout: 900ms\n  retry_on_failure: { count: 0 }\n  journeys: []\n  http:\n'
      for c in $(seq -w 0 $((CHECKS - 1))); do printf '    - { name: c%s, url: /c%s }\n' "$c" "$c"; done
    } > "$d/synmon.yaml"
    RUST_LOG=warn "$BIN" run --config "$d/synmon.yaml" > /dev/null 2> "$d/log" &
    rpids+=($!); PIDS+=($!)
  done
  sleep "$WARMUP"
  from=$(date +%s)
  sleep "$MEASURE"
  to=$(date +%s)
  sleep 3
  runs=$(psql "$url" -qAtc "SELECT count(*) FROM runs WHERE scheduled_at >= to_timestamp($from) AND scheduled_at < to_timestamp($to)")
  missed=$(psql "$url" -qAtc "SELECT count(*) FROM slot_claims WHERE missed AND slot_us >= $from * 1000000 AND slot_us < $to * 1000000")
  shares=$(psql "$url" -qAtc "SELECT string_agg(replica || '=' || n, ' ' ORDER BY replica) FROM (SELECT replica, count(*) n FROM runs WHERE scheduled_at >= to_timestamp($from) AND scheduled_at < to_timestamp($to) GROUP BY replica) s")
  per_min=$((runs * 60 / (to - from)))
  offered=$((CHECKS * 60))
  printf '%-9s %-16s %-14s %-10s %s\n' "$n" "$per_min" "$((per_min * 100 / offered))%" "$missed" "$shares"
  for p in "${rpids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql "$ADMIN" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done

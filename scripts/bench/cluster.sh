#!/usr/bin/env bash
# The cluster benchmark (BENCHMARKS.md, "Cluster: 3 locations x 3 replicas x 300 HTTP checks"):
# LOCATIONS x REPLICAS `synmon run` processes (release build) on one fresh PostgreSQL database,
# one rvp-sandbox per location (own SQLite file), each replica with CHECKS HTTP checks every
# INTERVAL against its location's sandbox, the repo's alerts/ rules, cluster timing at its
# defaults (lease 10s, renew_every 2s). After WARMUP seconds it measures a steady window of
# STEADY seconds, then kills the leader KILLS times:
#   1. feed lag: p50/p99 of the leader's synmon_cluster_feed_lag_seconds (goal p99 <=
#      evaluation interval + 2 s);
#   2. the leader's CPU minus the mean of its location's followers, per evaluation and as a
#      share of one core;
#   3. rows and bytes added to the store's tables, extrapolated to 24 h, and the replicas' CPU
#      as a share of the machine;
#   4. failover: SIGKILL the leader, time until another replica names a new leader (polled
#      every 100 ms), restart it, wait until it is listed again (goal <= 15 s).
#
# Usage: scripts/bench/cluster.sh
# Environment (defaults in brackets):
#   CLUSTER_LOCATIONS [3] CLUSTER_REPLICAS [3 per location] CLUSTER_CHECKS [300 per replica]
#   CLUSTER_INTERVAL [5s] CLUSTER_EVAL [30] (evaluation_interval, seconds)
#   CLUSTER_WARMUP [90] CLUSTER_STEADY [360] CLUSTER_KILLS [10] (seconds, seconds, count)
#   CLUSTER_PG [postgres://postgres@127.0.0.1:5432] CLUSTER_PORT [14100] (first port used)
#   CLUSTER_BIN [target/release] CLUSTER_BUILD [1: run `cargo build --release --workspace`]
#   CLUSTER_KEEP [empty: remove the work folder at exit; 1: keep configs and logs]
# Smoke run: CLUSTER_CHECKS=10 CLUSTER_WARMUP=40 CLUSTER_STEADY=60 CLUSTER_KILLS=2 CLUSTER_EVAL=10
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

LOCATIONS=${CLUSTER_LOCATIONS:-3}
REPLICAS=${CLUSTER_REPLICAS:-3}
CHECKS=${CLUSTER_CHECKS:-300}
INTERVAL=${CLUSTER_INTERVAL:-5s}
EVAL=${CLUSTER_EVAL:-30}
WARMUP=${CLUSTER_WARMUP:-90}
STEADY=${CLUSTER_STEADY:-360}
KILLS=${CLUSTER_KILLS:-10}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
PORT0=${CLUSTER_PORT:-14100}
BIN=${CLUSTER_BIN:-target/release}
HELPER="$ROOT/scripts/bench/cluster_stats.py"

if [ "${CLUSTER_BUILD:-1}" = 1 ]; then
    cargo build --release --workspace --quiet
fi
for b in synmon rvp-sandbox; do
    [ -x "$BIN/$b" ] || { echo "$BIN/$b missing: cargo build --release --workspace" >&2; exit 2; }
done
BIN=$(cd "$BIN" && pwd)

WORK=$(mktemp -d /tmp/synmon-cbench.XXXXXX)
DB="synmon_cbench_$$"
STORE="$PG/$DB"
PIDS=()         # per replica index, its running process ("" while down)
SANDBOX_PIDS=()
IDS=()          # per replica index
LOCS=()
PORTS=()
RESULTS="$WORK/results"
: >"$RESULTS"

psql_() { psql "$PG/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
    local rc=$? p
    set +e
    for p in "${PIDS[@]}" "${SANDBOX_PIDS[@]}"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}" "${SANDBOX_PIDS[@]}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    psql_ -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    if [ -n "${CLUSTER_KEEP:-}" ]; then
        echo "work folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# Waits up to $2 seconds until http://127.0.0.1:$1$3 answers.
wait_http() {
    local port=$1 secs=$2 path=${3:-/healthz} end=$((SECONDS + $2))
    until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port$path"; do
        [ "$SECONDS" -lt "$end" ] || { echo "port $port did not answer within ${secs} s" >&2; return 1; }
        sleep 0.5
    done
}

live_ports() {
    local i
    for i in "${!IDS[@]}"; do
        if [ -n "${PIDS[$i]}" ]; then echo "${PORTS[$i]}"; fi
    done
}

# "ID PORT" of the leader every answering replica agrees on, waiting up to $1 seconds.
find_leader() {
    local end=$((SECONDS + $1)) out
    # shellcheck disable=SC2046
    until out=$(python3 "$HELPER" leader $(live_ports)); do
        [ "$SECONDS" -lt "$end" ] || { echo "no agreed leader within $1 s" >&2; return 1; }
        sleep 0.5
    done
    echo "$out"
}

index_of() {
    local i
    for i in "${!IDS[@]}"; do
        if [ "${IDS[$i]}" = "$1" ]; then echo "$i"; fi
    done
}

start_replica() {
    local i=$1
    "$BIN/synmon" run --config "$WORK/${IDS[$i]}/synmon.yaml" \
        >>"$WORK/${IDS[$i]}/synmon.log" 2>&1 &
    PIDS[i]=$!
}

# utime + stime (clock ticks) of PID $1.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# Busy and total jiffies of the whole machine.
machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

TABLES="runs run_steps run_artifacts outbox notification_log alert_state receiver_state cluster_lease cluster_replicas"
# "name rows bytes" per table.
store_sizes() {
    local t q=""
    for t in $TABLES; do
        q+="SELECT '$t', (SELECT count(*) FROM $t), pg_total_relation_size('$t') UNION ALL "
    done
    psql "$STORE" -X -q -A -F ' ' -t -c "${q% UNION ALL }"
}

log "work folder $WORK, database $DB, $LOCATIONS locations x $REPLICAS replicas x $CHECKS checks every $INTERVAL"
psql_ -c "CREATE DATABASE $DB" >/dev/null

port=$PORT0
SANDBOX_PORTS=()
for l in $(seq 1 "$LOCATIONS"); do
    mkdir -p "$WORK/sandbox-$l"
    "$BIN/rvp-sandbox" --listen "127.0.0.1:$port" \
        --database-url "sqlite://$WORK/sandbox-$l/rvp.db" \
        --rate-limit-per-minute 100000000 >"$WORK/sandbox-$l/out.log" 2>"$WORK/sandbox-$l/err.log" &
    SANDBOX_PIDS+=("$!")
    SANDBOX_PORTS[l]=$port
    port=$((port + 1))
done
for l in $(seq 1 "$LOCATIONS"); do wait_http "${SANDBOX_PORTS[$l]}" 60; done

CHECKS_YAML=$(python3 "$HELPER" checks "$CHECKS")
for l in $(seq 1 "$LOCATIONS"); do
    for r in $(seq 1 "$REPLICAS"); do
        id="loc$l-r$r"
        dir="$WORK/$id"
        mkdir -p "$dir/alerts"
        cp "$ROOT"/alerts/*.yaml "$dir/alerts/"
        cat >"$dir/synmon.yaml" <<EOF
replica_id: $id
location: loc$l
targets:
  staging:
    base_url: "http://127.0.0.1:${SANDBOX_PORTS[$l]}"
tenant: synthetic
credentials:
  username: synthetic@rvp.test
  password: synthetic-demo
server:
  listen: 127.0.0.1:$port
store:
  url: "$STORE"
cluster: { lease: 10s, renew_every: 2s }
evaluation_interval: ${EVAL}s
alerts: alerts
journeys: "$ROOT/journeys"
artifacts: artifacts
checks:
  interval: $INTERVAL
  journeys: []
$CHECKS_YAML
EOF
        IDS+=("$id")
        LOCS+=("loc$l")
        PORTS+=("$port")
        PIDS+=("")
        port=$((port + 1))
    done
done
"$BIN/synmon" check --config "$WORK/${IDS[0]}/synmon.yaml" >"$WORK/check.log" 2>&1 ||
    { cat "$WORK/check.log" >&2; exit 2; }

for i in "${!IDS[@]}"; do start_replica "$i"; done
for i in "${!IDS[@]}"; do wait_http "${PORTS[$i]}" 120; done
read -r LEADER LEADER_PORT < <(find_leader 60)
log "${#IDS[@]} replicas up, leader $LEADER; warm-up ${WARMUP} s"
sleep "$WARMUP"

read -r LEADER LEADER_PORT < <(find_leader 30)
LI=$(index_of "$LEADER")
log "steady window ${STEADY} s, leader $LEADER"
declare -A TICKS_A
for i in "${!IDS[@]}"; do TICKS_A[$i]=$(cpu_ticks "${PIDS[$i]}"); done
read -r BUSY_A ALL_A < <(machine_jiffies)
SIZES_A=$(store_sizes)
{
    echo "t_a=$(date +%s.%N)"
    echo "loadavg_a=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "scrape_a=$(python3 "$HELPER" scrape "$LEADER_PORT")"
} >>"$RESULTS"

end=$((SECONDS + STEADY))
while [ "$SECONDS" -lt "$end" ]; do
    left=$((end - SECONDS))
    sleep $((left < 30 ? left : 30))
    for i in "${!IDS[@]}"; do
        kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "replica ${IDS[$i]} died:" >&2; tail -20 "$WORK/${IDS[$i]}/synmon.log" >&2; exit 1; }
    done
    [ "$SECONDS" -ge "$end" ] || echo "scrape_mid=$(python3 "$HELPER" scrape "$LEADER_PORT")" >>"$RESULTS"
done

{
    echo "scrape_b=$(python3 "$HELPER" scrape "$LEADER_PORT")"
    echo "t_b=$(date +%s.%N)"
} >>"$RESULTS"
read -r BUSY_B ALL_B < <(machine_jiffies)
SIZES_B=$(store_sizes)
for i in "${!IDS[@]}"; do
    echo "cpu=${IDS[$i]} ${LOCS[$i]} ${TICKS_A[$i]} $(cpu_ticks "${PIDS[$i]}")" >>"$RESULTS"
done
join <(sort <<<"$SIZES_A") <(sort <<<"$SIZES_B") | awk '{ print "table=" $1, $2, $4, $3, $5 }' >>"$RESULTS"
{
    echo "eval_interval=$EVAL"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "nproc=$(nproc)"
    echo "machine_busy=$(awk -v b=$((BUSY_B - BUSY_A)) -v a=$((ALL_B - ALL_A)) 'BEGIN { print b / a }')"
    echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$RESULTS"
[ "$(index_of "$(find_leader 30 | cut -d' ' -f1)")" = "$LI" ] ||
    log "note: the leader changed during the steady window"

for k in $(seq 1 "$KILLS"); do
    read -r LEADER _ < <(find_leader 60)
    LI=$(index_of "$LEADER")
    others=()
    for i in "${!IDS[@]}"; do
        [ "$i" != "$LI" ] && [ -n "${PIDS[$i]}" ] && others+=("${PORTS[$i]}")
    done
    pid=${PIDS[$LI]}
    read -r secs new epoch < <(python3 "$HELPER" failover "$pid" "$LEADER" "${others[@]}" || true)
    wait "$pid" 2>/dev/null || true
    PIDS[LI]=""
    echo "failover=$secs $LEADER $new $epoch" >>"$RESULTS"
    log "kill $k: $LEADER -> $new in $secs s; restarting $LEADER"
    start_replica "$LI"
    wait_http "${PORTS[$LI]}" 120
    # shellcheck disable=SC2046
    python3 "$HELPER" member "$LEADER" 60 $(live_ports) ||
        { echo "$LEADER not listed again within 60 s" >&2; exit 1; }
done

echo
echo "== synmon cluster benchmark: $LOCATIONS locations x $REPLICAS replicas x $CHECKS HTTP checks every $INTERVAL, $(date -u) =="
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
python3 "$HELPER" report "$RESULTS"

#!/usr/bin/env bash
# Side-by-side HTTP probe cost: synmon vs Prometheus blackbox_exporter (issue 19).
#
# One invocation, one machine, one private nginx (its own prefix and port under a temp dir, not
# the system service) serving a 200-byte JSON health document. Then, ROUNDS times, alternating:
#   synmon:    `synmon run` (the `dist` profile: what the image ships) with CHECKS HTTP checks at a 1 s interval against nginx,
#              a new connection per probe (`checks.http_keep_alive: false`), the daemon's default
#              store (embedded SQLite file); every run is stored and in the histograms.
#   blackbox:  prometheus-blackbox-exporter probing the same URL (module http_2xx; it opens a
#              new connection per probe by design), driven by `hey` at CHECKS probes/s.
# For each it reads the process's CPU (/proc/PID/stat) over SECS seconds after a WARMUP, counts
# the probes it made in that span (synmon: growth of `synmon_check_runs_total`, and the nginx
# requests; blackbox: hey's 200 answers), and prints CPU us per probe, % of one core, peak RSS
# (VmHWM) and the synmon/blackbox ratios (medians over the rounds).
#
# The scrape side (hey -> exporter) keeps its connections alive, as Prometheus does when it
# scrapes an exporter: the exporter is charged for its probe, not for accepting a TCP
# connection per scrape that a real Prometheus would not open. SCRAPE_KEEPALIVE=0 makes hey
# open one per scrape (`-disable-keepalive`) to see that cost too.
#
# Usage: scripts/bench-peers.sh            (env: CHECKS=1000 SECS=30 WARMUP=6 ROUNDS=1
#                                            SCRAPE_KEEPALIVE=1 SYNMON_BIN=target/dist/synmon
#                                            NO_BUILD=1: use SYNMON_BIN as it is;
#                                            ONLY=synmon|blackbox: one side only;
#                                            PROFILE=FILE: `perf record -g` synmon's span into FILE;
#                                            TOGETHER=1: each round runs both at once, for long
#                                            rounds such as WARMUP=3600, where alternating would
#                                            double the wall time;
#                                            RSS_EVERY=N: print each process's VmRSS every N s;
#                                            STALL_AT=S STALL_FOR=T: pause each daemon (SIGSTOP)
#                                            S s after it starts, for T s, as a VM pause would:
#                                            every probe due meanwhile is due at once after it;
#                                            MAX_IN_FLIGHT=N: synmon's checks.max_in_flight)
# Run as root it installs nginx-light, prometheus-blackbox-exporter and hey when missing.
set -euo pipefail

CHECKS=${CHECKS:-1000}
SECS=${SECS:-30}
WARMUP=${WARMUP:-6}
ROUNDS=${ROUNDS:-1}
SCRAPE_KEEPALIVE=${SCRAPE_KEEPALIVE:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SYNMON_BIN=${SYNMON_BIN:-$ROOT/target/dist/synmon}

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v hey >/dev/null || need+=(hey)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        # policy-rc.d keeps Debian from starting the system nginx/exporter services.
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
            || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
    else
        echo "bench-peers: missing ${need[*]} (apt-get install ${need[*]} as root)" >&2
        exit 2
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ "${ONLY:-}" != blackbox ] && [ -z "${NO_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --profile dist -q -p synmon --bin synmon)
fi

DIR=$(mktemp -d /tmp/bench-peers.XXXXXX)
chmod 755 "$DIR" # nginx's workers run as nobody when started by root
# The processes this script started (the rounds run in subshells, so a file, not an array).
track() { echo "$1" >>"$DIR/pids"; }
cleanup() {
    if [ -f "$DIR/pids" ]; then
        while read -r p; do kill "$p" 2>/dev/null || true; done <"$DIR/pids"
    fi
    for f in "$DIR"/nginx*/nginx.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 0.5
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
# RSS_EVERY=N: a background sampler that prints "rss NAME SECONDS VmRSS-MiB" to stderr every N s
# for as long as PID lives (where the peak was reached, not just its height).
sample_rss() {
    [ -n "${RSS_EVERY:-}" ] || return 0
    local name=$1 pid=$2 start
    start=$(date +%s)
    local line
    (while kill -0 "$pid" 2>/dev/null; do
        sleep "$RSS_EVERY"
        line=$(awk -v n="$name" -v s="$(($(date +%s) - start))" \
            '/^VmRSS:/{printf "rss %s %ss %.1f MiB\n", n, s, $2 / 1024}' "/proc/$pid/status" 2>/dev/null) &&
            echo "$line" >&2
    done) &
    track "$!"
}
# STALL_AT/STALL_FOR: a background pause of PID (SIGSTOP, then SIGCONT), said on stderr.
stall() {
    [ -n "${STALL_AT:-}" ] || return 0
    local name=$1 pid=$2
    (sleep "$STALL_AT" && kill -STOP "$pid" 2>/dev/null && echo "stall $name: paused at ${STALL_AT}s for ${STALL_FOR:-2}s" >&2 &&
        sleep "${STALL_FOR:-2}"; kill -CONT "$pid" 2>/dev/null) &
    track "$!"
}
CLK_TCK=$(getconf CLK_TCK)

# --- the private nginx -----------------------------------------------------------------------
# start_nginx NAME: one nginx under $DIR/NAME on a free port; prints the port. TOGETHER=1 starts a
# second one for blackbox_exporter, so each side's probes are counted by its own server.
start_nginx() {
    local n="$DIR/$1" port
    port=$(free_port)
    mkdir -p "$n/html" "$n/tmp"
    # 200 bytes exactly: a health document as an API would answer it.
    python3 - "$n/html/health.json" <<'PY'
import json, sys
doc = {"status": "ok", "service": "inventory", "version": "4.12.3", "uptime_s": 86400,
       "checks": {"db": "ok", "cache": "ok", "queue": "ok"}, "region": "eu-west-1"}
s = json.dumps(doc, separators=(",", ":"))
s = s[:-1] + ',"pad":"' + "x" * (200 - len(s) - 9) + '"}'
assert len(s) == 200, len(s)
open(sys.argv[1], "w").write(s)
PY
    cat >"$n/nginx.conf" <<EOF
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $n/tmp;
    proxy_temp_path $n/tmp;
    fastcgi_temp_path $n/tmp;
    uwsgi_temp_path $n/tmp;
    scgi_temp_path $n/tmp;
    default_type application/json;
    server {
        listen 127.0.0.1:$port;
        root $n/html;
        location = /stub { stub_status; }
    }
}
EOF
    "$NGINX" -p "$n" -c "$n/nginx.conf" -e "$n/error.log"
    local url="http://127.0.0.1:$port/health.json"
    for _ in $(seq 50); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
    [ "$(curl -sf "$url" | wc -c)" = 200 ] || { echo "nginx does not serve the document" >&2; exit 1; }
    echo "$port"
}
NG_PORT=$(start_nginx nginx)
NG_PORT_B=$NG_PORT
[ -z "${TOGETHER:-}" ] || NG_PORT_B=$(start_nginx nginx-b)
TARGET="http://127.0.0.1:$NG_PORT/health.json"
TARGET_B="http://127.0.0.1:$NG_PORT_B/health.json"
# nginx_requests [PORT]: requests that nginx has answered so far.
nginx_requests() { curl -sf "http://127.0.0.1:${1:-$NG_PORT}/stub" | awk 'NR==3{print $3}'; }

# --- synmon ----------------------------------------------------------------------------------
runs_total() {
    curl -sf "http://127.0.0.1:$1/metrics" |
        awk '/^synmon_check_runs_total[{ ]/{s+=$NF} END{printf "%d\n", s}'
}

synmon_round() {
    local d="$DIR/synmon.$1" port
    port=$(free_port)
    mkdir -p "$d/journeys"
    {
        printf 'targets:\n  local:\n    base_url: http://127.0.0.1:%s\n' "$NG_PORT"
        printf 'tenant: bench\ncredentials:\n  username: bench\n  password: bench-password\n'
        printf 'server:\n  listen: 127.0.0.1:%s\nstore:\n  url: sqlite://synmon.db\n' "$port"
        printf 'checks:\n  interval: 1s\n  max_offset: 1s\n'
        printf '  http_keep_alive: false\n  journeys: []\n'
        [ -z "${MAX_IN_FLIGHT:-}" ] || printf '  max_in_flight: %s\n' "$MAX_IN_FLIGHT"
        printf '  http:\n'
        for i in $(seq 0 $((CHECKS - 1))); do printf '    - { name: c%04d, url: /health.json }\n' "$i"; done
    } >"$d/synmon.yaml"
    RUST_LOG=warn "$SYNMON_BIN" run --config "$d/synmon.yaml" 2>"$d/stderr" &
    local pid=$!
    track "$pid"
    sample_rss synmon "$pid"
    stall synmon "$pid"
    sleep "$WARMUP"
    local r0 n0 t0 w0 r1 n1 t1 w1
    r0=$(runs_total "$port"); n0=$(nginx_requests); t0=$(ticks "$pid"); w0=$(date +%s.%N)
    if [ -n "${PROFILE:-}" ]; then
        # perf's sampling costs synmon a little CPU too: a profiled round's figures read high.
        perf record -q -F 999 -g -p "$pid" -o "$PROFILE" -- sleep "$SECS" 2>/dev/null
    else
        sleep "$SECS"
    fi
    t1=$(ticks "$pid"); w1=$(date +%s.%N); n1=$(nginx_requests); r1=$(runs_total "$port")
    local hwm
    hwm=$(hwm_kib "$pid")
    kill -TERM "$pid"
    wait "$pid" || true
    local stored
    stored=$(sqlite3 "$d/synmon.db" 'SELECT count(*) FROM runs')
    local runs_all=$r1
    # cpu_us/probe, %core, rss MiB, probes/s, nginx requests, stored, counted overall
    python3 - "$t0" "$t1" "$w0" "$w1" "$r0" "$r1" "$hwm" "$CLK_TCK" "$n0" "$n1" "$stored" "$runs_all" <<'PY'
import sys
t0, t1, w0, w1, r0, r1, hwm, tck, n0, n1, stored, runs_all = map(float, sys.argv[1:])
cpu = (t1 - t0) / tck
wall = w1 - w0
probes = r1 - r0
print(f"{1e6 * cpu / probes:.0f} {100 * cpu / wall:.1f} {hwm / 1024:.1f} {probes / wall:.0f} {n1 - n0:.0f} {stored:.0f} {runs_all:.0f}")
PY
}

# --- blackbox_exporter -----------------------------------------------------------------------
blackbox_round() {
    local d="$DIR/blackbox.$1" port
    port=$(free_port)
    mkdir -p "$d"
    cat >"$d/blackbox.yml" <<'EOF'
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      method: GET
      preferred_ip_protocol: ip4
EOF
    prometheus-blackbox-exporter --config.file="$d/blackbox.yml" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$d/stderr" &
    local pid=$!
    track "$pid"
    sample_rss blackbox "$pid"
    stall blackbox "$pid"
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done
    local url="http://127.0.0.1:$port/probe?module=http_2xx&target=$TARGET_B"
    curl -sf "$url" | grep -q '^probe_success 1' || { echo "blackbox probe fails" >&2; exit 1; }
    local ka=()
    [ "$SCRAPE_KEEPALIVE" = 1 ] || ka=(-disable-keepalive)
    # hey -q is per worker: 50 workers x CHECKS/50 per second. The warm-up runs under load too.
    local conc=50
    hey -z "$((WARMUP + SECS + 2))s" -c "$conc" -q "$((CHECKS / conc))" "${ka[@]}" "$url" >"$d/hey.out" &
    local hey_pid=$!
    track "$hey_pid"
    sleep "$WARMUP"
    local n0 t0 w0 n1 t1 w1
    n0=$(nginx_requests "$NG_PORT_B"); t0=$(ticks "$pid"); w0=$(date +%s.%N)
    sleep "$SECS"
    t1=$(ticks "$pid"); w1=$(date +%s.%N); n1=$(nginx_requests "$NG_PORT_B")
    local hwm
    hwm=$(hwm_kib "$pid")
    wait "$hey_pid" || true
    kill -TERM "$pid"
    wait "$pid" || true
    local failed
    failed=$(awk '/^\s*\[[0-9]+\]/ && $1 != "[200]" {s+=$2} END{print s+0}' "$d/hey.out")
    # Probes in the span: what nginx answered in it (hey's own total covers the warm-up too).
    python3 - "$t0" "$t1" "$w0" "$w1" "$n0" "$n1" "$hwm" "$CLK_TCK" "$failed" <<'PY'
import sys
t0, t1, w0, w1, n0, n1, hwm, tck, failed = map(float, sys.argv[1:])
cpu = (t1 - t0) / tck
wall = w1 - w0
probes = n1 - n0 - 1  # the /stub read itself
print(f"{1e6 * cpu / probes:.0f} {100 * cpu / wall:.1f} {hwm / 1024:.1f} {probes / wall:.0f} {failed:.0f}")
PY
}

echo "bench-peers: $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "target: $TARGET (200 B JSON, private nginx); $CHECKS probes/s each, new connection per probe; $SECS s measured after $WARMUP s; scrape keep-alive: $SCRAPE_KEEPALIVE"
S_CPU=(); S_PCT=(); S_RSS=(); B_CPU=(); B_PCT=(); B_RSS=()
for round in $(seq "$ROUNDS"); do
    if [ -n "${TOGETHER:-}" ] && [ -z "${ONLY:-}" ]; then
        # Both at once: each sees the other's load, and both see it alike.
        synmon_round "$round" >"$DIR/together.synmon" &
        s_job=$!
        blackbox_round "$round" >"$DIR/together.blackbox"
        wait "$s_job"
        read -r cpu pct rss rate nreq stored runs_all <"$DIR/together.synmon"
        echo "round $round synmon:   ${cpu} us CPU per probe, ${pct}% of one core, peak RSS ${rss} MiB, ${rate} probes/s counted (nginx answered $nreq in the span, both together); $stored runs stored of $runs_all counted since start"
        S_CPU+=("$cpu"); S_PCT+=("$pct"); S_RSS+=("$rss")
        read -r cpu pct rss rate failed <"$DIR/together.blackbox"
        echo "round $round blackbox: ${cpu} us CPU per probe, ${pct}% of one core, peak RSS ${rss} MiB, ${rate} probes/s (nginx, both together), $failed scrapes not 200"
        B_CPU+=("$cpu"); B_PCT+=("$pct"); B_RSS+=("$rss")
        continue
    fi
    if [ "${ONLY:-}" != blackbox ]; then
        read -r cpu pct rss rate nreq stored runs_all < <(synmon_round "$round")
        echo "round $round synmon:   ${cpu} us CPU per probe, ${pct}% of one core, peak RSS ${rss} MiB, ${rate} probes/s counted (nginx answered $nreq in the span); $stored runs stored of $runs_all counted since start"
        S_CPU+=("$cpu"); S_PCT+=("$pct"); S_RSS+=("$rss")
    fi
    if [ "${ONLY:-}" != synmon ]; then
        read -r cpu pct rss rate failed < <(blackbox_round "$round")
        echo "round $round blackbox: ${cpu} us CPU per probe, ${pct}% of one core, peak RSS ${rss} MiB, ${rate} probes/s (nginx), $failed scrapes not 200"
        B_CPU+=("$cpu"); B_PCT+=("$pct"); B_RSS+=("$rss")
    fi
done
[ -z "${ONLY:-}" ] || exit 0
python3 - "${S_CPU[*]}" "${S_PCT[*]}" "${S_RSS[*]}" "${B_CPU[*]}" "${B_PCT[*]}" "${B_RSS[*]}" <<'PY'
import statistics as st, sys
s_cpu, s_pct, s_rss, b_cpu, b_pct, b_rss = ([float(x) for x in a.split()] for a in sys.argv[1:])
m = st.median
print(f"median over {len(s_cpu)} round(s):")
print(f"  synmon:   {m(s_cpu):.0f} us/probe, {m(s_pct):.1f}% of one core, peak RSS {m(s_rss):.1f} MiB")
print(f"  blackbox: {m(b_cpu):.0f} us/probe, {m(b_pct):.1f}% of one core, peak RSS {m(b_rss):.1f} MiB")
print(f"  ratio synmon/blackbox: CPU per probe {m(s_cpu) / m(b_cpu):.2f}x (goal <= 0.5x), peak RSS {m(s_rss) / m(b_rss):.2f}x (goal <= 1x)")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

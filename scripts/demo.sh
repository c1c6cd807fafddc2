#!/usr/bin/env bash
# The demo: builds the workspace, starts the RVP sandbox on 127.0.0.1:3000 (SQLite file
# rvp-sandbox.db in the repo folder) and the synmon daemon with synmon.example.yaml
# (status/API on http://127.0.0.1:3005, embedded SQLite store synmon.db, console logs).
# Installs Chromium + chromedriver on Debian when run as root and they are missing.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "demo: installing chromium chromium-driver (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "demo: Chromium and chromedriver are needed: sudo apt-get install chromium chromium-driver" >&2
    exit 2
  fi
fi
cargo build --workspace --release
./target/release/rvp-sandbox --listen 127.0.0.1:3000 --admin-token "${RVP_SANDBOX_ADMIN_TOKEN:-demo-admin}" &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -fsS http://127.0.0.1:3000/healthz >/dev/null 2>&1 && break
  sleep 0.2
done
echo "demo: sandbox on http://127.0.0.1:3000 (fault switches: POST /__sandbox/faults with 'Authorization: Bearer ${RVP_SANDBOX_ADMIN_TOKEN:-demo-admin}')"
echo "demo: synmon on http://127.0.0.1:3005  (/api/v1/checks, /metrics, /readyz)"
./target/release/synmon run --config synmon.example.yaml

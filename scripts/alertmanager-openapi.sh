#!/usr/bin/env bash
# Puts Alertmanager's API v2 definitions where the API v2 test reads them
# ($SYNMON_ALERTMANAGER_OPENAPI; default /usr/local/share/synmon/alertmanager-openapi.json as
# root, else ~/.cache/synmon/alertmanager-openapi.json).
#
# The definitions are taken from Debian's package golang-github-prometheus-alertmanager-dev
# (Alertmanager's Go source, 0.25 on Debian 12): api/v2/restapi/embedded_spec.go holds, as
# `SwaggerJSON`, the Swagger 2.0 document go-swagger generated from api/v2/openapi.yaml. Only
# that .deb is downloaded and only that file extracted (installing the package would pull in
# 160 Go source packages). The JSON written records the package and version it came from under
# `x-synmon-source`. Idempotent: does nothing when the file is there.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  default=/usr/local/share/synmon/alertmanager-openapi.json
else
  default="$HOME/.cache/synmon/alertmanager-openapi.json"
fi
out="${SYNMON_ALERTMANAGER_OPENAPI:-$default}"
if [ -s "$out" ]; then
  exit 0
fi
pkg=golang-github-prometheus-alertmanager-dev
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
if ! (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  (cd "$tmp" && apt-get download -qq "$pkg")
fi
deb="$(ls "$tmp"/*.deb)"
version="$(dpkg-deb -f "$deb" Version)"
mkdir -p "$tmp/x"
dpkg-deb --fsys-tarfile "$deb" |
  tar -x -C "$tmp/x" --wildcards '*/alertmanager/api/v2/restapi/embedded_spec.go'
mkdir -p "$(dirname "$out")"
python3 - "$(find "$tmp/x" -name embedded_spec.go)" "$out.tmp" "$pkg $version" <<'PY'
import json, re, sys
src, out, origin = sys.argv[1:]
text = open(src, encoding="utf-8").read()
m = re.search(r"\bSwaggerJSON = json\.RawMessage\(\[\]byte\(`(.*?)`\)\)", text, re.S)
if not m:
    sys.exit(f"no SwaggerJSON in {src}")
spec = json.loads(m.group(1))
assert spec.get("basePath") == "/api/v2/" and "gettableAlert" in spec["definitions"], "not Alertmanager's API v2"
spec["x-synmon-source"] = f"Debian {origin}: api/v2/restapi/embedded_spec.go (SwaggerJSON, generated from api/v2/openapi.yaml)"
json.dump(spec, open(out, "w"), indent=1, sort_keys=True)
PY
mv "$out.tmp" "$out"
echo "alertmanager-openapi: wrote $out from $pkg $version"

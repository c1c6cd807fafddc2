#!/bin/sh
# Seeds the one corpus the cargo-fuzz targets and the property tests (tests/it/props/) share:
# fuzz/corpus/<target>/, from the bad and good fixtures and the shipped journeys and rules, plus
# a few silence API bodies written here. Identical files are kept once. Run from anywhere:
#   fuzz/seed.sh
# It rewrites the seeded files (named bad--, good--, shipped--, seed--) and leaves the rest of
# the folder alone: inputs kept on purpose (found--: a fuzzer or property test found them;
# known--: reported before) stay.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
corpus="$root/fuzz/corpus"
cd "$root"

# seed TARGET NAME FILE: copies FILE as TARGET/NAME unless the same bytes are already there.
seed() {
    dir="$corpus/$1"
    sum=$(sha1sum "$3" | cut -d' ' -f1)
    if [ -z "$(grep -l -x "$sum" "$dir/.sums" 2>/dev/null)" ]; then
        cp "$3" "$dir/$2"
        echo "$sum" >>"$dir/.sums"
    fi
}

for t in config journey rules api_json; do
    mkdir -p "$corpus/$t"
    rm -f "$corpus/$t"/bad--* "$corpus/$t"/good--* "$corpus/$t"/shipped--* "$corpus/$t"/seed--*
    rm -f "$corpus/$t/.sums"
done

for f in tests/fixtures/bad/*/synmon.yaml; do
    seed config "bad--$(basename "$(dirname "$f")").yaml" "$f"
done
seed config "good--synmon.yaml" tests/fixtures/good/synmon.yaml
seed config "shipped--synmon.example.yaml" synmon.example.yaml

for f in tests/fixtures/bad/*/journeys/*.y*ml; do
    seed journey "bad--$(basename "$(dirname "$(dirname "$f")")")--$(basename "$f")" "$f"
done
for f in tests/fixtures/good/journeys/*.y*ml; do
    seed journey "good--$(basename "$f")" "$f"
done
for f in journeys/*.y*ml; do
    seed journey "shipped--$(basename "$f")" "$f"
done

for f in tests/fixtures/bad/*/alerts/*.y*ml; do
    seed rules "bad--$(basename "$(dirname "$(dirname "$f")")")--$(basename "$f")" "$f"
done
for f in alerts/*.y*ml; do
    seed rules "shipped--$(basename "$f")" "$f"
done

# Silence bodies: no fixtures exist for the API, so the seeds are written here: one valid body,
# then one per validation rule and one per shape error.
body() {
    printf '%s\n' "$2" >"$corpus/api_json/seed--$1.json"
}
body valid '{"matchers":{"check":"feed_push","location":"=~eu-.*"},"starts_at":"2026-01-01T12:00:00Z","ends_at":"2026-01-01T14:00:00Z","comment":"deploy window","created_by":"fuzz"}'
body no-start '{"matchers":{"alertname":"check_failing"},"ends_at":"2026-01-02T00:00:00Z","comment":"maintenance"}'
body ends-before-start '{"matchers":{"check":"x"},"starts_at":"2026-01-03T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","comment":"c"}'
body ends-in-past '{"matchers":{"check":"x"},"ends_at":"2020-01-01T00:00:00Z","comment":"c"}'
body far-future '{"matchers":{"check":"x"},"ends_at":"+99999-01-01T00:00:00Z","comment":"c"}'
body empty-comment '{"matchers":{"check":"x"},"ends_at":"2026-01-02T00:00:00Z","comment":"  "}'
body no-matchers '{"matchers":{},"ends_at":"2026-01-02T00:00:00Z","comment":"c"}'
body bad-label '{"matchers":{"1check":"x"},"ends_at":"2026-01-02T00:00:00Z","comment":"c"}'
body bad-regex '{"matchers":{"check":"=~(unclosed"},"ends_at":"2026-01-02T00:00:00Z","comment":"c"}'
body other-author '{"matchers":{"check":"x"},"ends_at":"2026-01-02T00:00:00Z","comment":"c","created_by":"someone-else"}'
body unknown-field '{"matchers":{"check":"x"},"ends_at":"2026-01-02T00:00:00Z","comment":"c","until":null}'
body null-end '{"matchers":{"check":"x"},"ends_at":null,"comment":"c"}'
body bad-date '{"matchers":{"check":"x"},"ends_at":"tomorrow","comment":"c"}'
body multiline "$(printf '{\n  "matchers": {"check": "x"},\n  "ends_at": "2026-01-02T00:00:00Z",\n  "comment": 7\n}')"
body truncated '{"matchers":{"check":"x"},"ends_at":"2026-01-0'
body trailing '{"matchers":{"check":"x"},"ends_at":"2026-01-02T00:00:00Z","comment":"c"} {}'

for t in config journey rules api_json; do
    rm -f "$corpus/$t/.sums"
    echo "$t: $(ls "$corpus/$t" | wc -l) files"
done

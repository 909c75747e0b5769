#!/usr/bin/env bash
# Runs each Go native fuzz target for a bounded time, one after another, and stops at the first
# failure. A failing input is written under the package's testdata/fuzz/<Target>/ by go test; commit
# it once the bug is fixed so it runs as a regression test with `go test ./...`.
# Usage: FUZZTIME=30s scripts/fuzz.sh [package:Target...]   (default: every target, 10s each)
# FUZZTIME may also be a count of inputs (30000x), which is what `make fuzz-short` uses in CI: on
# Go 1.26 a duration can end in a spurious "context deadline exceeded" (golang/go#75804).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(
    config:FuzzParseImageSet
    config:FuzzParseReference
    verify:FuzzParsePolicy
    archive:FuzzTarReader
    archive:FuzzCatalog
    archive:FuzzVolumeList
    archive:FuzzSignatureManifest
    archive:FuzzIndexJSON
    referrers:FuzzArtifactType
    referrers:FuzzTagSchemaIndex
  )
fi

for t in "${targets[@]}"; do
  pkg=${t%%:*}
  name=${t#*:}
  echo "== $pkg $name ($FUZZTIME)"
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "./$pkg"; then
    echo "fuzz.sh: $pkg $name failed; see above (a failing input is saved under $pkg/testdata/fuzz/$name/)" >&2
    exit 1
  fi
done

#!/usr/bin/env bash
# Installs the external tools the end-to-end tests and the demo use into .tools/bin,
# through `go install` only (no network other than the Go module proxy).
# Usage: scripts/install-tools.sh [tool...]   (default: registry cosign regctl; gremlins on request)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export GOBIN="$top/.tools/bin"
mkdir -p "$GOBIN"

declare -A pkgs=(
  [registry]="github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  [cosign]="github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
  [regctl]="github.com/regclient/regclient/cmd/regctl@v0.11.7"
  [gremlins]="github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0" # mutation testing (make mutate)
)
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(registry cosign regctl)
for t in "${tools[@]}"; do
  pkg=${pkgs[$t]:?unknown tool $t}
  want=${pkg##*@}
  stamp="$GOBIN/.$t.version"
  if [ -x "$GOBIN/$t" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  echo "install-tools: go install $pkg" >&2
  go install "$pkg"
  echo "$want" >"$stamp"
done

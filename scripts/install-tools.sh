#!/usr/bin/env bash
# Installs the external tools the end-to-end tests and the demo use into .tools/bin: Go tools through
# `go install` (the Go module proxy); imagepolicy (e2e/cmd/imagepolicy: containers/image, the
# evaluator of CRI-O, podman and skopeo, pulling under the policy.json airlock admission writes) built
# inside the e2e module, as it needs that module's go.podman.io/image/v5 and a build tag; skopeo (for
# make bench only; Debian's has sigstore disabled) from the Debian archive with apt-get; policy-tester
# (Sigstore policy-controller's evaluator) and kyverno (the Kyverno CLI) built inside their own
# modules, which `go install` refuses (replace directives): go mod download the module, then go build
# in its directory. helm (the Helm CLI, for the charts tests) is a plain go install; its stamp holds
# v4.3.2 because `helm version` prints only v4.3.
# Usage: scripts/install-tools.sh [tool...]   (default: registry cosign regctl imagepolicy policy-tester kyverno helm; gremlins, skopeo on request)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export GOBIN="$top/.tools/bin"
mkdir -p "$GOBIN"

declare -A pkgs=(
  [registry]="github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  [cosign]="github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
  [regctl]="github.com/regclient/regclient/cmd/regctl@v0.11.7"
  [gremlins]="github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0" # mutation testing (make mutate)
  [policy-tester]="github.com/sigstore/policy-controller@v0.13.1"   # built in its module, ./cmd/tester
  [kyverno]="github.com/kyverno/kyverno@v1.19.1"                    # built in its module, ./cmd/cli/kubectl-kyverno
  [helm]="helm.sh/helm/v4/cmd/helm@v4.3.2"                          # e2e charts tests (helm package, push, pull, template)
)
# The package to build inside the module, for the tools that go install cannot build.
declare -A inmodule=(
  [policy-tester]=./cmd/tester
  [kyverno]=./cmd/cli/kubectl-kyverno
)
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(registry cosign regctl imagepolicy policy-tester kyverno helm)

# install_apt PACKAGE: apt-get install, once, when the command is not there.
install_apt() {
  if command -v "$1" >/dev/null 2>&1; then
    return
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: no apt-get; install $1 with your package manager" >&2
    exit 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-tools: apt-get install $1" >&2
  $sudo apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$1" >&2
}

for t in "${tools[@]}"; do
  if [ "$t" = skopeo ]; then
    install_apt skopeo
    continue
  fi
  if [ "$t" = imagepolicy ]; then
    # go build is a no-op when nothing changed (the build cache); containers_image_openpgp avoids gpgme (cgo).
    (cd "$top/e2e" && go build -tags containers_image_openpgp,exclude_graphdriver_btrfs -o "$GOBIN/imagepolicy" ./cmd/imagepolicy)
    continue
  fi
  pkg=${pkgs[$t]:?unknown tool $t}
  want=${pkg##*@}
  stamp="$GOBIN/.$t.version"
  if [ -x "$GOBIN/$t" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  if [ -n "${inmodule[$t]:-}" ]; then
    dir=$(go mod download -json "$pkg" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "install-tools: go mod download $pkg gave no directory" >&2; exit 1; }
    echo "install-tools: go build ${inmodule[$t]} in $dir (several minutes cold)" >&2
    (cd "$dir" && go build -o "$GOBIN/$t" "${inmodule[$t]}")
    echo "$want" >"$stamp"
    continue
  fi
  echo "install-tools: go install $pkg" >&2
  go install "$pkg"
  echo "$want" >"$stamp"
done

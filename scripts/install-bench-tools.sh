#!/usr/bin/env bash
# install-bench-tools.sh: installs what `make bench` compares airlock against beyond the Go tools of
# install-tools.sh (regctl comes from there): skopeo, from the Debian archive (install-tools.sh
# installs it, for the e2e tests too).
set -euo pipefail
"$(dirname "$0")/install-tools.sh" skopeo
echo "skopeo: $(command -v skopeo) ($(skopeo --version))"

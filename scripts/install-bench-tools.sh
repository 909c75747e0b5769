#!/usr/bin/env bash
# install-bench-tools.sh: installs what `make bench` compares airlock against beyond the
# tools of install-tools.sh (regctl comes from there): skopeo, from the Debian archive.
# Without skopeo the benchmark still runs and reports the skopeo scenario as not installed.
set -euo pipefail

if command -v skopeo >/dev/null 2>&1; then
	echo "skopeo: $(command -v skopeo) ($(skopeo --version))"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-bench-tools.sh: no apt-get; install skopeo with your package manager" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends skopeo
echo "skopeo: $(command -v skopeo) ($(skopeo --version))"

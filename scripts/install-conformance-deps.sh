#!/usr/bin/env bash
# Installs the Debian packages `make conformance` needs beyond
# install-deps.sh: debootstrap, which makes the Debian root of the test
# images. Run as root. Idempotent.
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

apt_install install-conformance-deps debootstrap
echo "install-conformance-deps: ok"

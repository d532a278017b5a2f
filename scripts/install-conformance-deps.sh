#!/usr/bin/env bash
# Installs the Debian packages `make conformance` needs beyond
# install-deps.sh: debootstrap, which makes the Debian root of the test
# images, and bzip2 and make for busybox's source build. Run as root.
# Idempotent.
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

apt_install install-conformance-deps debootstrap bzip2 make
echo "install-conformance-deps: ok"

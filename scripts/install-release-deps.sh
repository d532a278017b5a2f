#!/usr/bin/env bash
# Installs what `make release` needs beyond scripts/install-deps.sh: the
# Debian cross compilers for arm64 and armhf, their static libseccomp (for
# runc), zstd, and qemu-user-static to smoke-test the foreign binaries.
# Run as root on Debian. Idempotent.
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
for a in arm64 armhf; do
	dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a"
done
pkgs=(
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
	libseccomp-dev:arm64 libseccomp-dev:armhf
	qemu-user-static binfmt-support
	zstd # packs tighter than the Go encoder (scripts/release/pack)
)
apt_install install-release-deps "${pkgs[@]}"
echo "install-release-deps: ok"

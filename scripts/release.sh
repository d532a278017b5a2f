#!/usr/bin/env bash
# Builds the released kubox files into DIST (default dist/): for each
# architecture, kubox-<arch> (a small launcher with kubox packed behind it,
# see pkg/sfx) and sha256sum-<arch>.txt, plus install.sh.
#
# Usage: scripts/release.sh [amd64|arm64|arm]...   (default: all three)
# KUBOX_LDFLAGS carries the version stamps and KUBOX_TAGS the build tags
# (the Makefile sets both). Other
# architectures than the host's need the Debian cross compilers and their
# static libseccomp: bash scripts/install-release-deps.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
GO=${GO:-go}
dist=${DIST:-dist}
ldflags=${KUBOX_LDFLAGS:--s -w}
tags=${KUBOX_TAGS:-providerless kustomize_disable_go_plugin_support}
host=$("$GO" env GOHOSTARCH)
if [ "$#" -eq 0 ]; then
	set -- amd64 arm64 arm
fi
mkdir -p "$dist"
# kubox builds against k8s.io/kubernetes with its patches (scripts/k8s-patch.sh).
bash scripts/k8s-patch.sh build/k8s
export GOWORK=$root/build/k8s/go.work

for arch in "$@"; do
	goarm=
	case $arch in
	amd64) triplet=x86_64-linux-gnu ;;
	arm64) triplet=aarch64-linux-gnu ;;
	arm) triplet=arm-linux-gnueabihf goarm=7 ;;
	*)
		echo "release: unknown architecture $arch (amd64, arm64, arm)" >&2
		exit 2
		;;
	esac
	cross=()
	if [ "$arch" != "$host" ]; then
		if ! command -v "$triplet-gcc" >/dev/null 2>&1; then
			echo "release: $triplet-gcc not found; run: bash scripts/install-release-deps.sh" >&2
			exit 1
		fi
		cross=(CC="$triplet-gcc" PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig")
	fi
	target=(env GOARCH="$arch" GOARM="$goarm" "${cross[@]}")
	work=build/release/$arch
	mkdir -p "$work"

	echo "release: $arch: payload"
	"${target[@]}" KUBOX_PAYLOAD_ZSTD_CLI=1 bash scripts/build-payload.sh "build/payload-$arch" >/dev/null
	echo "release: $arch: kubox"
	"${target[@]}" CGO_ENABLED=1 "$GO" build -tags "$tags" -ldflags "$ldflags" -o "$work/kubox" ./cmd/kubox
	"${target[@]}" CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$work/launcher" ./cmd/kubox-launcher
	echo "release: $arch: packing"
	"$GO" run ./scripts/release/pack "$work/launcher" "$work/kubox" "$dist/kubox-$arch"
	(cd "$dist" && sha256sum "kubox-$arch" >"sha256sum-$arch.txt")
	printf 'release: %-5s kubox %4d MB unpacked, %3d MB shipped (launcher %d KB)\n' "$arch" \
		$(($(stat -c %s "$work/kubox") / 1000000)) $(($(stat -c %s "$dist/kubox-$arch") / 1000000)) \
		$(($(stat -c %s "$work/launcher") / 1000))
done
cp install.sh "$dist/install.sh"
# Leave the host's payload in place for the next make build.
if [ "$*" != "$host" ]; then
	bash scripts/build-payload.sh build/payload >/dev/null
fi

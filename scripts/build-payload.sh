#!/usr/bin/env bash
# Builds the executables kubox carries inside itself (runc, containerd-shim-runc-v2,
# the CNI plugins, coredns, crictl and pause) into OUTDIR/bin, then packs them into
# pkg/bundle/assets/payload.tar.zst, which pkg/bundle embeds.
#
# Usage: scripts/build-payload.sh OUTDIR
# For another architecture set GOARCH (and GOARM), CC and PKG_CONFIG_LIBDIR
# (scripts/release.sh does).
#
# The upstream commands are pinned by the tool directives of the separate module
# scripts/payload, so their dependencies never touch kubox's own go.mod.
# Host packages: scripts/install-deps.sh (libseccomp-dev, pkgconf, musl-tools).
set -euo pipefail

if [ "$#" -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod=$root/scripts/payload
mkdir -p "$1/bin"
out=$(cd "$1" && pwd)
bin=$out/bin
asset=$root/pkg/bundle/assets/payload.tar.zst
GO=${GO:-go}
# The payload module stands alone: a workspace set for kubox's own build
# (scripts/release.sh sets one) would resolve its versions from kubox's.
export GOWORK=off

# Executables left from an earlier build would be packed too.
rm -rf "${bin:?}"/*

modversion() { "$GO" list -C "$mod" -m -f '{{.Version}}' "$1"; }
containerd_version=$(modversion github.com/containerd/containerd/v2)
cni_version=$(modversion github.com/containernetworking/plugins)
critools_version=$(modversion sigs.k8s.io/cri-tools)

# gobuild NAME PACKAGE [go build flags...]: builds one upstream command of the
# payload module into $bin/NAME.
gobuild() {
	local name=$1 pkg=$2
	shift 2
	echo "build-payload: $name ($pkg)"
	"$GO" build -C "$mod" -trimpath -o "$bin/$name" "$@" "$pkg"
}

# runc: cgo (nsenter, libseccomp), linked fully static.
runc_tags="seccomp netgo osusergo urfave_cli_no_docs"
if ! pkg-config --exists libseccomp 2>/dev/null || [ ! -e "$(pkg-config --variable=libdir libseccomp)/libseccomp.a" ]; then
	echo "build-payload: libseccomp (static) not found; run: bash scripts/install-deps.sh" >&2
	exit 1
fi
CGO_ENABLED=1 gobuild runc github.com/opencontainers/runc \
	-tags "$runc_tags" \
	-ldflags "-s -w -extldflags -static"

CGO_ENABLED=0 gobuild containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
	-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"

for p in main/bridge ipam/host-local main/loopback meta/portmap meta/bandwidth meta/firewall; do
	CGO_ENABLED=0 gobuild "${p##*/}" "github.com/containernetworking/plugins/plugins/$p" \
		-ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version"
done

# coredns: CoreDNS (the coredns module's version) with the curated plugin set
# of scripts/payload/coredns.
CGO_ENABLED=0 gobuild coredns ./coredns -ldflags "-s -w"

# crictl: `kubox crictl` execs it, preset to the node's containerd.
CGO_ENABLED=0 gobuild crictl sigs.k8s.io/cri-tools/cmd/crictl \
	-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$critools_version"

# pause: a few KB of C, static, so a sandbox needs nothing from the host.
# A cross build (CC set, e.g. aarch64-linux-gnu-gcc) links it with that
# compiler's static libc.
cc=${CC:-gcc}
if [ -z "${CC:-}" ] && command -v musl-gcc >/dev/null 2>&1; then
	cc=musl-gcc
fi
echo "build-payload: pause (scripts/pause/pause.c, $cc)"
"$cc" -static -Os -s -Wall -Wextra -Werror -o "$bin/pause" "$root/scripts/pause/pause.c"

# pack checks that every executable is static and writes the asset atomically.
echo "build-payload: packing $bin into ${asset#"$root"/}"
# (The packer runs here, so it is built for the host whatever GOARCH says.)
# KUBOX_PAYLOAD_ZSTD_CLI=1 (releases) packs with the zstd command, tighter.
packflags=()
if [ "${KUBOX_PAYLOAD_ZSTD_CLI:-}" = 1 ]; then
	packflags=(-cli)
fi
env -u GOARCH -u GOARM -u CC -u PKG_CONFIG_LIBDIR "$GO" run -C "$mod" ./pack "${packflags[@]}" "$bin" "$asset"

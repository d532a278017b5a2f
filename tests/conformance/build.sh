#!/usr/bin/env bash
# Builds what `make conformance` runs, into OUT (default build/conformance),
# from sources on this machine and the Debian archive only, no registry:
#   bin/e2e.test, bin/ginkgo  the upstream suite and runner, from the
#                             k8s.io/kubernetes version kubox embeds,
#                             stamped with that version
#   bin/agnhost, bin/nnp,     the suite's test programs, from the same module
#   bin/sample-apiserver      (and the aggregator spec's API server)
#   bin/etcd                  the etcd server kubox embeds, for the aggregator
#                             spec's etcd image
#   bin/registry              the registry run.sh serves the images from
#                             (tests/conformance/registry)
#   bin/busybox               busybox built from its release source (from the
#                             Debian archive), static, as upstream's image has it
#   layers/debian.tar         a debootstrapped Debian root with the tools the
#                             specs call (sh, coreutils, dig, nslookup, curl,
#                             wget, nc, ip, nginx, …)
#   layers/*.tar              the small layers some images add on top of it
#                             (busybox's applet links among them)
#   images.txt                the images the suite uses (e2e.test --list-images)
#   e2e-images.tar            every image kubox can make, named as the suite
#                             names it (tests/conformance/images)
#   missing-images.txt        those it cannot, each with the reason
# A step whose output is newer than its inputs is skipped. Run as root (for
# debootstrap); `make build` first (the pause binary comes from the payload).
# shellcheck disable=SC2016 # the bash -c scripts expand their own arguments
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$root/build/conformance}
GO=${GO:-go}
mod=$root/tests/conformance/e2e
mkdir -p "$out/bin" "$out/layers" "$out/work"
out=$(cd "$out" && pwd)

say() { echo "conformance-build: $*"; }
# fresh OUTPUT INPUT...: OUTPUT exists and is newer than every INPUT.
fresh() {
	local o=$1 i
	shift
	[ -e "$o" ] || return 1
	for i in "$@"; do
		[ "$o" -nt "$i" ] || return 1
	done
}
timed() {
	local what=$1 start=$SECONDS
	shift
	"$@"
	say "$what: $((SECONDS - start)) s"
}

kube_version=$(cd "$root" && "$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)
e2e_version=$(cd "$mod" && "$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)
if [ "$kube_version" != "$e2e_version" ]; then
	echo "conformance-build: kubox embeds k8s.io/kubernetes $kube_version but $mod pins $e2e_version" >&2
	exit 1
fi
minor=$(echo "$kube_version" | cut -d. -f2)
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

# The suite, its runner and test programs, from the nested module (its own
# go.mod keeps the e2e dependencies out of kubox's build and `go vet ./...`).
modfiles=("$mod/go.mod" "$mod/go.sum")
if ! fresh "$out/bin/e2e.test" "${modfiles[@]}"; then
	timed "e2e.test $kube_version" bash -c 'cd "$1" && "$2" test -c -vet=off -tags providerless -ldflags "$3" -o "$4" k8s.io/kubernetes/test/e2e' \
		_ "$mod" "$GO" "$ldflags" "$out/bin/e2e.test"
fi
build_tool() { # NAME PACKAGE
	fresh "$out/bin/$1" "${modfiles[@]}" && return 0
	timed "$1" bash -c 'cd "$1" && CGO_ENABLED=0 "$2" build -ldflags "-s -w" -o "$3" "$4"' _ "$mod" "$GO" "$out/bin/$1" "$2"
}
build_tool ginkgo github.com/onsi/ginkgo/v2/ginkgo
build_tool agnhost k8s.io/kubernetes/test/images/agnhost
build_tool nnp k8s.io/kubernetes/test/images/nonewprivs
build_tool sample-apiserver k8s.io/sample-apiserver
if ! fresh "$out/bin/etcd" "$root/go.mod" "$root/go.sum"; then
	timed etcd bash -c 'cd "$1" && CGO_ENABLED=0 "$2" build -ldflags "-s -w" -o "$3" go.etcd.io/etcd/server/v3' \
		_ "$root" "$GO" "$out/bin/etcd"
fi
if ! fresh "$out/bin/registry" "$root"/tests/conformance/registry/*.go "$root"/tests/ocipush/*.go "$root/go.sum"; then
	timed registry bash -c 'cd "$1" && CGO_ENABLED=0 "$2" build -ldflags "-s -w" -o "$3" ./tests/conformance/registry' \
		_ "$root" "$GO" "$out/bin/registry"
fi

# layer DIR TAR: a reproducible layer of DIR's tree (owners kept by number,
# times zeroed, /dev, /proc and /sys left empty for the runtime).
layer() {
	tar --numeric-owner --sort=name --mtime=@0 --format=gnu \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		-C "$1" -cf "$2.tmp" . && mv "$2.tmp" "$2"
}

# The Debian root. The package list is the cache key.
packages=busybox,curl,wget,bind9-dnsutils,netcat-openbsd,iproute2,procps,socat,nginx-light,iputils-ping
suite=bookworm
stamp="$suite $packages"
if [ "$(cat "$out/layers/debian.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -e "$out/layers/debian.tar" ]; then
	command -v debootstrap >/dev/null || {
		echo "conformance-build: debootstrap missing: run scripts/install-conformance-deps.sh" >&2
		exit 1
	}
	rootfs=$out/work/debian-root
	rm -rf "$rootfs"
	timed "debootstrap $suite" debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" http://deb.debian.org/debian >"$out/work/debootstrap.log"
	# The agnhost image's user and group, which a SupplementalGroups spec
	# expects to find in /etc/passwd and /etc/group.
	chroot "$rootfs" groupadd -g 50000 group-defined-in-image
	chroot "$rootfs" useradd -u 1000 -M -G group-defined-in-image user-defined-in-image
	# The runtime provides these; apt's caches and the docs are dead weight.
	rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{doc,man,info,locale}/* \
		"$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname "$rootfs"/var/log/*.log
	timed "debian layer" layer "$rootfs" "$out/layers/debian.tar"
	echo "$stamp" >"$out/layers/debian.stamp"
	rm -rf "$rootfs"
fi

# busybox from its source, with busybox's default configuration, as
# upstream's busybox image is made: Debian's build drops environment
# variables whose names are not shell identifiers ("data-1", which the
# ConfigMap and Secret env specs read back through `sh -c env`).
busybox_version=1.37.0
busybox_sha256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
if [ "$(cat "$out/bin/busybox.stamp" 2>/dev/null)" != "$busybox_version" ] || [ ! -x "$out/bin/busybox" ]; then
	src=$out/work/busybox-src
	rm -rf "$src" && mkdir -p "$src"
	curl -fsSL -o "$src.tar.bz2" "http://deb.debian.org/debian/pool/main/b/busybox/busybox_$busybox_version.orig.tar.bz2"
	echo "$busybox_sha256  $src.tar.bz2" | sha256sum -c --quiet
	tar -xjf "$src.tar.bz2" -C "$src" --strip-components=1
	timed "busybox $busybox_version" bash -c 'cd "$1" && make defconfig >/dev/null &&
		sed -i "s/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/" .config &&
		make -j"$(nproc)" busybox >build.log 2>&1 || { tail -20 build.log >&2; exit 1; }' _ "$src"
	env -i data-1=kept "$src/busybox" sh -c env | grep -qx data-1=kept || {
		echo "conformance-build: busybox $busybox_version's sh drops the environment variable data-1" >&2
		exit 1
	}
	install -m 0755 "$src/busybox" "$out/bin/busybox"
	echo "$busybox_version" >"$out/bin/busybox.stamp"
	rm -rf "$src" "$src.tar.bz2"
fi

# The small layers, each from a staging tree.
kube=$(cd "$mod" && "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)
pause=$root/build/payload/bin/pause
[ -x "$pause" ] || {
	echo "conformance-build: $pause missing: run make build" >&2
	exit 1
}
stage() { # NAME INPUT...: a fresh staging tree for layers/NAME.tar, or fail when it is up to date
	fresh "$out/layers/$1.tar" "${@:2}" && return 1
	rm -rf "$out/work/$1" && mkdir -p "$out/work/$1"
}
if stage agnhost "$out/bin/agnhost"; then
	s=$out/work/agnhost
	install -m 0755 "$out/bin/agnhost" "$s/agnhost"
	ln -s agnhost "$s/agnhost-2" # the entrypoint specs run it by this name
	install -m 0644 "$kube/test/images/agnhost/porter/localhost.crt" "$kube/test/images/agnhost/porter/localhost.key" "$s/"
	mkdir -m 0755 "$s/uploads" # netexec's upload directory
	layer "$s" "$out/layers/agnhost.tar"
fi
for img in kitten nautilus; do
	if stage "$img" "$mod/go.sum"; then
		install -m 0644 "$kube/test/images/$img/html/"* "$out/work/$img/"
		layer "$out/work/$img" "$out/layers/$img.tar"
	fi
done
# The busybox image's shell and tools are busybox's, as upstream's are: specs
# compare what they print (ash's "can't create", not dash's "cannot
# create"). This layer puts the source-built binary over Debian's and links
# every applet to it, in /bin as upstream's image has them all (the sysctl
# spec runs /bin/sysctl) and where busybox files it (a merged /usr: bin and
# sbin live under usr/).
if stage busybox "$out/bin/busybox" "$root/tests/conformance/build.sh"; then
	install -D -m 0755 "$out/bin/busybox" "$out/work/busybox/usr/bin/busybox"
	for applet in $("$out/bin/busybox" --list-full); do
		case $applet in
		bin/* | sbin/*) applet=usr/$applet ;;
		usr/*) ;;
		*) continue ;; # linuxrc
		esac
		name=${applet##*/}
		[ "$name" != busybox ] || continue
		for dir in usr/bin "$(dirname "$applet")"; do
			mkdir -p "$out/work/busybox/$dir"
			ln -sfn /usr/bin/busybox "$out/work/busybox/$dir/$name"
		done
	done
	layer "$out/work/busybox" "$out/layers/busybox.tar"
fi
if stage nnp "$out/bin/nnp"; then
	install -D -m 4755 "$out/bin/nnp" "$out/work/nnp/usr/local/bin/nnp"
	layer "$out/work/nnp" "$out/layers/nnp.tar"
fi
if stage sample-apiserver "$out/bin/sample-apiserver"; then
	install -m 0755 "$out/bin/sample-apiserver" "$out/work/sample-apiserver/sample-apiserver"
	layer "$out/work/sample-apiserver" "$out/layers/sample-apiserver.tar"
fi
if stage etcd "$out/bin/etcd"; then
	install -D -m 0755 "$out/bin/etcd" "$out/work/etcd/usr/local/bin/etcd"
	layer "$out/work/etcd" "$out/layers/etcd.tar"
fi
if stage pause "$pause"; then
	install -m 0755 "$pause" "$out/work/pause/pause"
	layer "$out/work/pause" "$out/layers/pause.tar"
fi

# The images, named from the suite's own list.
if ! fresh "$out/images.txt" "$out/bin/e2e.test"; then
	"$out/bin/e2e.test" --list-images >"$out/images.txt.tmp"
	mv "$out/images.txt.tmp" "$out/images.txt"
fi
if ! fresh "$out/e2e-images.tar" "$out/images.txt" "$out"/layers/*.tar "$root"/tests/conformance/images/*.go "$root"/pkg/images/oci/*.go; then
	(cd "$root" && "$GO" build -o "$out/work/images" ./tests/conformance/images)
	timed "image archive" "$out/work/images" -list "$out/images.txt" -layers "$out/layers" \
		-out "$out/e2e-images.tar" -missing "$out/missing-images.txt"
fi
rm -rf "$out/work"
say "ok: $out"

#!/usr/bin/env bash
# Installs the Debian packages kubox's build and tests need. Run as root.
# Idempotent: packages already present are left alone.
set -euo pipefail

pkgs=(
	gcc libc6-dev make git # cgo build (SQLite)
	etcd-server            # external-datastore tests
	iproute2 procps        # tests inspect listeners and processes
	iptables kmod          # kube-proxy, CNI plugins, modprobe
	nftables               # kube-proxy proxy-mode=nftables
	curl                   # tests reach Services from the host
	wget shellcheck        # install.sh: second downloader, lint (tests/install)
	systemd                # systemd-analyze verify of the installed unit
	libseccomp-dev pkgconf # static runc with seccomp (make payload)
	musl-tools             # small static pause (make payload)
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts etcd as a service on install; kubox's tests run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
	systemctl disable --now etcd >/dev/null 2>&1 || true
fi
echo "install-deps: ok"

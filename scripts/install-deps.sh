#!/usr/bin/env bash
# Installs the Debian packages kubox's build and tests need. Run as root.
# Idempotent: packages already present are left alone.
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

pkgs=(
	gcc libc6-dev make git # cgo build (SQLite)
	etcd-server            # external-datastore tests
	etcd-client            # etcdctl: restores kubox's etcd snapshots in tests
	postgresql             # external SQL datastore tests (initdb, pg_ctl)
	mariadb-server         # external SQL datastore tests (mariadb-install-db, mariadbd)
	iproute2 procps        # tests inspect listeners and processes
	iptables kmod          # kube-proxy, CNI plugins, modprobe
	ipset                  # network policy (kube-router's controller)
	nftables               # kube-proxy proxy-mode=nftables
	curl                   # tests reach Services from the host
	wget shellcheck        # install.sh: second downloader, lint (tests/install)
	systemd                # systemd-analyze verify of the installed unit
	libseccomp-dev pkgconf # static runc with seccomp (make payload)
	musl-tools             # small static pause (make payload)
	zstd                   # packs released files (make release)
)

apt_install install-deps "${pkgs[@]}"
# Debian starts these as services on install; kubox's tests run their own,
# on loopback ports of their choosing.
for svc in etcd postgresql mariadb; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$svc" ] && service "$svc" status >/dev/null 2>&1; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done
echo "install-deps: ok"

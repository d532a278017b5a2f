#!/usr/bin/env bash
# Checks what `make release` made: every kubox-<arch> matches its checksum
# file, unpacks itself, and the kubox inside prints its version and runs
# check-config, the arm ones under qemu-user-static. Prints each file's
# size, and fails when a shipped file is larger than MAX_MB (default 75,
# decimal megabytes).
#
# Usage: scripts/test-release.sh [amd64|arm64|arm]...   (default: all three)
set -euo pipefail
dist=${DIST:-dist}
max_mb=${MAX_MB:-75}
status=0
if [ "$#" -eq 0 ]; then
	set -- amd64 arm64 arm
fi
for arch in "$@"; do
	f=$dist/kubox-$arch
	if [ ! -s "$f" ]; then
		echo "test-release: $f missing; run make release" >&2
		exit 1
	fi
	(cd "$dist" && sha256sum --quiet -c "sha256sum-$arch.txt")
	case $arch in
	amd64) qemu=() ;;
	arm64) qemu=(qemu-aarch64-static) ;;
	arm) qemu=(qemu-arm-static) ;;
	*)
		echo "test-release: unknown architecture $arch (amd64, arm64, arm)" >&2
		exit 2
		;;
	esac
	tmp=$(mktemp -d)
	# Without binfmt_misc the launcher cannot exec a foreign binary, so it
	# only unpacks here; the unpacked kubox then runs under qemu itself.
	KUBOX_DATA_DIR=$tmp "${qemu[@]}" "$f" --version >"$tmp/out" 2>&1 || true
	inner=
	for candidate in "$tmp"/data/kubox-*/kubox; do
		[ -e "$candidate" ] && inner=$candidate
	done
	if [ -z "$inner" ]; then
		echo "test-release: $arch: the launcher unpacked nothing: $(cat "$tmp/out")" >&2
		status=1
	elif version=$("${qemu[@]}" "$inner" --version 2>&1) && echo "$version" | grep -q '^kubox '; then
		printf 'test-release: %-5s %3d MB shipped, %3d MB unpacked: %s\n' "$arch" \
			$(($(stat -c %s "$f") / 1000000)) $(($(stat -c %s "$inner") / 1000000)) "$(echo "$version" | head -n 1)"
	else
		echo "test-release: $arch: kubox --version failed: $version" >&2
		status=1
	fi
	# check-config reads this host's kernel: it must run to the end and
	# find what every node needs (its exit code says so).
	if [ -n "$inner" ] && ! "${qemu[@]}" "$inner" check-config >"$tmp/check" 2>&1; then
		echo "test-release: $arch: kubox check-config failed:" >&2
		grep -v '^ok ' "$tmp/check" >&2 || true
		status=1
	elif [ -n "$inner" ]; then
		echo "test-release: $arch: check-config: $(grep -c '^ok ' "$tmp/check") checks ok"
	fi
	if [ "$(stat -c %s "$f")" -gt $((max_mb * 1000000)) ]; then
		echo "test-release: $arch: $f is $(($(stat -c %s "$f") / 1000000)) MB, more than the $max_mb MB a release may ship" >&2
		status=1
	fi
	rm -rf "$tmp"
done
exit $status

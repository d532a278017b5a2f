#!/usr/bin/env bash
# Builds kubox's test images from the static echo program, with no registry:
#   OUTDIR/echo.tar         OCI image layout archive, ref kubox.test/echo:v1
#   OUTDIR/echo-docker.tar  docker-archive,           ref kubox.test/echo-docker:v1
#   OUTDIR/echo-hello.tar   OCI, ref kubox.test/echo-hello:v1, default arguments
#                           "hello": another image ID over the same layer
# The first two run /echo with default arguments "serve"; pods pick another command
# with args (e.g. ["hello"]).
# Usage: tests/images/build.sh OUTDIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GO=${GO:-go}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$work/echo" ./tests/images/echo
"$GO" build -o "$work/imagetool" ./tests/imagetool

"$work/imagetool" -bin "$work/echo" -ref kubox.test/echo:v1 -entrypoint /echo -cmd serve \
	-format oci -out "$out/echo.tar"
"$work/imagetool" -bin "$work/echo" -ref kubox.test/echo-docker:v1 -entrypoint /echo -cmd serve \
	-format docker -out "$out/echo-docker.tar"
"$work/imagetool" -bin "$work/echo" -ref kubox.test/echo-hello:v1 -entrypoint /echo -cmd hello \
	-format oci -out "$out/echo-hello.tar"

size() { stat -c %s "$1"; }
printf '%-28s %10s bytes\n' "echo (static binary)" "$(size "$work/echo")"
printf '%-28s %10s bytes\n' "$out/echo.tar" "$(size "$out/echo.tar")"
printf '%-28s %10s bytes\n' "$out/echo-docker.tar" "$(size "$out/echo-docker.tar")"
printf '%-28s %10s bytes\n' "$out/echo-hello.tar" "$(size "$out/echo-hello.tar")"

#!/usr/bin/env bash
# k8s-patch.sh OUTDIR: makes OUTDIR/kubernetes, the k8s.io/kubernetes module
# kubox's go.mod requires with kubox's patches applied (files hard-linked from
# the module cache, patched files rewritten), and OUTDIR/go.work, a Go
# workspace that builds kubox against it. Every kubox build and test runs with
# GOWORK=OUTDIR/go.work (Makefile, scripts/release.sh); a plain `go build`
# builds unpatched upstream, and upstream's own commands in the bench are
# built that way on purpose.
#
# Each patch edits an exact upstream passage; the script fails if a passage
# is not found exactly once, so a Kubernetes upgrade cannot drop one silently.
#
# csi: pkg/volume/csi keeps its node-info manager and its driver-registration
# plugin in package variables, which every csiPlugin.Init sets. The kubelet
# inits the plugin with its node's name; the controller-manager's volume
# controllers init it too, with no node name. kubox runs both in one process,
# so when the controllers start after the kubelet (on a single server now and
# then, on an HA server that gains the controller-manager lease later always),
# the kubelet's CSINode set-up and every CSI driver registration on that node
# run with an empty node name: "resource name may not be empty", and after
# 140 s of retries the kubelet's klog.Fatalf ends the whole server. Patched:
# only a kubelet's Init sets the two variables, which only the kubelet uses.
set -euo pipefail
out=${1:?usage: k8s-patch.sh OUTDIR}
GO=${GO:-go}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' go.mod)
goversion=$(awk '$1 == "go" { print $2; exit }' go.mod)
[ -n "$version" ] || { echo "k8s-patch: no k8s.io/kubernetes requirement in go.mod" >&2; exit 1; }
# Outside any module and workspace, so that this works before OUTDIR exists.
src=$(cd / && GOWORK=off GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@$version" |
	awk -F'"' '$2 == "Dir" { print $4 }')
[ -d "$src" ] || { echo "k8s-patch: k8s.io/kubernetes@$version not in the module cache" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
mod=$out/kubernetes
stamp="$version $(sha256sum "$0" | cut -d' ' -f1)"
if [ "$(cat "$out/stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$mod" "$out/stamp"
	chmod -R u+w "$mod.tmp" 2>/dev/null || true
	rm -rf "$mod.tmp"
	# Hard links where the file system allows: the copy costs no space.
	cp -al "$src" "$mod.tmp" 2>/dev/null || cp -r "$src" "$mod.tmp"
	find "$mod.tmp" -type d -exec chmod u+w {} +

	# patch FILE AWK: rewrites FILE (relative to the module) through the awk
	# program, which counts the passages it changed in found.
	patch() {
		local f=$mod.tmp/$1
		awk "$2"'
			END { if (found != 1) { printf "k8s-patch: %s: the patched passage was found %d times, want 1\n", FILENAME, found > "/dev/stderr"; exit 1 } }
		' "$f" >"$f.new"
		rm -f "$f"
		mv "$f.new" "$f"
	}

	patch pkg/volume/csi/csi_plugin.go '
		held != "" {
			if ($0 == "\tPluginHandler.csiPlugin = p") {
				found++
				print "\t// kubox: only a kubelet sets the node-info manager and the registration"
				print "\t// handler; a controller-manager in the same process must not replace them."
				print "\tif _, onKubelet := host.(volume.KubeletVolumeHost); onKubelet {"
				print "\t" held
				print "\t\tPluginHandler.csiPlugin = p"
				print "\t}"
				held = ""
				next
			}
			print held
			held = ""
		}
		$0 == "\tnim = nodeinfomanager.NewNodeInfoManager(host.GetNodeName(), host, migratedPlugins)" { held = $0; next }
		{ print }
	'
	mv "$mod.tmp" "$mod"
	echo "$stamp" >"$out/stamp"
fi

cat >"$out/go.work" <<WORK
go $goversion

use $root

replace k8s.io/kubernetes $version => $mod
WORK

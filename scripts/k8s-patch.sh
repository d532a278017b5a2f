#!/usr/bin/env bash
# k8s-patch.sh OUTDIR: makes OUTDIR/kubernetes and OUTDIR/flannel, the
# k8s.io/kubernetes, k8s.io/apiserver, k8s.io/client-go and
# github.com/flannel-io/flannel modules kubox's go.mod
# requires with kubox's patches applied (files hard-linked from the module
# cache, patched files rewritten), and OUTDIR/go.work, a Go workspace that
# builds kubox against them. Every kubox build and test runs with
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
#
# pods: the kubelet watches the API for its pods only once its node informer
# has listed, which it checks every second, the first check right after the
# informer starts; so a kubelet, restarted or new, learnt of its pods (the
# ones a restart must start again, and every new one) a second late.
# Patched: checked every 50 ms.
#
# proxy-node: kube-proxy, before anything else, waits for its Node to have
# addresses, checking its node informer every second. Started beside the
# kubelet, it first looks before the node has registered, so its rules came
# up to a second after the addresses did. Patched: checked every 50 ms.
#
# flannel: its Kubernetes subnet manager, once made, checks whether its node
# informer has listed every second, the first check before the list can
# have returned, so it is ready one second after it is made, though the list
# takes a few milliseconds on a local API server. A restarted node's pod
# network waits for it. Patched: checked every 50 ms.
#
# loopback: on every start, before it serves, the API server makes a
# self-signed pair for its in-process loopback client: a CA and a serving
# certificate, each with a new RSA-2048 key. The prime search takes 50-350 ms
# of CPU on a core the start needs for everything else. The pair never leaves
# the process (the loopback client trusts exactly that certificate). Patched:
# one self-signed certificate with an ECDSA P-256 key, made in microseconds.
#
# informers: every component waits for its informers' first lists by
# checking them every 100 ms, and a start is a chain of such waits (the
# kubelet's, kube-proxy's node and then its Services and EndpointSlices,
# the controllers'); each loses half a period on average. The check only
# reads a flag. Patched: every 20 ms.
#
# bootstrap: two of the API server's post-start hooks, the one that makes
# the system priority classes and the one that reconciles the default RBAC
# roles, wait a full second before their first try (wait.Poll), and /readyz
# fails until both are done; every start, first or restart, served nothing
# ready for that second though the hooks' own work takes 20-400 ms. Patched:
# the first try at once, retries every 100 ms, the same 30 s limit.
set -euo pipefail
out=${1:?usage: k8s-patch.sh OUTDIR}
GO=${GO:-go}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
goversion=$(awk '$1 == "go" { print $2; exit }' go.mod)
mkdir -p "$out"
out=$(cd "$out" && pwd)
script_sum=$(sha256sum "$0" | cut -d' ' -f1)

# patch FILE AWK: rewrites FILE (relative to the module being prepared)
# through the awk program, which counts the passages it changed in found.
patch() {
	local f=$tmp/$1
	awk "$2"'
		END { if (found != 1) { printf "k8s-patch: %s: the patched passage was found %d times, want 1\n", FILENAME, found > "/dev/stderr"; exit 1 } }
	' "$f" >"$f.new"
	rm -f "$f"
	mv "$f.new" "$f"
}

# prepare MODULE DIR PATCHES: OUTDIR/DIR becomes MODULE at go.mod's version
# with the function PATCHES applied, unless it already is; replaces gains
# the workspace's replace line for it.
replaces=
prepare() {
	local module=$1 dir=$2 patches=$3 version src stamp
	version=$(awk -v m="$module" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod)
	[ -n "$version" ] || { echo "k8s-patch: no $module requirement in go.mod" >&2; exit 1; }
	# Outside any module and workspace, so that this works before OUTDIR exists.
	src=$(cd / && GOWORK=off GOFLAGS=-mod=mod "$GO" mod download -json "$module@$version" |
		awk -F'"' '$2 == "Dir" { print $4 }')
	[ -d "$src" ] || { echo "k8s-patch: $module@$version not in the module cache" >&2; exit 1; }
	local mod=$out/$dir
	tmp=$mod.tmp
	stamp="$version $script_sum"
	if [ "$(cat "$mod.stamp" 2>/dev/null)" != "$stamp" ]; then
		rm -rf "$mod" "$mod.stamp"
		chmod -R u+w "$tmp" 2>/dev/null || true
		rm -rf "$tmp"
		# Hard links where the file system allows: the copy costs no space.
		cp -al "$src" "$tmp" 2>/dev/null || cp -r "$src" "$tmp"
		find "$tmp" -type d -exec chmod u+w {} +
		"$patches"
		mv "$tmp" "$mod"
		echo "$stamp" >"$mod.stamp"
	fi
	replaces+="replace $module $version => $mod"$'\n'
}

kubernetes_patches() {
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
	patch pkg/kubelet/config/apiserver.go '
		$0 == "const WaitForAPIServerSyncPeriod = 1 * time.Second" {
			found++
			print "// kubox: 50 ms; the first check comes before the node informer can have listed."
			$0 = "const WaitForAPIServerSyncPeriod = 50 * time.Millisecond"
		}
		{ print }
	'
	local f
	for f in pkg/registry/scheduling/rest/storage_scheduling.go pkg/registry/rbac/rest/storage_rbac.go; do
		patch "$f" '
			$0 == "\t\terr := wait.Poll(1*time.Second, 30*time.Second, func() (done bool, err error) {" {
				found++
				print "\t\t// kubox: the first try at once, retries every 100 ms."
				sub(/wait\.Poll\(1\*time\.Second/, "wait.PollImmediate(100*time.Millisecond")
			}
			{ print }
		'
	done
	patch pkg/proxy/node.go '
		$0 == "\treturn newNodeManager(ctx, client, resyncInterval, nodeName, watchPodCIDRs, os.Exit, time.Second, 30*time.Second, 5*time.Minute)" {
			found++
			print "\t// kubox: the node informer is checked every 50 ms, not every second."
			sub(/os\.Exit, time\.Second/, "os.Exit, 50*time.Millisecond")
		}
		{ print }
	'
}

apiserver_patches() {
	patch pkg/server/options/serving_with_loopback.go '
		$0 == "\tcertPem, keyPem, err := certutil.GenerateSelfSignedCertKeyWithOptions(certutil.SelfSignedCertKeyOptions{" {
			found++
			print "\t// kubox: one ECDSA P-256 certificate, see kubox_loopback.go."
			sub(/certutil\.GenerateSelfSignedCertKeyWithOptions/, "kuboxLoopbackCertKey")
		}
		{ print }
	'
	cat >"$tmp/pkg/server/options/kubox_loopback.go" <<'GO'
package options

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

// kuboxLoopbackCertKey makes the loopback client's serving certificate:
// self-signed, for opts.Host only, with an ECDSA P-256 key. The loopback
// client trusts this one certificate, so it needs no separate CA.
func kuboxLoopbackCertKey(opts certutil.SelfSignedCertKeyOptions) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return nil, nil, err
	}
	// An hour early, for clocks that disagree.
	from := time.Now().Add(-time.Hour)
	tmpl := x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: opts.Host + "@" + from.Format("20060102T150405Z")},
		NotBefore:             from,
		NotAfter:              from.Add(opts.MaxAge),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{opts.Host},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
GO
}

client_go_patches() {
	patch tools/cache/shared_informer.go '
		$0 == "\tsyncedPollPeriod = 100 * time.Millisecond" {
			found++
			print "\t// kubox: 20 ms; the check reads a flag, and a start waits on a chain of them."
			$0 = "\tsyncedPollPeriod = 20 * time.Millisecond"
		}
		{ print }
	'
}

flannel_patches() {
	patch pkg/subnet/kube/kube.go '
		$0 == "\t\terr = wait.PollUntilContextTimeout(ctx, time.Second, nodeControllerSyncTimeout, true, func(context.Context) (bool, error) {" {
			found++
			print "\t\t// kubox: checked every 50 ms; the first check comes before the list returns."
			sub(/time\.Second/, "50*time.Millisecond")
		}
		{ print }
	'
}

prepare k8s.io/kubernetes kubernetes kubernetes_patches
prepare k8s.io/apiserver apiserver apiserver_patches
prepare k8s.io/client-go client-go client_go_patches
prepare github.com/flannel-io/flannel flannel flannel_patches
rm -f "$out/stamp" # the single stamp of earlier versions of this script

cat >"$out/go.work" <<WORK
go $goversion

use $root

$replaces
WORK

#!/usr/bin/env bash
# Runs the Kubernetes conformance suite against a kubox server and a kubox
# agent, each in a network namespace of its own on a bridge, with the images
# tests/conformance/build.sh made (imported from agent/images at start). A
# registry on the bridge serves the same images, as each node's mirror of
# registry.k8s.io, for the specs whose pull policy is Always. Writes the
# JUnit report and summary.md into RESULTS.
#
# Takes the host's node lock for its whole life; tears everything down
# (processes by PID, `kubox killall`, namespaces, interfaces, cgroups, the
# nodes' directories) on any exit. Run as root, after build.sh.
#
# Environment: FOCUS and SKIP (ginkgo regular expressions; default all
# [Conformance] specs but [Serial] and [Disruptive] ones), NODES (parallel
# ginkgo processes, default 4), RESULTS (default results/conformance),
# CONFORMANCE_BUILD (default build/conformance), KUBOX_BIN, DATASTORE
# (sqlite, the default, or etcd: the server's embedded etcd, --cluster-init),
# GINKGO_ARGS and E2E_ARGS (more flags for ginkgo and for e2e.test).
# shellcheck disable=SC2317 # functions called from traps and through wait_for
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The lock is held on fd 9 by this process itself, so that a signal to it
# tears down before the lock goes; what it starts gets fd 9 closed.
lock=/tmp/kubox-node.lock
exec 9>>"$lock"
if ! flock -n 9; then
	echo "conformance: waiting for $lock: another kubox node runs on this host" >&2
	flock 9
fi

FOCUS=${FOCUS:-'\[Conformance\]'}
SKIP=${SKIP:-'\[Serial\]|\[Disruptive\]'}
NODES=${NODES:-4}
DATASTORE=${DATASTORE:-sqlite}
case $DATASTORE in
sqlite) server_args=() datastore="SQLite" ;;
etcd) server_args=(--cluster-init) datastore="embedded etcd" ;;
*) echo "conformance: DATASTORE=$DATASTORE: use sqlite or etcd" >&2; exit 2 ;;
esac
GINKGO_ARGS=${GINKGO_ARGS:-}
E2E_ARGS=${E2E_ARGS:-}
results=${RESULTS:-$root/results/conformance}
build=${CONFORMANCE_BUILD:-$root/build/conformance}
kubox=${KUBOX_BIN:-$root/bin/kubox}
for f in "$kubox" "$build/bin/e2e.test" "$build/bin/ginkgo" "$build/bin/registry" "$build/e2e-images.tar"; do
	[ -e "$f" ] || { echo "conformance: $f missing: run make conformance (or build.sh)" >&2; exit 1; }
done

say() { echo "conformance: $(date +%T) $*"; }
bridge=kbxc0 prefix=10.198.0.
work=$(mktemp -d "$build/run.XXXXXX")
made_netns_mount=0
mountpoint -q /run/netns 2>/dev/null || made_netns_mount=1
declare -A pid cgroups
fence=() # the host's FORWARD rule that keeps the nodes' traffic on the bridge
suite_pid=
registry_pid=

# cgroups_for NAME: a cgroup NAME below this script's own in every
# hierarchy where it has one (not the root), as the nodes' parents: kubox
# nests what it makes below the cgroup it starts in, one node per cgroup.
cgroups_for() {
	local ctrl path mount dir f list=()
	while IFS=: read -r _ ctrl path; do
		[ "$path" = / ] && continue
		case $ctrl in
		"") mount=/sys/fs/cgroup/unified; [ -e /sys/fs/cgroup/cgroup.controllers ] && mount=/sys/fs/cgroup ;;
		name=*) mount=/sys/fs/cgroup/${ctrl#name=} ;;
		*) mount=/sys/fs/cgroup/$ctrl ;;
		esac
		[ -e "$mount$path/cgroup.procs" ] || continue
		dir=$mount$path/$1
		mkdir -p "$dir"
		for f in cpuset.cpus cpuset.mems; do
			[ -e "$mount$path/$f" ] && cat "$mount$path/$f" >"$dir/$f"
		done
		list+=("$dir")
	done </proc/self/cgroup
	echo "${list[*]}"
}

# note_new_cgroup_dirs NAME: remembers <own cgroup path> and
# <own cgroup path>/NAME in the hierarchies where they do not exist yet, for
# teardown (never their parents, which other sessions share).
new_cgroup_dirs=()
note_new_cgroup_dirs() {
	local own m d
	own=$(awk -F: '$3 != "/" {print $3; exit}' /proc/self/cgroup)
	[ -n "$own" ] || return 0
	for m in /sys/fs/cgroup/*/; do
		for d in "${m%/}$own" "${m%/}$own/$1"; do
			[ -e "$d" ] || new_cgroup_dirs+=("$d")
		done
	done
}

# in_node NAME CMD...: CMD in the node's namespace and cgroups (nsenter
# --net only: `ip netns exec` would remount /sys and hide the cgroups).
in_node() {
	local name=$1
	shift
	# shellcheck disable=SC2016 # expanded by the inner shell
	CGS=${cgroups[$name]} sh -c 'for d in $CGS; do echo $$ >"$d/cgroup.procs" || exit 1; done; exec "$@"' sh \
		nsenter --net="/run/netns/kbxc-$name" -- "$@"
}

teardown() {
	local rc=$? name d
	trap - EXIT INT TERM
	set +e
	say "tearing down"
	if [ -n "${suite_pid:-}" ]; then
		kill -TERM -- "-$suite_pid" 2>/dev/null
		for _ in $(seq 30); do kill -0 -- "-$suite_pid" 2>/dev/null || break; sleep 1; done
		kill -KILL -- "-$suite_pid" 2>/dev/null
	fi
	for name in agent server; do
		[ -n "${pid[$name]:-}" ] || continue
		kill -TERM "${pid[$name]}" 2>/dev/null
		for _ in $(seq 60); do kill -0 "${pid[$name]}" 2>/dev/null || break; sleep 1; done
		kill -KILL "${pid[$name]}" 2>/dev/null
		wait "${pid[$name]}" 2>/dev/null
	done
	if [ -n "${registry_pid:-}" ]; then
		kill -TERM "$registry_pid" 2>/dev/null
		for _ in $(seq 10); do kill -0 "$registry_pid" 2>/dev/null || break; sleep 1; done
		kill -KILL "$registry_pid" 2>/dev/null
		wait "$registry_pid" 2>/dev/null
	fi
	for name in agent server; do
		[ -n "${cgroups[$name]:-}" ] || continue
		in_node "$name" "$kubox" killall --data-dir "$work/$name/data" --run-dir "$work/$name/run" \
			>>"$work/killall.log" 2>&1 9>&- || say "kubox killall ($name) failed: see $results/killall.log"
		for d in ${cgroups[$name]}; do
			# What kubox made below the node's cgroup went with killall.
			rmdir "$d" 2>/dev/null || say "cgroup $d left"
		done
	done
	# In the hierarchies this script sits at the root of, kubox nests under
	# the same path: what appeared there since the start goes, deepest first.
	for d in $(printf '%s\n' "${new_cgroup_dirs[@]}" | sort -r); do
		[ -d "$d" ] && ! rmdir "$d" 2>/dev/null && say "cgroup $d left"
	done
	for name in server agent; do
		ip netns del "kbxc-$name" 2>/dev/null
		ip link del "kbxc-v-$name" 2>/dev/null
	done
	ip link del "$bridge" 2>/dev/null
	if [ ${#fence[@]} -gt 0 ]; then
		while iptables -D FORWARD "${fence[@]}" 2>/dev/null; do :; done
	fi
	if [ "$made_netns_mount" = 1 ] && mountpoint -q /run/netns && [ -z "$(ls -A /run/netns)" ]; then
		umount -l /run/netns
	fi
	mkdir -p "$results"
	for name in server agent; do
		[ -e "$work/$name/kubox.log" ] && cp "$work/$name/kubox.log" "$results/kubox-$name.log"
	done
	[ -e "$work/killall.log" ] && cp "$work/killall.log" "$results/killall.log"
	[ -e "$work/registry.log" ] && cp "$work/registry.log" "$results/registry.log"
	if grep -qs " $work/" /proc/self/mountinfo; then
		say "mounts left under $work: kept for a look"
	else
		rm -rf "$work"
	fi
	say "done (exit $rc)"
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

say "network: bridge $bridge, namespaces kbxc-server and kbxc-agent"
# Nothing the nodes send leaves the bridge: what would be routed on (the
# host's resolver named in /etc/resolv.conf, which containerd reads for a
# pull) is refused at once, so that a pull fails fast, as on a closed floor.
fence=(-i "$bridge" ! -o "$bridge" -m comment --comment kubox-conformance -j REJECT)
iptables -I FORWARD "${fence[@]}"
ip link add "$bridge" type bridge
ip addr add "${prefix}254/24" dev "$bridge"
ip link set "$bridge" up
declare -A nodeip=([server]=${prefix}1 [agent]=${prefix}2)
registry=${prefix}254:5000
say "registry: the suite's images on $registry"
"$build/bin/registry" -archive "$build/e2e-images.tar" -listen "$registry" -root "$work/registry" \
	>"$work/registry.log" 2>&1 9>&- &
registry_pid=$!
until grep -q "serving .* images" "$work/registry.log"; do
	kill -0 "$registry_pid" 2>/dev/null || { say "the registry exited: see $results/registry.log"; exit 1; }
	sleep 1
done
for name in server agent; do
	ns=kbxc-$name veth=kbxc-v-$name
	ip netns add "$ns"
	ip link add "$veth" type veth peer name eth0 netns "$ns"
	ip link set "$veth" master "$bridge" up
	ip -n "$ns" addr add "${nodeip[$name]}/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" route add default via "${prefix}254"
	cgroups[$name]=$(cgroups_for "kbxc-$name")
	note_new_cgroup_dirs "kbxc-$name"
	mkdir -p "$work/$name/data/agent/images" "$work/$name/run"
	# Nothing answers DNS there: CoreDNS has no upstream, as on a closed floor.
	echo "nameserver ${prefix}254" >"$work/$name/resolv.conf"
	: >"$work/$name/config.yaml"
	printf 'mirrors:\n  registry.k8s.io:\n    endpoint:\n      - "http://%s"\n' "$registry" >"$work/$name/registries.yaml"
	# Each kubelet keeps its pods' logs apart: a kubelet removes the log
	# directories of pods it does not know, and both nodes share this
	# host's /var/log/pods.
	mkdir -p "$work/$name/kubelet.conf.d" "$work/$name/pod-logs"
	printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\npodLogsDir: %s\n' \
		"$work/$name/pod-logs" >"$work/$name/kubelet.conf.d/10-pod-logs.conf"
	ln "$build/e2e-images.tar" "$work/$name/data/agent/images/" 2>/dev/null ||
		cp "$build/e2e-images.tar" "$work/$name/data/agent/images/"
done

# start NAME ARGS...: kubox ARGS in the node's namespace and cgroups.
start() {
	local name=$1
	shift
	in_node "$name" "$kubox" "$@" --config "$work/$name/config.yaml" \
		--data-dir "$work/$name/data" --run-dir "$work/$name/run" --node-name "kbxc-$name" \
		--node-ip "${nodeip[$name]}" --flannel-iface eth0 --resolv-conf "$work/$name/resolv.conf" \
		--kubelet-arg "config-dir=$work/$name/kubelet.conf.d" --private-registry "$work/$name/registries.yaml" \
		>"$work/$name/kubox.log" 2>&1 9>&- &
	pid[$name]=$!
}
kubeconfig=$work/kubeconfig.yaml
kubectl() { nsenter --net=/run/netns/kbxc-server -- "$kubox" kubectl --kubeconfig "$kubeconfig" "$@"; }
# wait_for WHAT SECONDS CMD...: CMD succeeds within SECONDS.
wait_for() {
	local what=$1 limit=$2 start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start > limit)); then
			say "timed out waiting for $what"
			return 1
		fi
		for name in "${!pid[@]}"; do
			kill -0 "${pid[$name]}" 2>/dev/null || { say "kubox $name exited: see $results/kubox-$name.log"; return 1; }
		done
		sleep 2
	done
	say "$what ($((SECONDS - start)) s)"
}
ready() { # NODE...: every node Ready
	local out n
	out=$(kubectl get nodes -o 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}') || return 1
	for n in "$@"; do [[ " $out" == *" $n=True"* ]] || return 1; done
}
has_images() { # every node reports the suite's agnhost (imported from agent/images with the rest)
	local want n
	want=$(grep -m1 '/e2e-test-images/agnhost:' "$build/images.txt")
	for n in kbxc-server kbxc-agent; do
		kubectl get node "$n" -o 'jsonpath={.status.images[*].names}' | grep -qF "$want" || return 1
	done
}
system_ready() { # every kube-system pod Running and Ready
	! kubectl get pods -n kube-system --no-headers | grep -v -E '\s([0-9]+)/\1\s+Running\s' | grep -q .
}

say "server at ${nodeip[server]}, datastore $datastore"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
start server server --write-kubeconfig "$kubeconfig" --advertise-address "${nodeip[server]}" "${server_args[@]}"
wait_for "server node Ready" 300 ready kbxc-server
token=$(cat "$work/server/data/server/token")
say "agent at ${nodeip[agent]}"
start agent agent --server "https://${nodeip[server]}:6443" --token "$token"
wait_for "both nodes Ready" 300 ready kbxc-server kbxc-agent
wait_for "the suite's images on both nodes" 600 has_images
wait_for "kube-system pods Ready" 300 system_ready

mkdir -p "$results"
rm -f "$results"/junit_*.xml "$results/summary.md"
say "suite: focus '$FOCUS', skip '$SKIP', $NODES parallel processes"
start_suite=$SECONDS
suite_rc=0
# In a session of its own, waited for in the background: a signal to this
# script is handled at once, and teardown ends the suite's whole group.
# shellcheck disable=SC2086,SC2016 # GINKGO_ARGS and E2E_ARGS are word lists; bash -c expands its own
setsid bash -c 'set -o pipefail; "$@" 2>&1 | tee "$0"' "$results/e2e.log" \
	nsenter --net=/run/netns/kbxc-server -- env PATH="$(dirname "$kubox"):$PATH" KUBECONFIG="$kubeconfig" \
	"$build/bin/ginkgo" --nodes="$NODES" --focus="$FOCUS" --skip="$SKIP" --no-color --timeout=3h $GINKGO_ARGS \
	"$build/bin/e2e.test" -- --kubeconfig="$kubeconfig" --provider=skeleton --report-dir="$results" \
	--kubectl-path="$(dirname "$kubox")/kubectl" $E2E_ARGS 9>&- &
suite_pid=$!
wait "$suite_pid" || suite_rc=$?
suite_pid=
say "suite finished in $((SECONDS - start_suite)) s (ginkgo exit $suite_rc)"
if [ -e "$results/junit_01.xml" ]; then
	(cd "$root" && go run ./tests/conformance/summary -junit "$results/junit_01.xml" -missing "$build/missing-images.txt" \
		-focus "$FOCUS" -skip "$SKIP" -duration "$((SECONDS - start_suite))s" -date "$started" \
		-nodes "$("$kubox" --version | head -1 | sed 's/ (.*//'): a server and an agent, $NODES parallel processes, datastore $datastore" \
		-out "$results/summary.md") ||
		say "no summary: see above"
else
	say "the suite wrote no JUnit report: see $results/e2e.log"
	[ "$suite_rc" != 0 ] || suite_rc=1
fi
exit "$suite_rc"

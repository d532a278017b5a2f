#!/bin/sh
# kubox installer.
#
#   curl -sfL https://github.com/kubox-io/kubox/releases/latest/download/install.sh | sh -
#
# Downloads kubox for this machine's architecture, verifies its SHA-256,
# installs it with kubectl/crictl/ctr links, writes a systemd or openrc
# service (kubox server, or kubox agent when KUBOX_URL is set), its
# environment file, bash completion, kubox-killall.sh and kubox-uninstall.sh,
# then enables and starts the service. Running it again upgrades in place.
# Every path it writes, and each directory it makes for kubox, is recorded in
# <bin dir>/<service>-install.manifest: the uninstaller removes those only.
#
# Environment (all optional):
#   INSTALL_KUBOX_VERSION        release to install (default: latest)
#   INSTALL_KUBOX_DOWNLOAD_URL   folder holding kubox-<arch> and sha256sum-<arch>.txt
#   INSTALL_KUBOX_SKIP_DOWNLOAD  true: use the kubox already in the bin dir (air gap)
#   INSTALL_KUBOX_EXEC           command (server|agent) and flags for the service
#   INSTALL_KUBOX_BIN_DIR        where kubox goes (default /usr/local/bin)
#   INSTALL_KUBOX_CONFIG_DIR     kubox's configuration (default /etc/kubox)
#   INSTALL_KUBOX_SYMLINK        skip|force the kubectl/crictl/ctr links
#   INSTALL_KUBOX_SKIP_ENABLE    true: do not enable the service
#   INSTALL_KUBOX_SKIP_START     true: do not (re)start the service
#   INSTALL_KUBOX_INIT           systemd|openrc|none instead of detecting
#   INSTALL_KUBOX_ARCH           amd64|arm64|arm instead of detecting
#   INSTALL_KUBOX_SYSTEMD_DIR    systemd unit dir (default /etc/systemd/system)
#   INSTALL_KUBOX_OPENRC_DIR     openrc init script dir (default /etc/init.d)
#   INSTALL_KUBOX_BASH_COMPLETION_DIR  where the bash completion goes (default
#                                /usr/share/bash-completion/completions or
#                                /etc/bash_completion.d, whichever exists)
#   KUBOX_*                      written to the service's environment file
#
# Every failure prints one "[ERROR] ..." line and leaves the system as it was.
set -eu

GITHUB_URL=https://github.com/kubox-io/kubox/releases
DEFAULT_CONFIG_DIR=/etc/kubox
DEFAULT_DATA_DIR=/var/lib/kubox
LINKED_CLIENTS="kubectl crictl ctr"
NL='
'

info() { echo "[INFO] $*"; }
warn() { echo "[WARN] $*" >&2; }
fatal() {
	echo "[ERROR] $*" >&2
	exit 1
}

# sq quotes $1 for sh: 'it'\''s'.
sq() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# shq quotes $1 for sh only when it needs quoting, for readable scripts.
shq() {
	case "$1" in
	'' | *[!A-Za-z0-9_./:=,@+-]*) sq "$1" ;;
	*) printf '%s' "$1" ;;
	esac
}

# dq quotes $1 in double quotes with \ " $ ` escaped: sh and systemd's
# EnvironmentFile read it the same way.
dq() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"$`]/\\&/g')"
}

# systemd_word quotes $1 as one word of an Exec line: C-style escapes in
# double quotes, and % and $ doubled so systemd expands neither.
systemd_word() {
	case "$1" in
	'' | *[!A-Za-z0-9_./:=,@+-]*) ;;
	*)
		printf '%s' "$1"
		return 0
		;;
	esac
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/[\\"]/\\&/g' -e 's/%/%%/g' -e 's/\$/$$/g')"
}

# no_slash prints $1 without trailing slashes (/ stays /), so that a
# directory has one spelling in the manifest.
no_slash() {
	ns=$1
	while [ "$ns" != / ] && [ "${ns%/}" != "$ns" ]; do ns=${ns%/}; done
	printf '%s' "$ns"
}

is_true() {
	case "${1:-}" in
	true | TRUE | True | 1 | yes) return 0 ;;
	*) return 1 ;;
	esac
}

# --- checks: nothing on the system changes until all of them pass ---------

check_root() {
	[ "$(id -u)" = 0 ] || fatal "the installer must run as root: pipe it to 'sudo sh -' (curl -sfL <url>/install.sh | sudo sh -)"
}

detect_arch() {
	raw=${INSTALL_KUBOX_ARCH:-$(uname -m)}
	case "$raw" in
	amd64 | x86_64) ARCH=amd64 ;;
	arm64 | aarch64) ARCH=arm64 ;;
	arm | armv7l | armv6l | armhf) ARCH=arm ;;
	*) fatal "unsupported architecture $raw: kubox is released for x86_64 (amd64), aarch64 (arm64) and armv7l/armv6l (arm); set INSTALL_KUBOX_ARCH only to one of those" ;;
	esac
}

check_options() {
	case "${INSTALL_KUBOX_SYMLINK:-}" in
	'' | skip | force) ;;
	*) fatal "INSTALL_KUBOX_SYMLINK=${INSTALL_KUBOX_SYMLINK} is not understood: use skip, force, or leave it unset" ;;
	esac
	BIN_DIR=$(no_slash "${INSTALL_KUBOX_BIN_DIR:-/usr/local/bin}")
	CONFIG_DIR=$(no_slash "${INSTALL_KUBOX_CONFIG_DIR:-$DEFAULT_CONFIG_DIR}")
	SYSTEMD_DIR=${INSTALL_KUBOX_SYSTEMD_DIR:-/etc/systemd/system}
	OPENRC_DIR=${INSTALL_KUBOX_OPENRC_DIR:-/etc/init.d}
	COMPLETION_DIR=${INSTALL_KUBOX_BASH_COMPLETION_DIR:-}
	if [ -z "$COMPLETION_DIR" ]; then
		for d in /usr/share/bash-completion/completions /etc/bash_completion.d; do
			if [ -d "$d" ]; then
				COMPLETION_DIR=$d
				break
			fi
		done
	fi
	for d in "$BIN_DIR" "$CONFIG_DIR" "$SYSTEMD_DIR" "$OPENRC_DIR" "${COMPLETION_DIR:-/}"; do
		case "$d" in
		*"$NL"*) fatal "the directory name $d holds a line break: choose another INSTALL_KUBOX_*_DIR" ;;
		/?*) ;;
		*) fatal "$d is not an absolute directory: give INSTALL_KUBOX_*_DIR as an absolute path" ;;
		esac
	done
}

# parse_exec splits INSTALL_KUBOX_EXEC on blanks (no quoting) into the
# command (server or agent) and its flags, and notes --data-dir and
# --run-dir for the killall and uninstall scripts.
parse_exec() {
	set -f
	# shellcheck disable=SC2086 # splitting is the point
	set -- ${INSTALL_KUBOX_EXEC:-}
	set +f
	CMD=
	case "${1:-}" in
	server | agent)
		CMD=$1
		shift
		;;
	esac
	if [ -z "$CMD" ]; then
		if [ -n "${KUBOX_URL:-}" ]; then CMD=agent; else CMD=server; fi
	fi
	if [ -n "${KUBOX_URL:-}" ]; then
		[ "$CMD" = agent ] || fatal "KUBOX_URL is set, which joins this node as an agent, but INSTALL_KUBOX_EXEC starts with server: unset one of them"
		case "$KUBOX_URL" in
		https://*) ;;
		*) fatal "KUBOX_URL=$KUBOX_URL is not a server address: use https://<server>:6443" ;;
		esac
		[ -n "${KUBOX_TOKEN:-}${KUBOX_TOKEN_FILE:-}" ] || fatal "KUBOX_URL is set but KUBOX_TOKEN is not: copy the token from the server's <data-dir>/server/token"
	fi
	if [ "$CMD" = agent ]; then SERVICE=kubox-agent; else SERVICE=kubox; fi

	DATA_DIR=$DEFAULT_DATA_DIR
	RUN_DIR=
	NEW_CONFIG=
	ARGS=
	UNIT_ARGS=
	SHOWN_ARGS=
	add_arg "$CMD"
	has_config=false
	has_kubeconfig=false
	prev=
	for a in "$@"; do
		case "$prev" in
		--data-dir | -d | -data-dir) DATA_DIR=$a ;;
		--run-dir | -run-dir) RUN_DIR=$a ;;
		esac
		case "$a" in
		--data-dir=* | -d=* | -data-dir=*) DATA_DIR=${a#*=} ;;
		--run-dir=* | -run-dir=*) RUN_DIR=${a#*=} ;;
		--config | -c | --config=* | -c=*) has_config=true ;;
		--write-kubeconfig | -o | --write-kubeconfig=* | -o=*) has_kubeconfig=true ;;
		esac
		prev=$a
		add_arg "$a"
	done
	DATA_DIR=$(no_slash "$DATA_DIR")
	RUN_DIR=$(no_slash "$RUN_DIR")
	case "$DATA_DIR" in
	/ | '' | [!/]* | *"$NL"*) fatal "--data-dir $DATA_DIR in INSTALL_KUBOX_EXEC must be an absolute directory other than /" ;;
	esac
	case "$RUN_DIR" in
	*"$NL"*) fatal "--run-dir $RUN_DIR in INSTALL_KUBOX_EXEC must be an absolute directory" ;;
	'' | /?*) ;;
	*) fatal "--run-dir $RUN_DIR in INSTALL_KUBOX_EXEC must be an absolute directory" ;;
	esac
	# A configuration dir other than /etc/kubox is where kubox reads its
	# config.yaml and writes the admin kubeconfig.
	KUBECONFIG_FILE=
	if [ "$CMD" = server ] && ! $has_kubeconfig && [ -z "${KUBOX_KUBECONFIG_OUTPUT:-}" ]; then
		KUBECONFIG_FILE=$CONFIG_DIR/kubox.yaml
	fi
	if [ "$CONFIG_DIR" != "$DEFAULT_CONFIG_DIR" ]; then
		if ! $has_config && [ -z "${KUBOX_CONFIG_FILE:-}" ]; then
			NEW_CONFIG=$CONFIG_DIR/config.yaml
			add_arg --config
			add_arg "$CONFIG_DIR/config.yaml"
		fi
		if [ -n "$KUBECONFIG_FILE" ]; then
			add_arg --write-kubeconfig
			add_arg "$KUBECONFIG_FILE"
		fi
	fi
}

# add_arg appends $1 to the service's command line, kept three ways: quoted
# for sh (openrc), for a systemd Exec line, and as shown to the user.
add_arg() {
	ARGS="${ARGS:+$ARGS }$(shq "$1")"
	UNIT_ARGS="$UNIT_ARGS \\
	$(systemd_word "$1")"
	SHOWN_ARGS="${SHOWN_ARGS:+$SHOWN_ARGS }$1"
}

detect_init() {
	INIT=${INSTALL_KUBOX_INIT:-}
	if [ -z "$INIT" ]; then
		if [ -d /run/systemd/system ]; then
			INIT=systemd
		elif command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then
			INIT=openrc
		else
			INIT=none
		fi
	fi
	case "$INIT" in
	systemd | openrc | none) ;;
	*) fatal "INSTALL_KUBOX_INIT=$INIT is not understood: use systemd, openrc or none" ;;
	esac
	if is_true "${INSTALL_KUBOX_SKIP_ENABLE:-}" && is_true "${INSTALL_KUBOX_SKIP_START:-}"; then
		return 0
	fi
	case "$INIT" in
	systemd)
		if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
			fatal "systemd is not running, so the $SERVICE service cannot be enabled or started: set INSTALL_KUBOX_SKIP_ENABLE=true and INSTALL_KUBOX_SKIP_START=true to only write the unit"
		fi
		;;
	openrc)
		if ! command -v rc-update >/dev/null 2>&1 || ! command -v rc-service >/dev/null 2>&1; then
			fatal "rc-update/rc-service not found, so the $SERVICE service cannot be enabled or started: set INSTALL_KUBOX_SKIP_ENABLE=true and INSTALL_KUBOX_SKIP_START=true to only write the init script"
		fi
		;;
	esac
}

check_download_tools() {
	if is_true "${INSTALL_KUBOX_SKIP_DOWNLOAD:-}"; then
		[ -f "$BIN_DIR/kubox" ] ||
			fatal "INSTALL_KUBOX_SKIP_DOWNLOAD=true but $BIN_DIR/kubox does not exist: copy kubox-$ARCH from the release to $BIN_DIR/kubox first"
		return 0
	fi
	if command -v curl >/dev/null 2>&1; then
		DOWNLOADER=curl
	elif command -v wget >/dev/null 2>&1; then
		DOWNLOADER=wget
	else
		fatal "neither curl nor wget is installed: install one of them (e.g. apt-get install curl), or download kubox yourself and use INSTALL_KUBOX_SKIP_DOWNLOAD=true"
	fi
	if command -v sha256sum >/dev/null 2>&1; then
		HASHER=sha256sum
	elif command -v shasum >/dev/null 2>&1; then
		HASHER="shasum -a 256"
	else
		fatal "neither sha256sum nor shasum is installed, so the download cannot be verified: install coreutils (or perl for shasum)"
	fi
	if [ -n "${INSTALL_KUBOX_DOWNLOAD_URL:-}" ]; then
		BASE_URL=${INSTALL_KUBOX_DOWNLOAD_URL%/}
	elif [ -z "${INSTALL_KUBOX_VERSION:-}" ] || [ "$INSTALL_KUBOX_VERSION" = latest ]; then
		BASE_URL=$GITHUB_URL/latest/download
	else
		BASE_URL=$GITHUB_URL/download/$INSTALL_KUBOX_VERSION
	fi
}

# --- download and verify ----------------------------------------------------

# TMP_DIR is private (mktemp -d makes it 0700); PENDING is the file being
# written next to its target, renamed into place when whole. Both go on exit.
TMP_DIR=
PENDING=
cleanup() {
	[ -z "$TMP_DIR" ] || rm -rf "$TMP_DIR"
	[ -z "$PENDING" ] || rm -f "$PENDING"
}

make_tmp_dir() {
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kubox-install.XXXXXX") ||
		fatal "could not make a temporary directory in ${TMPDIR:-/tmp}: check that it is writable, or set TMPDIR"
}

fetch() {
	case "$DOWNLOADER" in
	curl) curl -fsSL --retry 3 -o "$2" "$1" </dev/null ;;
	wget) wget -q -O "$2" "$1" </dev/null ;;
	esac || fatal "could not download $1 with $DOWNLOADER: check the network, INSTALL_KUBOX_VERSION and INSTALL_KUBOX_DOWNLOAD_URL"
}

download_and_verify() {
	sums=sha256sum-$ARCH.txt
	info "downloading $BASE_URL/$sums"
	fetch "$BASE_URL/$sums" "$TMP_DIR/$sums"
	want=$(awk -v f="kubox-$ARCH" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP_DIR/$sums")
	[ -n "$want" ] || fatal "$sums has no checksum for kubox-$ARCH: the release at $BASE_URL is incomplete"
	info "downloading $BASE_URL/kubox-$ARCH"
	fetch "$BASE_URL/kubox-$ARCH" "$TMP_DIR/kubox"
	info "verifying the SHA-256 of kubox-$ARCH"
	got=$($HASHER "$TMP_DIR/kubox" | awk '{ print $1 }')
	[ "$got" = "$want" ] ||
		fatal "checksum mismatch for kubox-$ARCH: expected $want, got $got; the download is corrupt or was altered, so nothing was installed (try again, or check INSTALL_KUBOX_DOWNLOAD_URL)"
}

# --- install ----------------------------------------------------------------

install_binary() {
	mkdir -p "$BIN_DIR"
	if is_true "${INSTALL_KUBOX_SKIP_DOWNLOAD:-}"; then
		info "using $BIN_DIR/kubox as it is (INSTALL_KUBOX_SKIP_DOWNLOAD=true)"
		chmod 755 "$BIN_DIR/kubox"
		return 0
	fi
	# Copy next to the target, then rename: the switch is atomic and a
	# running kubox keeps its old file.
	PENDING=$BIN_DIR/.kubox.install.$$
	if ! { cp "$TMP_DIR/kubox" "$PENDING" && chmod 755 "$PENDING" && mv -f "$PENDING" "$BIN_DIR/kubox"; }; then
		fatal "could not write $BIN_DIR/kubox: check that $BIN_DIR is writable and has room, or choose another INSTALL_KUBOX_BIN_DIR"
	fi
	PENDING=
	info "installed $BIN_DIR/kubox"
}

# links_to_kubox: $1 is a link to this kubox.
links_to_kubox() {
	[ -L "$1" ] || return 1
	case "$(readlink "$1")" in
	"$BIN_DIR/kubox" | kubox) return 0 ;;
	esac
	return 1
}

create_links() {
	if [ "${INSTALL_KUBOX_SYMLINK:-}" = skip ]; then
		info "not linking $LINKED_CLIENTS (INSTALL_KUBOX_SYMLINK=skip)"
		return 0
	fi
	if ! commands=$("$BIN_DIR/kubox" help 2>/dev/null </dev/null); then
		warn "$BIN_DIR/kubox does not run on this machine, so no client links were made: check INSTALL_KUBOX_ARCH"
		return 0
	fi
	for c in $LINKED_CLIENTS; do
		link=$BIN_DIR/$c
		if ! printf '%s\n' "$commands" | grep -Eq "^ +$c( |,|$)"; then
			continue # this kubox does not carry that client
		fi
		if links_to_kubox "$link"; then
			info "$link already links to kubox"
			continue
		fi
		if [ "${INSTALL_KUBOX_SYMLINK:-}" != force ]; then
			if [ -e "$link" ] || [ -L "$link" ]; then
				info "not linking $link: it exists (INSTALL_KUBOX_SYMLINK=force replaces it)"
				continue
			fi
			if other=$(command -v "$c" 2>/dev/null); then
				info "not linking $link: $other is on the PATH (INSTALL_KUBOX_SYMLINK=force links anyway)"
				continue
			fi
		fi
		ln -sf "$BIN_DIR/kubox" "$link"
		manifest_add link "$link"
		info "linked $link to kubox"
	done
}

# write_file $1 $2: writes stdin to $1 with mode $2, replacing it in one
# step, and records it in the manifest. (It may run in a pipeline's
# subshell: it cleans up after itself.)
write_file() {
	PENDING=$1.install.$$
	if ! { mkdir -p "$(dirname "$1")" && (umask 077 && cat >"$PENDING") && chmod "$2" "$PENDING" && mv -f "$PENDING" "$1"; }; then
		rm -f "$PENDING"
		fatal "could not write $1: check that its directory is writable and has room"
	fi
	PENDING=
	manifest_add file "$1"
}

# --- the manifest: what this install (and earlier ones) made --------------

# manifest_add KIND PATH notes a file, link or dir the install made, in a
# file of the temp dir (write_file may run in a subshell); save_manifest
# puts it in place.
manifest_add() {
	grep -Fqx -- "$1 $2" "$TMP_DIR/manifest" || printf '%s %s\n' "$1" "$2" >>"$TMP_DIR/manifest"
}

save_manifest() {
	PENDING=$MANIFEST.install.$$
	if ! { { echo "# Written by kubox's install.sh: what the uninstall script may remove." && cat "$TMP_DIR/manifest"; } >"$PENDING" &&
		chmod 644 "$PENDING" && mv -f "$PENDING" "$MANIFEST"; }; then
		rm -f "$PENDING"
		fatal "could not write $MANIFEST: check that $BIN_DIR is writable and has room"
	fi
	PENDING=
}

# only_kubox_entries DIR NAME...: DIR holds nothing but entries named NAME
# (what kubox itself puts there), so it is kubox's although it exists.
only_kubox_entries() {
	oke_dir=$1
	shift
	for oke_entry in "$oke_dir"/* "$oke_dir"/.[!.]* "$oke_dir"/..?*; do
		[ -e "$oke_entry" ] || [ -L "$oke_entry" ] || continue
		case " $* " in
		*" ${oke_entry##*/} "*) ;;
		*) return 1 ;;
		esac
	done
	return 0
}

# claim_dir DIR NAME...: DIR is kubox's when it does not exist yet, when an
# earlier install recorded it, or when it holds only kubox's entries (an
# air-gap image folder made before the install). A directory that holds
# anything else, such as /etc, is never recorded, so never removed.
claim_dir() {
	[ -n "$1" ] || return 0
	if [ ! -e "$1" ] || only_kubox_entries "$@"; then
		manifest_add dir "$1"
	fi
}

# plan_manifest records, before anything is written, the directories this
# install makes for kubox and the files its service will write.
plan_manifest() {
	MANIFEST=$BIN_DIR/$SERVICE-install.manifest
	: >"$TMP_DIR/manifest"
	if [ -f "$MANIFEST" ]; then
		grep -E '^(file|link|dir) /' "$MANIFEST" >"$TMP_DIR/manifest" || true
	fi
	claim_dir "$DATA_DIR" server agent data storage
	claim_dir "$RUN_DIR"
	claim_dir "$CONFIG_DIR" config.yaml config.yaml.d kubox.yaml kubox.env kubox-agent.env
	# The admin kubeconfig is the service's to write, unless it is there already.
	if [ -n "$KUBECONFIG_FILE" ] && [ ! -e "$KUBECONFIG_FILE" ]; then
		manifest_add file "$KUBECONFIG_FILE"
	fi
	[ -z "$LOG_FILE" ] || [ -e "$LOG_FILE" ] || manifest_add file "$LOG_FILE"
	manifest_add file "$BIN_DIR/kubox"
	save_manifest
}

write_env_file() {
	names=$(env | sed -n 's/^\(KUBOX_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u)
	{
		echo "# Environment of the $SERVICE service, written by install.sh."
		for n in $names; do
			eval "v=\${$n-}"
			# shellcheck disable=SC2154 # v is set by the eval
			echo "$n=$(dq "$v")"
		done
	} | write_file "$ENV_FILE" 600
	info "wrote $ENV_FILE"
}

# record prints NAME='value' for each variable named.
record() {
	for name in "$@"; do
		eval "value=\${$name}"
		# shellcheck disable=SC2154 # value is set by the eval
		echo "$name=$(sq "$value")"
	done
}

# The generated scripts start with the values this install used.
script_header() {
	cat <<EOF
#!/bin/sh
# $1
# Written by kubox's install.sh, with the paths this install used.
set -u
EOF
	record BIN_DIR SERVICE INIT SERVICE_FILE DATA_DIR RUN_DIR
	cat <<'EOF'

[ "$(id -u)" = 0 ] || { echo "[ERROR] $0 must run as root: sudo $0" >&2; exit 1; }

# managed: the service manager runs and knows this very service file.
managed() {
	case "$INIT" in
	systemd)
		[ -d /run/systemd/system ] &&
			[ "$(systemctl show -p FragmentPath --value "$SERVICE" 2>/dev/null)" = "$SERVICE_FILE" ]
		;;
	openrc)
		command -v rc-service >/dev/null 2>&1 && [ "$SERVICE_FILE" = "/etc/init.d/$SERVICE" ]
		;;
	*) return 1 ;;
	esac
}
EOF
}

write_killall() {
	KILLALL=$BIN_DIR/kubox-killall.sh
	{
		script_header "kubox-killall.sh: stops the $SERVICE service and takes this kubox node down (containers, mounts, interfaces, iptables chains); cluster state stays"
		cat <<'EOF'

if managed; then
	echo "[INFO] stopping the $SERVICE service"
	case "$INIT" in
	systemd) systemctl stop "$SERVICE" </dev/null ;;
	openrc) rc-service "$SERVICE" stop </dev/null ;;
	esac
fi
[ -x "$BIN_DIR/kubox" ] || { echo "[ERROR] $BIN_DIR/kubox is missing: reinstall kubox, or clean up by hand" >&2; exit 1; }
set -- killall --data-dir "$DATA_DIR"
[ -z "$RUN_DIR" ] || set -- "$@" --run-dir "$RUN_DIR"
echo "[INFO] running kubox $*"
"$BIN_DIR/kubox" "$@" </dev/null
EOF
	} | write_file "$KILLALL" 755
	info "wrote $KILLALL"
}

write_uninstall() {
	UNINSTALL=$BIN_DIR/$SERVICE-uninstall.sh
	{
		script_header "$SERVICE-uninstall.sh: removes kubox and everything its installer and this node made: the $SERVICE service, links, data and configuration"
		record CONFIG_DIR MANIFEST
		cat <<'EOF'

# The manifest names what the installer wrote and the directories it made
# for kubox; nothing else is removed.
if [ ! -f "$MANIFEST" ]; then
	echo "[ERROR] $MANIFEST is missing, so what the installer wrote is unknown and nothing was removed: run install.sh again (it writes the manifest), then this script" >&2
	exit 1
fi

NL='
'

# recorded KIND PATH: the manifest names PATH as a KIND the install made.
recorded() {
	grep -Fqx -- "$1 $2" "$MANIFEST"
}

if [ -x "$BIN_DIR/kubox-killall.sh" ]; then
	"$BIN_DIR/kubox-killall.sh" || echo "[WARN] kubox-killall.sh failed; removing what can be removed" >&2
fi

if managed; then
	echo "[INFO] disabling the $SERVICE service"
	case "$INIT" in
	systemd)
		systemctl disable "$SERVICE" </dev/null
		systemctl reset-failed "$SERVICE" </dev/null >/dev/null 2>&1
		;;
	openrc)
		rc-update delete "$SERVICE" default </dev/null
		;;
	esac
	reload=true
else
	reload=false
fi

remove() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		echo "[INFO] removing $1"
		rm -rf -- "$1"
	fi
}

# mounted: something is still mounted at or below $1; removing it then would
# reach through the mount.
mounted() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The CNI plugins keep state outside kubox's dirs: the cached results and
# the pod addresses host-local handed out, per pod sandbox. Those of this
# node's sandboxes go; the kubox network's own files go with the last one.
# (Shell functions share variables: these use names of their own.)
CNI_NET=/var/lib/cni/networks/kubox
remove_cni_state() {
	for cni_sandbox in "$DATA_DIR"/agent/containerd/io.containerd.grpc.v1.cri/sandboxes/*; do
		[ -d "$cni_sandbox" ] || continue
		cni_id=${cni_sandbox##*/}
		for cni_f in /var/lib/cni/results/*-"$cni_id"-*; do
			remove "$cni_f"
		done
		for cni_f in "$CNI_NET"/*; do
			[ -f "$cni_f" ] && [ "$(head -n 1 "$cni_f" | tr -d '\r')" = "$cni_id" ] && remove "$cni_f"
		done
	done
	[ -d "$CNI_NET" ] || return 0
	for cni_f in "$CNI_NET"/*; do
		case "${cni_f##*/}" in
		lock | last_reserved_ip*) ;;
		*) return 0 ;; # an address of another sandbox
		esac
	done
	remove "$CNI_NET"
}

# remove_dir removes a directory the install made, unless something is
# mounted below it, or it is / or a top-level directory, whatever the
# manifest says.
status=0
remove_dir() {
	case "$1" in
	/?*/?*) ;;
	*)
		echo "[ERROR] the manifest names $1, which no install of kubox may remove: kept it" >&2
		status=1
		return 0
		;;
	esac
	if mounted "$1"; then
		echo "[ERROR] $1 still has mounts below it, so it was kept: run $BIN_DIR/kubox-killall.sh, then this script again" >&2
		status=1
		return 0
	fi
	remove "$1"
}

# Files and links first (a link only while it still leads to kubox); kubox
# itself, these scripts and the manifest last, once nothing failed.
dirs=
while IFS= read -r entry; do
	path=${entry#* }
	case "$path" in
	"$BIN_DIR/kubox" | "$BIN_DIR/kubox-killall.sh" | "$BIN_DIR/$SERVICE-uninstall.sh") continue ;;
	esac
	case "$entry" in
	"file /"*) remove "$path" ;;
	"link /"*)
		case "$(readlink "$path")" in
		"$BIN_DIR/kubox" | kubox) remove "$path" ;;
		esac
		;;
	"dir /"*) dirs="$dirs$path$NL" ;;
	esac
done <"$MANIFEST"
[ "$reload" = false ] || [ "$INIT" != systemd ] || systemctl daemon-reload </dev/null

[ ! -d "$DATA_DIR" ] || remove_cni_state
while IFS= read -r path; do
	[ -z "$path" ] || remove_dir "$path"
done <<DIRS
$dirs
DIRS
for d in "$DATA_DIR" "$RUN_DIR" "$CONFIG_DIR"; do
	if [ -n "$d" ] && [ -d "$d" ] && ! recorded dir "$d"; then
		echo "[WARN] kept $d: it held files of its own when kubox was installed, so only what the installer wrote in it was removed" >&2
	fi
done

if [ "$status" = 0 ]; then
	if recorded file "$BIN_DIR/kubox"; then remove "$BIN_DIR/kubox"; fi
	remove "$BIN_DIR/kubox-killall.sh"
	remove "$BIN_DIR/$SERVICE-uninstall.sh"
	remove "$MANIFEST"
	echo "[INFO] kubox is uninstalled"
fi
exit "$status"
EOF
	} | write_file "$UNINSTALL" 755
	info "wrote $UNINSTALL"
}

write_systemd_unit() {
	write_file "$SERVICE_FILE" 644 <<EOF
# kubox $CMD, written by install.sh.
[Unit]
Description=kubox $CMD: Kubernetes in one binary
Documentation=https://github.com/kubox-io/kubox
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-$ENV_FILE
# kubox stops its own parts; containers outlive a restart by design.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStopSec=90s
Restart=always
RestartSec=5s
ExecStart=$(systemd_word "$BIN_DIR/kubox")$UNIT_ARGS
EOF
	info "wrote $SERVICE_FILE"
}

write_openrc_script() {
	write_file "$SERVICE_FILE" 755 <<EOF
#!/sbin/openrc-run
# kubox $CMD, written by install.sh.
# shellcheck shell=sh disable=SC2034,SC1091 # variables openrc-run reads
description="kubox $CMD: Kubernetes in one binary"
supervisor=supervise-daemon
command=$(sq "$BIN_DIR/kubox")
command_args=$(sq "$ARGS")
output_log=$(sq "$LOG_FILE")
error_log=$(sq "$LOG_FILE")
pidfile="/run/\${RC_SVCNAME}.pid"
respawn_delay=5
respawn_max=0
rc_ulimit="-n 1048576 -u unlimited"

set -o allexport
if [ -f $(sq "$ENV_FILE") ]; then . $(sq "$ENV_FILE"); fi
set +o allexport

depend() {
	need net
	after network-online firewall
	want cgroups
}
EOF
	info "wrote $SERVICE_FILE"
}

service_paths() {
	case "$INIT" in
	systemd)
		SERVICE_FILE=$SYSTEMD_DIR/$SERVICE.service
		ENV_FILE=$SYSTEMD_DIR/$SERVICE.service.env
		LOG_FILE=
		;;
	openrc)
		SERVICE_FILE=$OPENRC_DIR/$SERVICE
		ENV_FILE=$CONFIG_DIR/$SERVICE.env
		LOG_FILE=/var/log/$SERVICE.log
		;;
	none)
		SERVICE_FILE=
		ENV_FILE=$CONFIG_DIR/$SERVICE.env
		LOG_FILE=
		;;
	esac
}

write_service() {
	write_killall
	write_uninstall
	write_env_file
	# A --config the installer added must name a file that exists.
	if [ -n "$NEW_CONFIG" ] && [ ! -e "$NEW_CONFIG" ]; then
		echo "# kubox configuration: flags as YAML keys, e.g. node-label: [site=lab]" | write_file "$NEW_CONFIG" 600
		info "wrote an empty $NEW_CONFIG"
	fi
	case "$INIT" in
	systemd) write_systemd_unit ;;
	openrc) write_openrc_script ;;
	none)
		info "no systemd or openrc: start kubox yourself, e.g. 'set -a; . $ENV_FILE; set +a; $BIN_DIR/kubox $SHOWN_ARGS'"
		;;
	esac
}

write_completion() {
	if [ -z "$COMPLETION_DIR" ]; then
		info "no bash completion directory (/usr/share/bash-completion/completions or /etc/bash_completion.d), so none installed: see '$BIN_DIR/kubox completion --help'"
		return 0
	fi
	if ! "$BIN_DIR/kubox" completion bash >"$TMP_DIR/completion" 2>/dev/null </dev/null; then
		warn "$BIN_DIR/kubox did not print its bash completion, so none was installed"
		return 0
	fi
	write_file "$COMPLETION_DIR/kubox" 644 <"$TMP_DIR/completion"
	info "wrote $COMPLETION_DIR/kubox"
}

start_service() {
	[ "$INIT" != none ] || return 0
	if is_true "${INSTALL_KUBOX_SKIP_ENABLE:-}"; then
		info "not enabling the $SERVICE service (INSTALL_KUBOX_SKIP_ENABLE=true)"
	else
		info "enabling the $SERVICE service"
		case "$INIT" in
		systemd)
			systemctl daemon-reload </dev/null
			systemctl enable "$SERVICE" </dev/null >/dev/null 2>&1
			;;
		openrc) rc-update add "$SERVICE" default </dev/null >/dev/null ;;
		esac
	fi
	if is_true "${INSTALL_KUBOX_SKIP_START:-}"; then
		info "not starting the $SERVICE service (INSTALL_KUBOX_SKIP_START=true)"
		return 0
	fi
	info "starting the $SERVICE service"
	case "$INIT" in
	systemd)
		systemctl daemon-reload </dev/null
		systemctl restart "$SERVICE" </dev/null
		;;
	openrc) rc-service "$SERVICE" restart </dev/null ;;
	esac
}

main() {
	check_root
	detect_arch
	check_options
	parse_exec
	detect_init
	check_download_tools
	service_paths
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
	make_tmp_dir
	info "installing kubox $CMD for $ARCH (service $SERVICE, init $INIT)"
	if ! is_true "${INSTALL_KUBOX_SKIP_DOWNLOAD:-}"; then
		download_and_verify
	fi
	mkdir -p "$BIN_DIR" || fatal "could not make $BIN_DIR: choose another INSTALL_KUBOX_BIN_DIR"
	plan_manifest
	install_binary
	if version=$("$BIN_DIR/kubox" --version 2>/dev/null </dev/null); then
		info "$(printf '%s\n' "$version" | head -n 1)"
	fi
	create_links
	write_completion
	write_service
	save_manifest
	start_service
	info "done; uninstall with $UNINSTALL"
}

main "$@"

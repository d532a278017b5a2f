# shellcheck shell=bash
# apt_install NAME PACKAGE...: installs the Debian packages not installed
# yet, saying which under NAME. Sourced by the install-*deps.sh scripts.
apt_install() {
	local name=$1 p
	shift
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	echo "$name: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# A mirror mid-sync for one index must not stop the install by itself.
	apt-get update -qq || echo "$name: apt-get update reported errors; trying the install anyway" >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

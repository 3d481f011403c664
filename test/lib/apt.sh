# Sourced by the test tiers' dependency scripts. apt_install TIER PACKAGE...
# installs Debian packages (as root, or through sudo), running apt-get
# update once first; it says which, prefixed by TIER. Nothing to install:
# it returns at once.
apt_install() {
	local tier=$1
	shift
	[ $# -gt 0 ] || return 0
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "$tier: need root or sudo to install: $*" >&2; return 1; }
		sudo=(sudo)
	fi
	echo "$tier: installing $*"
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

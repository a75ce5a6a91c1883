#!/usr/bin/env bash
# The Debian packages the tests use, in one place: `make test` runs this
# first, and .ci/run too. What is missing is installed when we are root with
# apt-get; otherwise it stops at once with one line naming what to install.
#
#   scripts/deps.sh          install or name what is missing
#   scripts/deps.sh --list   print the package list
set -euo pipefail

# command-or-path:package, one per line.
DEPS='
dig:dnsutils
kdig:knot-dnsutils
/bin/busybox:busybox-static
dnsperf:dnsperf
ip:iproute2
haproxy:haproxy
unbound:unbound
dnsmasq:dnsmasq-base
nginx:nginx
chromium:chromium
prometheus:prometheus
docker-compose:docker-compose
socat:socat
'

packages() { for d in $DEPS; do echo "${d#*:}"; done; }

if [ "${1:-}" = --list ]; then
	packages | tr '\n' ' '
	echo
	exit 0
fi

have() {
	case $1 in
	/*) [ -x "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
	esac
}

missing=()
for d in $DEPS; do
	have "${d%%:*}" || missing+=("${d#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "make test needs these packages: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests run these programs themselves, on ports they choose: the
# packages' own services are not started (policy-rc.d, for the install only).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

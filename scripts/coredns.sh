#!/usr/bin/env bash
# Builds the CoreDNS the integration tests and `make bench` compare with
# (bench/coredns: CoreDNS's own main with the plugins they use) into
# .cache/bench/coredns, unless the right version is already there.
# Prints the binary's path. `make test` runs it before the tests, so the
# build (about 2 minutes on a fresh machine) is never inside a test timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.cache/bench/coredns
version=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' bench/coredns/go.mod)
if [ -x "$out" ] && [ "$("$out" -version 2>/dev/null | head -1)" = "CoreDNS-${version#v}" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$(dirname "$out")"
# .cache ignores itself, so nothing built there is committed.
[ -f .cache/.gitignore ] || echo '*' >.cache/.gitignore
echo "coredns.sh: building CoreDNS $version (bench/coredns) into $out" >&2
began=$(date +%s)
(cd bench/coredns && CGO_ENABLED=0 GOFLAGS=-buildvcs=false timeout 1200 go build -trimpath -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "coredns.sh: built in $(($(date +%s) - began)) s" >&2
echo "$out"

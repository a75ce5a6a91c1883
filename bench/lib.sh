# shellcheck shell=bash
# bench/lib.sh: the setup bench/run.sh and bench/proxy.sh share, sourced by
# both from the repository's top after they set LOG_TAG (the tag of their
# log lines): logging, the scratch directory and the processes cleaned up
# with it, results and medians, missing Debian packages, the svcdns
# binary, free ports, servers pinned to a core, CPU time of a process,
# waiting for an HTTP server, and the HAProxy the proxy benches compare.

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# scratch NAME: makes the scratch directory W (/tmp/NAME.XXXXXX) with the
# results file RESULTS, and sets the cleanup to run on exit.
scratch() {
	W=$(mktemp -d "/tmp/$1.XXXXXX")
	RESULTS=$W/results.tsv
	: >"$RESULTS"
	PIDS=()
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# cleanup stops every process the script started (each is a `timeout`
# wrapper; its child is the server, or valgrind) and removes the scratch
# directory, unless KEEP=1 or the script failed.
cleanup() {
	local rc=$? p c
	for p in "${PIDS[@]}"; do
		for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -9 "$c" 2>/dev/null || true; done
		kill -9 "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
		log "scratch directory kept: $W"
	else
		rm -rf "$W"
	fi
	exit "$rc"
}

result() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }

median() { sort -n | awk '{a[NR]=$1} END{if (NR==0) exit 1; if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# install_missing ON_FAILURE PKG...: apt-get installs the packages (after
# an apt-get update if the first try fails); ON_FAILURE is die or log.
install_missing() {
	local on_failure=$1 sudo=
	shift
	[ $# -gt 0 ] || return 0
	log "installing $*"
	[ "$(id -u)" = 0 ] || sudo=sudo
	timeout 600 $sudo apt-get install -y "$@" >"$W/apt.log" 2>&1 ||
		{ timeout 600 $sudo apt-get update >>"$W/apt.log" 2>&1 && timeout 600 $sudo apt-get install -y "$@" >>"$W/apt.log" 2>&1; } ||
		"$on_failure" "apt-get install $* failed (see $W/apt.log)"
}

# svcdns_binary: sets SVCDNS, the svcdns measured: SVCDNS_BIN, else
# ./cmd/svcdns built into CACHE (.cache/, which git ignores).
svcdns_binary() {
	mkdir -p "$CACHE"
	# .cache/ ignores itself, so nothing built here is ever committed.
	[ -f "$ROOT/.cache/.gitignore" ] || printf '*\n' >"$ROOT/.cache/.gitignore"
	if [ -n "${SVCDNS_BIN:-}" ]; then
		log "svcdns: using $SVCDNS_BIN (SVCDNS_BIN)"
		SVCDNS=$SVCDNS_BIN
	else
		log "building svcdns"
		go build -o "$CACHE/svcdns" ./cmd/svcdns
		SVCDNS=$CACHE/svcdns
	fi
}

# ports_free BASE N SETTING PROTO...: dies when one of the ports BASE to
# BASE+N-1 is listened on (PROTO udp, tcp), naming the setting that moves
# them.
ports_free() {
	local base=$1 n=$2 setting=$3 p proto taken
	shift 3
	command -v ss >/dev/null || return 0
	for p in $(seq "$base" $((base + n - 1))); do
		taken=
		for proto in "$@"; do
			taken+=$(ss -Hln"${proto:0:1}" "sport = :$p" 2>/dev/null)
		done
		[ -z "$taken" ] || die "port $p is in use; set $setting to a free range of $n ports"
	done
}

declare -A PID

# spawn NAME CPU CMD...: runs CMD pinned to CPU with GOMAXPROCS=1, bounded
# by SRV_TIMEOUT seconds, its output in $W/NAME.log; PID[NAME] is the
# timeout wrapper's pid.
spawn() {
	local name=$1 cpu=$2
	shift 2
	timeout "$SRV_TIMEOUT" taskset -c "$cpu" env GOMAXPROCS=1 "$@" >"$W/$name.log" 2>&1 &
	PIDS+=($!)
	PID[$name]=$!
}

# child NAME: the spawned process itself (the child of timeout).
child() { pgrep -P "${PID[$1]}" | head -1; }

# cpu_ticks PID: utime+stime of a process, in clock ticks.
cpu_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	awk '{print $12 + $13}' <<<"$s"
}

# wait_http URL WHAT: waits up to 20 s for URL to answer 2xx.
wait_http() {
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	die "${2:-nothing} does not answer $1"
}

# haproxy_cfg FILE PORT BACKEND_PORT: HAProxy on one thread in front of one
# backend, keep-alive, setting X-Forwarded-For, -Proto and -Host as
# svcdns's proxy does (the same header work on both).
haproxy_cfg() {
	cat >"$1" <<EOF
global
	nbthread 1
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	option http-keep-alive
	option forwardfor
frontend bench
	http-request set-header X-Forwarded-Proto http
	http-request set-header X-Forwarded-Host %[req.hdr(host)]
	bind 127.0.0.1:$2
	default_backend backends
backend backends
	server b1 127.0.0.1:$3
EOF
}

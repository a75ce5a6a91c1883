#!/usr/bin/env bash
# bench/proxycost.sh: where a proxied request's CPU goes, in figures that
# do not depend on how busy the machine is: user-space instructions per
# request under callgrind (svcdns's proxy, go-bare and HAProxy, each alone
# on SERVER_CPU), grouped for go-bare by what runs them, and system calls
# and context switches per request under wrk (perf's tracepoints). It
# prints a table; the README's proxy limits quote it. About 3 minutes.
#
# Settings (environment): CG_N=2000 requests counted under callgrind, at
# CG_RATE=100 req/s; SERVER_CPU=1 CLIENT_CPU=0; PROXY_PORT_BASE=15370.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CG_N=${CG_N:-2000}
CG_RATE=${CG_RATE:-100}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BASE=${PROXY_PORT_BASE:-15370}
CACHE=$ROOT/.cache/bench
P_BACKEND=$BASE P_PROXY=$((BASE + 1)) P_HTTP=$((BASE + 2)) P_DNS=$((BASE + 3))
SRV_TIMEOUT=900

LOG_TAG="proxy cost"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
scratch svcdns-proxycost

need=()
for c in valgrind:valgrind wrk:wrk haproxy:haproxy curl:curl; do
	command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
install_missing die "${need[@]}"
svcdns_binary
go build -o "$CACHE/httpbench" ./bench/httpbench
HB=$CACHE/httpbench
ports_free "$BASE" 4 PROXY_PORT_BASE tcp
URL=http://127.0.0.1:$P_PROXY/

spawn backend "$CLIENT_CPU" "$HB" backend -addr "127.0.0.1:$P_BACKEND"
wait_http "http://127.0.0.1:$P_BACKEND/"
haproxy_cfg "$W/haproxy.cfg" "$P_PROXY" "$P_BACKEND"
# The command line of each proxy, all on P_PROXY, one at a time.
declare -A CMD=(
	[svcdns]="$SVCDNS --docker-host none --upstream none --dns-addr 127.0.0.1:$P_DNS --http-addr 127.0.0.1:$P_HTTP --proxy-addr 127.0.0.1:$P_PROXY --log-level warn"
	[go-bare]="$HB proxy -addr 127.0.0.1:$P_PROXY -target 127.0.0.1:$P_BACKEND"
	[haproxy]="haproxy -db -f $W/haproxy.cfg"
)
register() { # svcdns only: the backend behind a / route, as bench/proxy.sh
	[ "$1" = svcdns ] || return 0
	wait_http "http://127.0.0.1:$P_HTTP/healthz"
	curl -fsS -X PUT "http://127.0.0.1:$P_HTTP/v1/instances/backend-1" \
		-d "{\"service\":\"bench\",\"address\":\"127.0.0.1\",\"port\":$P_BACKEND,\"proxy\":{\"paths\":[\"/\"]}}" >/dev/null
}
stop() { kill "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; }

declare -A IR SC
for t in svcdns go-bare haproxy; do
	# callgrind: asynchronous preemption's signals trip it; GOGC=400 is
	# svcdns's own setting with the proxy on (set for go-bare too).
	# shellcheck disable=SC2086
	spawn "cg-$t" "$SERVER_CPU" env GOGC=400 GODEBUG=asyncpreemptoff=1 \
		valgrind --tool=callgrind --callgrind-out-file="$W/cg-$t.out" ${CMD[$t]}
	register "$t"
	wait_http "$URL"
	taskset -c "$CLIENT_CPU" "$HB" rate -url "$URL" -rate 50 -duration 4s -conns 16 >/dev/null
	sleep 2
	vp=$(child "cg-$t")
	callgrind_control -z "$vp" >/dev/null
	read -r _ _ _ sent errs _ < <(taskset -c "$CLIENT_CPU" "$HB" rate -url "$URL" -rate "$CG_RATE" \
		-duration "$(awk -v n="$CG_N" -v r="$CG_RATE" 'BEGIN{printf "%.2fs", n / r}')" -conns 16)
	[ "$errs" = 0 ] || die "$errs of $sent requests through $t failed"
	callgrind_control -d "$vp" >/dev/null
	sleep 1
	stop "cg-$t"
	f=$(ls -S "$W/cg-$t.out"* | head -1)
	total=$(callgrind_annotate "$f" | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
	IR[$t]=$((total / sent))
	log "$t: ${IR[$t]} instructions per request (callgrind, $sent requests)"
	if [ "$t" = go-bare ]; then callgrind_annotate --threshold=100 "$f" >"$W/go-bare.annotate"; fi

	# System calls per request at full load, not under valgrind.
	if command -v perf >/dev/null; then
		# shellcheck disable=SC2086
		spawn "$t" "$SERVER_CPU" env GOGC=400 ${CMD[$t]}
		register "$t"
		wait_http "$URL"
		taskset -c "$CLIENT_CPU" wrk -t1 -c32 -d2s "$URL" >/dev/null
		pid=$(child "$t")
		perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o "$W/perf-$t.csv" -- sleep 5 &
		ps=$!
		rps=$(taskset -c "$CLIENT_CPU" wrk -t1 -c32 -d5s "$URL" | awk '/^Requests\/sec:/{print $2}')
		wait "$ps" || true
		stop "$t"
		SC[$t]=$(awk -F, -v n="$rps" '$3 ~ /sys_enter/ {s = $1} $3 ~ /context-switches/ {c = $1} END{printf "%.1f %.2f", s / (n * 5), c / (n * 5)}' "$W/perf-$t.csv")
	fi
done

# go-bare's instructions by what runs them (self cost of each function).
awk '/file:function/{on = 1; next} on && NF == 0 && n {exit} on && $2 ~ /^\(/ {gsub(",", "", $1); n++; $2 = ""; print}' "$W/go-bare.annotate" |
	awk -v req="$CG_N" '
	/clone\.S|start_thread|threadentry|runtime\/cgo|runtime\.mstart/ {next}  # thread starts, counted twice
	{ir = $1; f = $0
	 g = "context, sync, net and poll, time, the rest"
	 if (f ~ /CanonicalMIMEHeaderKey|validHeaderFieldByte/) g = "header names made canonical (textproto)"
	 else if (f ~ /internal\/runtime\/maps|aeshash|strhash|mapaccess|mapassign|mapdelete|mapiter/) g = "maps (header maps)"
	 else if (f ~ /runtime\/(malloc|mgc|mbitmap|mheap|mcache|mcentral|mspanset|mwbbuf|mbarrier|mfixalloc|mpagealloc)|memclr|mallocgc|newobject|makeslice|growslice|makemap|slicebytetostring|concatstring/) g = "allocation and GC (runtime)"
	 else if (f ~ /runtime\/|internal\/runtime\/atomic|runtime\./) g = "goroutines, channels, netpoll, timers, locks (runtime)"
	 else if (f ~ /net\/http|textproto|httputil|net\/url|httpguts/) g = "HTTP parsing, headers, ReverseProxy (net/http)"
	 else if (f ~ /memmove|indexbyte|memeq|cmpbody|bufio|strings|bytes|strconv|fmt\//) g = "bufio, strings, bytes, memmove"
	 s[g] += ir; t += ir}
	END{for (g in s) printf "  %7.0f  %4.1f%%  %s\n", s[g] / req, 100 * s[g] / t, g}' | sort -rn >"$W/groups.txt"

echo
echo "| proxy | instructions/request (callgrind, user space) | system calls/request | context switches/request |"
echo "| --- | ---: | ---: | ---: |"
for t in svcdns go-bare haproxy; do
	read -r s c <<<"${SC[$t]:-- -}"
	echo "| $t | ${IR[$t]} | $s | $c |"
done
echo
echo "go-bare's instructions per request by what runs them:"
cat "$W/groups.txt"

#!/usr/bin/env bash
# bench/proxy.sh: svcdns's HTTP proxy side by side with HAProxy, with a
# bare httputil.ReverseProxy (httpbench proxy: the standard library's part
# of svcdns's proxy alone) and with no proxy at all, in front of one small
# Go backend (bench/httpbench) on loopback. bench/run.sh calls it (SKIP_PROXY=1 leaves it out); it also
# runs alone. Either way it writes its section of BENCHMARKS.md (between
# the proxy markers, replacing the last one) and BENCHMARKS-proxy.png.
#
# The proxy under test (svcdns, go-bare or HAProxy, one thread) is pinned to
# SERVER_CPU; the load generator and the backend share CLIENT_CPU, the
# same for all three, so that "direct" is the same path minus the proxy:
# for throughput, wrk and the backend process; for latency, one process
# that is both (httpbench rate -serve). Latency runs go in rounds, every
# target in turn, each after a warm-up that is not counted.
#
# On a VM that others share, `chrt -f 1 bench/proxy.sh` (root) runs all of
# it as SCHED_FIFO: nothing else preempts the measured processes, and the
# rest of the machine gets the 5% the kernel keeps back, for the ~5 min
# of the run. The section says when it ran so.
#
# Settings (environment):
#   DURATION=10         seconds per run
#   REPS=3              throughput runs per target (median)
#   PROXY_RATE=5000     fixed rate of the latency runs, requests/s
#   LAT_DURATION=5      seconds per latency run (REPS rounds, plus 1 s warm-up each)
#   PROXY_CONNS=32      connections of the throughput runs
#   SKIP_HAPROXY=1      no HAProxy rows
#   SKIP_BARE=1         no go-bare rows
#   SERVER_CPU=1 CLIENT_CPU=0
#   PROXY_PORT_BASE=15370   first of 6 loopback ports
#   SVCDNS_BIN=path     this svcdns binary instead of building ./cmd/svcdns
#   OUT_MD, OUT_PNG     default BENCHMARKS.md, BENCHMARKS-proxy.png
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DURATION=${DURATION:-10}
REPS=${REPS:-3}
PROXY_RATE=${PROXY_RATE:-5000}
LAT_DURATION=${LAT_DURATION:-5}
PROXY_CONNS=${PROXY_CONNS:-32}
SKIP_HAPROXY=${SKIP_HAPROXY:-0}
SKIP_BARE=${SKIP_BARE:-0}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BASE=${PROXY_PORT_BASE:-15370}
OUT_MD=${OUT_MD:-$ROOT/BENCHMARKS.md}
OUT_PNG=${OUT_PNG:-$ROOT/BENCHMARKS-proxy.png}
CACHE=$ROOT/.cache/bench
P_BACKEND=$BASE
P_PROXY=$((BASE + 1))
P_HTTP=$((BASE + 2))
P_DNS=$((BASE + 3))
P_HAPROXY=$((BASE + 4))
P_BARE=$((BASE + 5))

LOG_TAG="proxy bench"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
scratch svcdns-proxybench

# ---- tools ----

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || [ "$SKIP_HAPROXY" = 1 ] || need+=(haproxy)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
install_missing log "${need[@]}"
if [ "$SKIP_HAPROXY" != 1 ] && ! command -v haproxy >/dev/null; then
	log "HAProxy skipped: not installed"
	SKIP_HAPROXY=1
fi
LOADGEN=wrk
command -v wrk >/dev/null || { LOADGEN=httpbench; log "wrk missing: throughput from bench/httpbench max instead"; }

svcdns_binary
go build -o "$CACHE/httpbench" ./bench/httpbench
go build -o "$CACHE/plot" ./bench/plot
HB=$CACHE/httpbench
ports_free "$BASE" 6 PROXY_PORT_BASE tcp

# ---- the backend and the proxies ----

SRV_TIMEOUT=$(((REPS + 1) * 4 * (DURATION + LAT_DURATION + 30) + 300))
spawn backend "$CLIENT_CPU" "$HB" backend -addr "127.0.0.1:$P_BACKEND"
spawn svcdns "$SERVER_CPU" "$SVCDNS" --docker-host none --upstream none --dns-addr "127.0.0.1:$P_DNS" \
	--http-addr "127.0.0.1:$P_HTTP" --proxy-addr "127.0.0.1:$P_PROXY" --log-level warn
wait_http "http://127.0.0.1:$P_BACKEND/" backend
wait_http "http://127.0.0.1:$P_HTTP/healthz" svcdns
curl -fsS -X PUT "http://127.0.0.1:$P_HTTP/v1/instances/backend-1" \
	-d "{\"service\":\"bench\",\"address\":\"127.0.0.1\",\"port\":$P_BACKEND,\"proxy\":{\"paths\":[\"/\"]}}" >/dev/null ||
	die "registration with svcdns failed"
wait_http "http://127.0.0.1:$P_PROXY/" "svcdns's proxy"
TARGETS=(direct svcdns)
declare -A URL=([direct]="http://127.0.0.1:$P_BACKEND/" [svcdns]="http://127.0.0.1:$P_PROXY/")
declare -A MEASURED=([svcdns]=svcdns)
if [ "$SKIP_HAPROXY" != 1 ]; then
	# Static backend list, one thread, keep-alive on both sides, and
	# X-Forwarded-For, -Proto and -Host as svcdns sets them (the same
	# header work on both).
	haproxy_cfg "$W/haproxy.cfg" "$P_HAPROXY" "$P_BACKEND"
	spawn haproxy "$SERVER_CPU" haproxy -db -f "$W/haproxy.cfg"
	wait_http "http://127.0.0.1:$P_HAPROXY/" haproxy
	TARGETS+=(haproxy)
	URL[haproxy]="http://127.0.0.1:$P_HAPROXY/"
	MEASURED[haproxy]=haproxy
fi
if [ "$SKIP_BARE" != 1 ]; then
	# GOGC=400: svcdns's own default with the proxy on.
	spawn bare "$SERVER_CPU" env GOGC=400 "$HB" proxy -addr "127.0.0.1:$P_BARE" -target "127.0.0.1:$P_BACKEND"
	wait_http "http://127.0.0.1:$P_BARE/" "the bare ReverseProxy"
	TARGETS+=(go-bare)
	URL[go-bare]="http://127.0.0.1:$P_BARE/"
	MEASURED[go-bare]=bare
fi

# ---- throughput: REPS rounds, each target in turn ----

max_rps() { # url out -> prints rps
	if [ "$LOADGEN" = wrk ]; then
		taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) wrk -t1 -c"$PROXY_CONNS" -d"${DURATION}s" "$1" >"$2" 2>&1 || return 1
		awk '/^Requests\/sec:/{printf "%.0f\n", $2}' "$2"
	else
		taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) "$HB" max -url "$1" -conns "$PROXY_CONNS" -duration "${DURATION}s" >"$2" 2>&1 || return 1
		awk '{print $1}' "$2"
	fi
}
declare -A RUNS CORE ADDED
for rep in $(seq 1 "$REPS"); do
	for t in "${TARGETS[@]}"; do
		pid=
		[ -n "${MEASURED[$t]:-}" ] && pid=$(child "${MEASURED[$t]}")
		t0=0
		[ -n "$pid" ] && t0=$(cpu_ticks "$pid")
		rps=$(max_rps "${URL[$t]}" "$W/$t-$rep.out") || die "load against $t failed: $(tail -3 "$W/$t-$rep.out")"
		[ -n "$rps" ] || die "no figure in $W/$t-$rep.out"
		RUNS[$t]="${RUNS[$t]:-} $rps"
		msg="round $rep/$REPS $t: $rps req/s"
		if [ -n "$pid" ]; then
			t1=$(cpu_ticks "$pid")
			cpu=$(awk -v t="$((t1 - t0))" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", 100 * t / hz / d}')
			percore=$(awk -v r="$rps" -v c="$cpu" 'BEGIN{if (c > 0) printf "%.0f", r * 100 / c}')
			[ -n "$percore" ] && CORE[$t]="${CORE[$t]:-} $percore"
			msg="$msg, proxy CPU $cpu%, $percore req/s per proxy core"
		fi
		log "$msg"
	done
done
for t in "${TARGETS[@]}"; do
	# shellcheck disable=SC2086
	result "$t" rps "$(printf '%s\n' ${RUNS[$t]} | median)"
	result "$t" rps_runs "$(echo ${RUNS[$t]})"
	# shellcheck disable=SC2086
	[ -n "${CORE[$t]:-}" ] && result "$t" rps_core "$(printf '%s\n' ${CORE[$t]} | median)"
done

# ---- latency at a fixed rate: REPS rounds, each target in turn ----

# Rounds rather than one run per target: a burst of other work on the VM
# then lands in every target's figures alike, and the p99 the proxy adds
# is taken within each round (proxy minus direct, minutes apart at most)
# before the median over rounds. The first second of each run is sent
# and not counted (the proxies' connections to the backend, a GC cycle).
# The proxy's CPU over the run gives its CPU per request at this load,
# the same for every proxy. The backend runs inside the load generator
# (rate -serve, one Go runtime on the client core): as two processes
# taking turns on that core they made direct's p50 higher than through a
# proxy on the other core (735 against 475 µs in the run of 18:05 UTC),
# so direct was not the same path minus the proxy.
kill "${PID[backend]}"
wait "${PID[backend]}" 2>/dev/null || true
declare -A LP50 LP99 LP999 LERR LCORE
SLOW_LAT=
for rep in $(seq 1 "$REPS"); do
	for t in "${TARGETS[@]}"; do
		pid=
		[ -n "${MEASURED[$t]:-}" ] && pid=$(child "${MEASURED[$t]}")
		t0=0
		[ -n "$pid" ] && t0=$(cpu_ticks "$pid")
		read -r p50 p99 p999 sent errs achieved < <(taskset -c "$CLIENT_CPU" timeout $((LAT_DURATION + 60)) \
			"$HB" rate -serve "127.0.0.1:$P_BACKEND" -url "${URL[$t]}" -rate "$PROXY_RATE" -duration "${LAT_DURATION}s" -warmup 1s -conns 64) ||
			die "fixed-rate run against $t failed"
		msg="latency round $rep/$REPS $t at $PROXY_RATE req/s (achieved $achieved): p50/p99/p99.9 $p50/$p99/$p999 µs, $sent counted, $errs errors"
		if [ -n "$pid" ]; then
			t1=$(cpu_ticks "$pid")
			# warm-up included: 1 s more of requests at the rate
			core=$(awk -v t="$((t1 - t0))" -v n="$((sent + PROXY_RATE))" -v hz="$(getconf CLK_TCK)" 'BEGIN{if (t > 0) printf "%.0f", n * hz / t}')
			[ -n "$core" ] && LCORE[$t]="${LCORE[$t]:-} $core"
			msg="$msg, $core req/s per proxy core"
		fi
		log "$msg"
		awk -v a="$achieved" -v r="$PROXY_RATE" 'BEGIN{exit !(a < 0.95 * r)}' && SLOW_LAT+=" $t:$achieved"
		LP50[$t]="${LP50[$t]:-} $p50"
		LP99[$t]="${LP99[$t]:-} $p99"
		LP999[$t]="${LP999[$t]:-} $p999"
		LERR[$t]=$((${LERR[$t]:-0} + errs))
	done
	for t in "${TARGETS[@]}"; do
		[ "$t" = direct ] && continue
		a=$(echo ${LP99[$t]} | awk '{print $NF}')
		d=$(echo ${LP99[direct]} | awk '{print $NF}')
		ADDED[$t]="${ADDED[$t]:-} $((a - d))"
	done
done
for t in "${TARGETS[@]}"; do
	# shellcheck disable=SC2086
	{
		result "$t" p50 "$(printf '%s\n' ${LP50[$t]} | median)"
		result "$t" p99 "$(printf '%s\n' ${LP99[$t]} | median)"
		result "$t" p999 "$(printf '%s\n' ${LP999[$t]} | median)"
		result "$t" p99_runs "$(echo ${LP99[$t]})"
		result "$t" lat_errors "${LERR[$t]}"
		[ -n "${ADDED[$t]:-}" ] && result "$t" added_p99 "$(printf '%s\n' ${ADDED[$t]} | median)"
		[ -n "${ADDED[$t]:-}" ] && result "$t" added_runs "$(echo ${ADDED[$t]})"
		[ -n "${LCORE[$t]:-}" ] && result "$t" rate_core "$(printf '%s\n' ${LCORE[$t]} | median)"
	}
done

# ---- catalog change -> route table ----

ROUTE_OUT=$W/routeupdate.txt
log "catalog change -> route table (go test -bench RouteUpdate ./proxy/)"
timeout 600 taskset -c "$SERVER_CPU" go test -run '^$' -bench RouteUpdate -benchtime 2000x ./proxy/ >"$ROUTE_OUT" 2>&1 ||
	log "the route update benchmark failed (output in the report)"
read -r ru50 ru99 < <(awk '/^BenchmarkRouteUpdate/{for (i = 1; i < NF; i++) {if ($(i+1) == "p50-µs") a = $i; if ($(i+1) == "p99-µs") b = $i}; print a, b}' "$ROUTE_OUT") || true
log "route update: p50 ${ru50:-?} µs, p99 ${ru99:-?} µs"

# ---- the report ----

val() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k {print $3}' "$RESULTS"; }
"$CACHE/plot" -mode proxy -in "$RESULTS" -out "$OUT_PNG" -lat-qps "$((PROXY_RATE / 1000))k" \
	-title "HTTP proxy, one pinned proxy core, $(date -u +%F)" || log "plot failed"

d99=$(val direct p99)
s99=$(val svcdns p99)
h99=$(val haproxy p99)
sc=$(val svcdns rps_core)
hc=$(val haproxy rps_core)
added=$(val svcdns added_p99)
hadded=$(val haproxy added_p99)
sr=$(val svcdns rate_core)
hr=$(val haproxy rate_core)
rratio=$(awk -v a="$sr" -v b="$hr" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "n/a"}')
ratio=$(awk -v a="$sc" -v b="$hc" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "n/a"}')
bc=$(val go-bare rps_core)
bratio=$(awk -v a="$sc" -v b="$bc" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "n/a"}')
hbratio=$(awk -v a="$bc" -v b="$hc" 'BEGIN{if (b > 0) printf "%.2f", a / b; else print "n/a"}')
verdict() { awk -v v="$1" -v lim="$2" -v op="$3" 'BEGIN{if (v == "" || v == "n/a") print "not measured"; else if ((op == "le" && v + 0 <= lim) || (op == "ge" && v + 0 >= lim)) print "met"; else print "missed"}'; }

SECTION=$W/section.md
{
	echo "<!-- proxy:begin (bench/proxy.sh writes this section) -->"
	echo "## HTTP proxy"
	echo
	echo "- date: $(date -u '+%F %T UTC'); command: \`DURATION=$DURATION REPS=$REPS PROXY_RATE=$PROXY_RATE LAT_DURATION=$LAT_DURATION bench/proxy.sh\`;"
	if chrt -p $$ 2>/dev/null | grep -q SCHED_FIFO; then
		echo "  run under \`chrt -f 1\` (SCHED_FIFO, every process of it: the VM's other work cannot preempt"
		echo "  them, only take the 5% the kernel keeps for it; same-priority processes on one core take"
		echo "  turns only when one waits);"
	fi
	echo "  load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(nproc) CPUs; $(haproxy -v 2>/dev/null | head -1 | awk '{print "HAProxy " $3 ","}') load generator $LOADGEN;"
	echo "  svcdns \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git -C "$ROOT" diff --quiet -- . ':!BENCHMARKS.md' ':!BENCHMARKS.png' ':!BENCHMARKS-proxy.png' 2>/dev/null || echo ' plus uncommitted changes')"
	if [ -n "$SLOW_LAT" ]; then
		echo "- **latency runs below the rate** (target:achieved req/s,$SLOW_LAT): the client core was"
		echo "  short of CPU (other work on the machine), so those latencies are not at $PROXY_RATE req/s."
	fi
	if [ "$DURATION" -lt 10 ] || [ "$REPS" -lt 3 ]; then
		echo "- **smoke settings**: these figures check the harness, they are not the measurement."
	fi
	echo
	echo "One Go backend (\`bench/httpbench backend\`, 200 and 3 bytes) on loopback. The proxy under"
	echo "test runs on CPU $SERVER_CPU with one thread (svcdns GOMAXPROCS=1 with \`--proxy-addr\` and the"
	echo "backend registered with a \`/\` route; HAProxy \`nbthread 1\`, static \`server\` line,"
	echo "keep-alive, \`option forwardfor\` and X-Forwarded-Proto and -Host set as svcdns sets them; *go-bare* \`httpbench proxy\`, GOMAXPROCS=1 and GOGC=400 as"
	echo "svcdns sets it: a bare \`httputil.ReverseProxy\` to the backend with svcdns's Transport and"
	echo "Server settings and none of its own code); the load generator and the backend share CPU $CLIENT_CPU"
	echo "for every row, so *direct* is the same path without a proxy. Throughput: \`wrk -t1"
	echo "-c$PROXY_CONNS -d${DURATION}s\`, median of $REPS rounds; req/s per proxy core = req/s ÷ the"
	echo "proxy's CPU share during the run (the client core saturates first). Latency:"
	echo "\`httpbench rate\` open-loop at $PROXY_RATE req/s over 64 keep-alive connections, each"
	echo "request timed from when it was due (the sender sleeping on a thread of its own: Go's timers"
	echo "would send them in bursts a millisecond apart), the backend served by the same process (\`rate -serve\`,"
	echo "so that client and backend do not take turns on CPU $CLIENT_CPU as two processes);"
	echo "$REPS rounds of every target in turn, each ${LAT_DURATION} s"
	echo "counted after 1 s sent and not counted; the p50/p99/p99.9 shown are medians over the"
	echo "rounds, and the p99 a proxy adds is its p99 minus direct's in the same round, median"
	echo "over the rounds. *at $PROXY_RATE req/s*: the same division during these runs, every"
	echo "proxy at the same load (its client and backend as busy as for the others)."
	echo
	echo "![req/s and p99 through each proxy]($(basename "$OUT_PNG"))"
	echo
	echo "| target | req/s | req/s per proxy core | per proxy core at $PROXY_RATE req/s | p50 µs | p99 µs | p99.9 µs | p99 added µs (rounds) | errors |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do
		a=$(val "$t" added_p99)
		[ -n "$a" ] && a="$a ($(val "$t" added_runs))"
		echo "| $t | $(val "$t" rps) | $(val "$t" rps_core) | $(val "$t" rate_core) | $(val "$t" p50) | $(val "$t" p99) | $(val "$t" p999) | $a | $(val "$t" lat_errors) |"
	done
	echo
	echo "| target | goal | measured | |"
	echo "| --- | --- | --- | --- |"
	echo "| p99 added by svcdns's proxy at $PROXY_RATE req/s | ≤ 1000 µs | $added µs (p99 svcdns $s99, direct $d99${h99:+, HAProxy $h99, added by HAProxy $hadded}) | $(verdict "$added" 1000 le) |"
	echo "| req/s per proxy core, svcdns ÷ HAProxy | ≥ 0.5 | $ratio ($sc vs ${hc:-n/a}; at $PROXY_RATE req/s: $rratio, $sr vs ${hr:-n/a}) | $(verdict "$ratio" 0.5 ge) |"
	echo "| catalog change → route table, p99 (1,000 routed services) | ≤ 5000 µs | ${ru99:-?} µs (p50 ${ru50:-?}) | $(verdict "${ru99:-}" 5000 le) |"
	echo
	if [ -n "$bc" ]; then
		echo "Per proxy core, svcdns ÷ go-bare: $bratio; go-bare ÷ HAProxy: $hbratio. go-bare is what"
		echo "\`httputil.ReverseProxy\` with \`net/http\`'s Server and Transport reaches alone on this"
		echo "machine. svcdns adds its route table, balancer, retries and metrics, and sends plain"
		echo "HTTP/1.1 requests over its own h1Transport (net/http's wire code on the request's"
		echo "goroutine, no per-connection goroutines), which is why it can pass go-bare. Where a"
		echo "request's CPU goes (instructions, system calls and context switches per request):"
		echo "\`bench/proxycost.sh\`, explained in docs/performance-notes.md (HTTP proxy)."
		echo
	fi
	echo "Catalog change → route table: \`go test -bench RouteUpdate -benchtime 2000x ./proxy/\`,"
	echo "from a registration's return to the swap of the rebuilt table."
	echo
	echo '```'
	grep -E '^(Benchmark|ok|FAIL|---)' "$ROUTE_OUT" || true
	echo '```'
	echo "<!-- proxy:end -->"
} >"$SECTION"

# Splice the section into OUT_MD: replace the last one, or append.
if [ -f "$OUT_MD" ] && grep -q '^<!-- proxy:begin' "$OUT_MD"; then
	awk -v sec="$SECTION" '
		/^<!-- proxy:begin/ {while ((getline l < sec) > 0) print l; skip = 1; next}
		/^<!-- proxy:end/ {skip = 0; next}
		!skip {print}' "$OUT_MD" >"$W/out.md"
	cp "$W/out.md" "$OUT_MD"
else
	{ [ -f "$OUT_MD" ] && echo; cat "$SECTION"; } >>"$OUT_MD"
fi
cat "$SECTION" >&2
log "wrote the proxy section of $OUT_MD and $OUT_PNG"

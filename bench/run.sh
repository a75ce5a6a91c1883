#!/usr/bin/env bash
# bench/run.sh: svcdns side by side with CoreDNS (file and hosts plugins)
# and dnsmasq, on loopback, with the data set and harness of
# /work/shared/research/performance-anchors.md §4, then instructions per
# query under callgrind, the Go benchmarks, and event -> resolvable on the
# real Docker engine. Writes BENCHMARKS.md and BENCHMARKS.png at the top of
# the repository.
#
# Settings (environment):
#   DURATION=10        seconds per dnsperf run
#   REPS=3             throughput runs per server and query file (median)
#   LAT_QPS=30000      fixed rate of the latency runs
#   CG_QPS=3000        rate of the callgrind runs
#   SKIP_COREDNS=1     no CoreDNS (no go install, no CoreDNS rows)
#   SKIP_DNSMASQ=1     no dnsmasq
#   SKIP_BARE=1        no miekg-bare (bench/bare: the bare miekg/dns ceiling)
#   SKIP_CALLGRIND=1   no instructions-per-query step
#   SKIP_DOCKER=1      no event -> resolvable step on the real engine
#   SKIP_GOBENCH=1     no Go benchmarks
#   SKIP_PROXY=1       no HTTP proxy section (bench/proxy.sh, which also runs alone)
#   SKIP_CLUSTER=1     no cluster figures (bench/cluster.sh, its own settings)
#   GOBENCHTIME=1s     -benchtime of the Go benchmarks
#   EVENTLAT_N=100     containers of the event -> resolvable step
#   SERVER_CPU=1 CLIENT_CPU=0   cores the servers and dnsperf are pinned to
#   PORT_BASE=15350    first of the loopback ports used (15350..15359)
#   SVCDNS_BIN=path    benchmark this binary instead of building ./cmd/svcdns
#   OUT_MD, OUT_PNG    where the report goes (default BENCHMARKS.md/.png)
#   KEEP=1             keep the scratch directory (logs, dnsperf output)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# The command as given, with the settings the caller set.
COMMAND="$(for v in DURATION REPS LAT_QPS CG_QPS SKIP_COREDNS SKIP_DNSMASQ SKIP_BARE SKIP_CALLGRIND SKIP_DOCKER SKIP_GOBENCH SKIP_PROXY SKIP_CLUSTER GOBENCHTIME EVENTLAT_N SVCDNS_BIN; do
	if [ -n "${!v+x}" ]; then printf '%s=%s ' "$v" "${!v}"; fi; done)bench/run.sh"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DURATION=${DURATION:-10}
REPS=${REPS:-3}
LAT_QPS=${LAT_QPS:-30000}
CG_QPS=${CG_QPS:-3000}
SKIP_COREDNS=${SKIP_COREDNS:-0}
SKIP_DNSMASQ=${SKIP_DNSMASQ:-0}
SKIP_BARE=${SKIP_BARE:-0}
SKIP_CALLGRIND=${SKIP_CALLGRIND:-0}
SKIP_DOCKER=${SKIP_DOCKER:-0}
SKIP_GOBENCH=${SKIP_GOBENCH:-0}
SKIP_PROXY=${SKIP_PROXY:-0}
SKIP_CLUSTER=${SKIP_CLUSTER:-0}
GOBENCHTIME=${GOBENCHTIME:-1s}
EVENTLAT_N=${EVENTLAT_N:-100}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT_BASE=${PORT_BASE:-15350}
OUT_MD=${OUT_MD:-$ROOT/BENCHMARKS.md}
OUT_PNG=${OUT_PNG:-$ROOT/BENCHMARKS.png}
# The CoreDNS compared with: scripts/coredns.sh builds bench/coredns (CoreDNS's
# own main with the plugins used here) at the version its go.mod pins.
COREDNS_VERSION=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$ROOT/bench/coredns/go.mod")
CACHE=$ROOT/.cache/bench

# Every loopback port of the run.
P_SVCDNS=$PORT_BASE            # svcdns DNS
P_SVCDNS_HTTP=$((PORT_BASE + 1))
P_CG_HTTP=$((PORT_BASE + 2))   # svcdns HTTP under callgrind
P_COREDNS_FILE=$((PORT_BASE + 3))
P_DNSMASQ=$((PORT_BASE + 4))
P_COREDNS_HOSTS=$((PORT_BASE + 5))
P_CG=$((PORT_BASE + 6))        # whichever server runs under callgrind
P_EVENTLAT=$((PORT_BASE + 7))  # svcdns of the Docker step
P_BARE=$((PORT_BASE + 8))
P_BARE_HTTP=$((PORT_BASE + 9))

LOG_TAG=bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
scratch svcdns-bench

# ---- tools ----

need_pkgs=()
command -v dnsperf >/dev/null || need_pkgs+=(dnsperf)
command -v dnsmasq >/dev/null || [ "$SKIP_DNSMASQ" = 1 ] || need_pkgs+=(dnsmasq-base)
command -v valgrind >/dev/null || [ "$SKIP_CALLGRIND" = 1 ] || need_pkgs+=(valgrind)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
install_missing die "${need_pkgs[@]}"
command -v dnsperf >/dev/null || die "dnsperf missing"

if [ "$SKIP_COREDNS" != 1 ]; then
	if ! "$ROOT/scripts/coredns.sh" >/dev/null 2>"$W/coredns-build.log"; then
		log "CoreDNS skipped: scripts/coredns.sh failed (last lines below)"
		tail -5 "$W/coredns-build.log" >&2 || true
		SKIP_COREDNS=1
	fi
else
	log "CoreDNS skipped (SKIP_COREDNS=1)"
fi
if [ "$SKIP_DNSMASQ" != 1 ] && ! command -v dnsmasq >/dev/null; then
	log "dnsmasq skipped: not installed"
	SKIP_DNSMASQ=1
fi

svcdns_binary
log "building the bench tools"
for t in gen plot eventlat bare; do go build -o "$CACHE/$t" "./bench/$t"; done
GEN=$CACHE/gen

ports_free "$PORT_BASE" 10 PORT_BASE udp tcp

# ---- data (anchors §4) ----

"$GEN" data -dir "$W"
printf 'service.local.:%s {\n bind 127.0.0.1\n file %s/db\n}\n' "$P_COREDNS_FILE" "$W" >"$W/Corefile"
printf 'service.local.:%s {\n bind 127.0.0.1\n hosts %s/hosts {\n  no_reverse\n }\n}\n' "$P_COREDNS_HOSTS" "$W" >"$W/Corefile.hosts"
printf 'service.local.:%s {\n bind 127.0.0.1\n file %s/db\n}\n' "$P_CG" "$W" >"$W/Corefile.cg"

# Each server is bounded by timeout: long enough for every run below.
SRV_TIMEOUT=$((REPS * 2 * (DURATION + 10) * 5 + 4 * (DURATION + 10) + 300))

svcdns_cmd() { # dns-port http-port
	echo "$SVCDNS --docker-host none --dns-addr 127.0.0.1:$1 --http-addr 127.0.0.1:$2 --upstream none --ttl 0"
}
coredns_cmd() { echo "$CACHE/coredns -conf $1"; }
dnsmasq_cmd() {
	echo "dnsmasq --no-daemon --port=$1 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --addn-hosts=$W/hosts --conf-file=$W/srv.conf --local=/service.local/ --pid-file= --log-facility=-"
}

declare -A SPORT SFILES SLOG
SERVERS=()

# start NAME PORT FILES CMD...: a server on SERVER_CPU (spawn), answering
# on PORT, measured with the query FILES.
start() {
	local name=$1 port=$2 files=$3
	shift 3
	spawn "$name" "$SERVER_CPU" "$@"
	SPORT[$name]=$port
	SFILES[$name]=$files
	SLOG[$name]=$W/$name.log
	SERVERS+=("$name")
}

rss_anon() { awk '/^RssAnon/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# shellcheck disable=SC2046
start svcdns "$P_SVCDNS" "qmix qa" $(svcdns_cmd "$P_SVCDNS" "$P_SVCDNS_HTTP")
if [ "$SKIP_COREDNS" != 1 ]; then
	# shellcheck disable=SC2046
	start coredns-file "$P_COREDNS_FILE" "qmix qa" $(coredns_cmd "$W/Corefile")
	# shellcheck disable=SC2046
	start coredns-hosts "$P_COREDNS_HOSTS" "qa" $(coredns_cmd "$W/Corefile.hosts")
fi
if [ "$SKIP_DNSMASQ" != 1 ]; then
	# shellcheck disable=SC2046
	start dnsmasq "$P_DNSMASQ" "qmix qa" $(dnsmasq_cmd "$P_DNSMASQ")
fi
if [ "$SKIP_BARE" != 1 ]; then
	# Same flags and registration API as svcdns.
	start miekg-bare "$P_BARE" "qmix qa" "$CACHE/bare" --dns-addr "127.0.0.1:$P_BARE" --http-addr "127.0.0.1:$P_BARE_HTTP"
fi

log "registering 1,001 instances with svcdns"
"$GEN" register -api "http://127.0.0.1:$P_SVCDNS_HTTP" -timeout 60s ||
	{ tail -20 "${SLOG[svcdns]}" >&2; die "registration with svcdns failed"; }
if [ "$SKIP_BARE" != 1 ]; then
	"$GEN" register -api "http://127.0.0.1:$P_BARE_HTTP" -timeout 60s >/dev/null ||
		{ tail -20 "${SLOG[miekg-bare]}" >&2; die "registration with miekg-bare failed"; }
fi
for s in "${SERVERS[@]}"; do
	types=A,SRV
	[ "${SFILES[$s]}" = qa ] && types=A
	shape=$("$GEN" check -server "127.0.0.1:${SPORT[$s]}" -types "$types" -wait 30s) ||
		{ tail -20 "${SLOG[$s]}" >&2; die "$s does not answer the data set"; }
	log "$shape"
	result "$s" shape "${shape#*: }"
	result "$s" rss_loaded "$(rss_anon "$(child "$s")")"
done

# ---- throughput: REPS rounds, every server in turn in each round ----

dnsperf_max() { # port file out
	taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) \
		dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 4 -T 1 -q 200 >"$3" 2>&1
}

declare -A RUNS CORE
for rep in $(seq 1 "$REPS"); do
	for s in "${SERVERS[@]}"; do
		for f in ${SFILES[$s]}; do
			qfile=$W/q-mix.txt
			[ "$f" = qa ] && qfile=$W/q-a.txt
			out=$W/$s-$f-$rep.dnsperf
			pid=$(child "$s")
			t0=$(cpu_ticks "$pid")
			dnsperf_max "${SPORT[$s]}" "$qfile" "$out" || die "dnsperf against $s failed: $(tail -3 "$out")"
			t1=$(cpu_ticks "$pid")
			read -r qps lost rt < <("$GEN" qps <"$out")
			[ -n "$qps" ] || die "no figures in $out"
			# Server CPU over dnsperf's own run time (which leaves out the
			# wait for lost queries at the end).
			cpu=$(awk -v t="$((t1 - t0))" -v rt="$rt" -v hz="$(getconf CLK_TCK)" 'BEGIN{if (rt > 0) printf "%.0f", 100 * t / hz / rt; else print "?"}')
			RUNS[$s.$f]="${RUNS[$s.$f]:-} $qps"
			# Queries per second of server CPU: what a server can do on one
			# core, whether or not dnsperf (one core too) could keep it busy.
			percore=$(awk -v q="$qps" -v c="$cpu" 'BEGIN{if (c > 0) printf "%.0f", q * 100 / c; else print ""}')
			[ -n "$percore" ] && CORE[$s.$f]="${CORE[$s.$f]:-} $percore"
			log "round $rep/$REPS $s $f: $qps q/s, lost $lost, server CPU $cpu%, $percore q/s per server core"
			[ "$rep" = 1 ] && [ "$f" = "${SFILES[$s]%% *}" ] && result "$s" cpu "$cpu"
		done
	done
done
for s in "${SERVERS[@]}"; do
	for f in ${SFILES[$s]}; do
		# shellcheck disable=SC2086
		result "$s" "$f" "$(printf '%s\n' ${RUNS[$s.$f]} | median)"
		result "$s" "${f}_runs" "$(echo ${RUNS[$s.$f]})"
		# shellcheck disable=SC2086
		[ -n "${CORE[$s.$f]:-}" ] && result "$s" "${f}_core" "$(printf '%s\n' ${CORE[$s.$f]} | median)"
	done
done

# ---- latency at a fixed rate ----

for s in "${SERVERS[@]}"; do
	qfile=$W/q-mix.txt
	lf=q-mix
	[ "${SFILES[$s]}" = qa ] && { qfile=$W/q-a.txt; lf=q-a; }
	out=$W/$s-lat.dnsperf
	taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) \
		dnsperf -s 127.0.0.1 -p "${SPORT[$s]}" -d "$qfile" -l "$DURATION" -Q "$LAT_QPS" -c 4 -q 500 -v >"$out" 2>&1 ||
		die "dnsperf -v against $s failed: $(tail -3 "$out")"
	read -r p50 p99 p999 done lost < <("$GEN" pct <"$out")
	[ -n "$p50" ] || die "no per-query lines in $out"
	read -r aqps _ < <("$GEN" qps <"$out")
	log "latency $s at $LAT_QPS q/s ($lf, achieved $aqps): p50/p99/p99.9 $p50/$p99/$p999 µs, $done answered, $lost lost"
	result "$s" p50 "$p50"
	result "$s" p99 "$p99"
	result "$s" p999 "$p999"
	result "$s" lat_file "$lf"
	result "$s" lat_lost "$lost"
	result "$s" rss_after "$(rss_anon "$(child "$s")")"
	rm -f "$out" # about 30 MB at 30k q/s for 10 s
done

# The throughput servers are done: stop them before callgrind.
for s in "${SERVERS[@]}"; do
	kill "${PID[$s]}" 2>/dev/null || true
	wait "${PID[$s]}" 2>/dev/null || true
done

# ---- instructions per query (callgrind) ----

# settle PID: waits, at most 10 s, until PID has used under 10% of a core
# over half a second: the GC cycle the warm-up's garbage started (0.2-0.8 s
# under valgrind) is over before counting starts.
settle() {
	local t0 t1
	for _ in $(seq 1 20); do
		t0=$(cpu_ticks "$1")
		sleep 0.5
		t1=$(cpu_ticks "$1")
		[ $(((t1 - t0) * 100)) -lt $(($(getconf CLK_TCK) * 5)) ] && return 0
	done
	log "callgrind: pid $1 still busy after 10 s; counting anyway"
}

# cg_run NAME N CMD...: sets CG_IR, the Ir of the whole process over N
# queries, counted from zero once it has answered every question of the
# file once, and CG_N, the queries answered. No command
# substitution here: the valgrind pid must reach PIDS for the cleanup.
cg_run() {
	local name=$1 n=$2 v vp out lost
	shift 2
	CG_IR=0 CG_N=0
	out=$W/cg-$name-$n.out
	head -n "$n" "$W/q-mix.txt" >"$W/qn.txt"
	sort -u "$W/q-mix.txt" >"$W/q-uniq.txt"
	GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 timeout 900 taskset -c "$SERVER_CPU" \
		valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$W/cg-$name-$n.log" 2>&1 &
	v=$!
	PIDS+=("$v")
	if [ "$name" = svcdns ] || [ "$name" = miekg-bare ]; then
		"$GEN" register -api "http://127.0.0.1:$P_CG_HTTP" -c 4 -timeout 300s >/dev/null ||
			{ tail -20 "$W/cg-$name-$n.log" >&2; return 1; }
	fi
	"$GEN" check -server "127.0.0.1:$P_CG" -types A -wait 300s >/dev/null ||
		{ tail -20 "$W/cg-$name-$n.log" >&2; return 1; }
	# Every question once, then count from zero. Start-up, registration and
	# the first answer to each question (packing, the GC cycles its garbage
	# brings) vary by tens of millions of instructions from one process to
	# the next, more than 10,000 queries cost: the figure was once the
	# difference of a 20,000- and a 10,000-query run each counted from the
	# start, mostly that noise (4.9k-10.8k for one build).
	taskset -c "$CLIENT_CPU" timeout 600 dnsperf -s 127.0.0.1 -p "$P_CG" -d "$W/q-uniq.txt" -n 1 -l 300 -Q "$CG_QPS" -t 5 \
		>"$W/cg-$name-$n-warm.dnsperf" 2>&1 || { tail -3 "$W/cg-$name-$n-warm.dnsperf" >&2; return 1; }
	vp=$(pgrep -P "$v" | head -1)
	settle "$vp"
	callgrind_control -z "$vp" >/dev/null 2>&1 || true
	taskset -c "$CLIENT_CPU" timeout 600 dnsperf -s 127.0.0.1 -p "$P_CG" -d "$W/qn.txt" -n 1 -l 300 -Q "$CG_QPS" -t 5 \
		>"$W/cg-$name-$n.dnsperf" 2>&1 || { tail -3 "$W/cg-$name-$n.dnsperf" >&2; return 1; }
	callgrind_control -d "$vp" >/dev/null 2>&1 || true
	for _ in $(seq 1 300); do
		grep -qs '^summary:' "$out"* && break
		sleep 0.1
	done
	kill -9 "$vp" 2>/dev/null || true
	wait "$v" 2>/dev/null || true
	CG_IR=$(cat "$out"* 2>/dev/null | awk '/^summary:/{s+=$2} END{printf "%.0f", s}')
	read -r _ lost _ < <("$GEN" qps <"$W/cg-$name-$n.dnsperf")
	CG_N=$((n - lost))
}

# cg_unusable: valgrind could not run the server here. Valgrind 3.19 does
# not decode RDTSCP (0F 01 F9), which the kernel's vDSO clock uses on CPUs
# that have it (seen on AMD EPYC); every Go server dies of SIGILL under it.
CG_BROKEN=
cg_unusable() { # NAME N
	if grep -qs 'unhandled instruction bytes: 0xF 0x1 0xF9' "$W/cg-$1-$2.log"; then
		CG_BROKEN="valgrind 3.19 cannot decode RDTSCP, which this kernel's vDSO clock uses (perf counters are not exposed either)"
		log "callgrind unusable on this machine: $CG_BROKEN"
		result svcdns ipq_note "$CG_BROKEN"
	fi
}

cg_ipq() { # NAME CMD...
	local name=$1 ipq
	shift
	[ -z "$CG_BROKEN" ] || return 0
	cg_run "$name" 20000 "$@" || { log "callgrind $name: 20,000-query run failed"; cg_unusable "$name" 20000; return 0; }
	if [ "$CG_IR" -le 0 ] || [ "$CG_N" -le 0 ]; then
		log "callgrind $name: no usable counts (Ir $CG_IR, $CG_N answered)"
		return 0
	fi
	ipq=$((CG_IR / CG_N))
	log "callgrind $name: Ir $CG_IR over $CG_N answered queries: $ipq instructions/query"
	result "$name" ipq "$ipq"
	result "$name" ipq_detail "Ir $CG_IR over $CG_N queries"
}

if [ "$SKIP_CALLGRIND" != 1 ]; then
	log "callgrind: svcdns (one run under valgrind, a minute or two)"
	# shellcheck disable=SC2046
	cg_ipq svcdns $(svcdns_cmd "$P_CG" "$P_CG_HTTP")
	if [ "$SKIP_COREDNS" != 1 ]; then
		log "callgrind: coredns-file"
		# shellcheck disable=SC2046
		cg_ipq coredns-file $(coredns_cmd "$W/Corefile.cg")
	fi
	if [ "$SKIP_BARE" != 1 ]; then
		log "callgrind: miekg-bare"
		cg_ipq miekg-bare "$CACHE/bare" --dns-addr "127.0.0.1:$P_CG" --http-addr "127.0.0.1:$P_CG_HTTP"
	fi
else
	log "callgrind skipped (SKIP_CALLGRIND=1)"
fi

# ---- Go benchmarks ----

GOBENCH_OUT=$W/gobench.txt
: >"$GOBENCH_OUT"
if [ "$SKIP_GOBENCH" != 1 ]; then
	pkgs=(./bench/)
	for p in dnsserver catalog watcher; do
		[ -d "$p" ] && grep -qs '^func Benchmark' "$p"/*_test.go && pkgs+=("./$p/")
	done
	log "Go benchmarks: ${pkgs[*]}"
	timeout 1200 go test -run '^$' -bench . -benchmem -benchtime "$GOBENCHTIME" -timeout 15m "${pkgs[@]}" >"$GOBENCH_OUT" 2>&1 ||
		log "go test -bench failed (output in the report)"
	grep -E '^(Benchmark|ok|FAIL|---)' "$GOBENCH_OUT" >&2 || true
fi

# ---- event -> resolvable on the real Docker engine ----

EVENTLAT_OUT=$W/eventlat.txt
: >"$EVENTLAT_OUT"
if [ "$SKIP_DOCKER" != 1 ]; then
	if docker info >/dev/null 2>&1; then
		log "event -> resolvable: $EVENTLAT_N containers on the real engine"
		timeout 900 "$CACHE/eventlat" -svcdns "$SVCDNS" -n "$EVENTLAT_N" -dns-port "$P_EVENTLAT" >"$EVENTLAT_OUT" 2>"$W/eventlat.log" ||
			{ log "eventlat failed:"; tail -5 "$W/eventlat.log" >&2; }
		cat "$EVENTLAT_OUT" >&2
	else
		log "event -> resolvable skipped: docker info fails"
		echo "skipped: docker info fails" >"$EVENTLAT_OUT"
	fi
fi

# ---- the report ----

result machine nproc "$(nproc)"
REPORT_ARGS=(-in "$RESULTS" -gobench "$GOBENCH_OUT" -eventlat "$EVENTLAT_OUT")
echo
"$GEN" report "${REPORT_ARGS[@]}"

"$CACHE/plot" -in "$RESULTS" -out "$OUT_PNG" -lat-qps "$((LAT_QPS / 1000))k" -title "svcdns vs CoreDNS and dnsmasq, 1 pinned core, $(date -u +%F)" ||
	log "plot failed"

model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
{
	echo "# svcdns benchmarks"
	echo
	echo "Written by \`bench/run.sh\` from its own measurements; run it again to replace them."
	echo
	if [ "$DURATION" -lt 10 ] || [ "$REPS" -lt 3 ]; then
		echo "> **Smoke settings** (DURATION=$DURATION, REPS=$REPS): these figures check the harness and"
		echo "> are not comparable with the anchors. Run \`make bench\` on a quiet machine for real figures."
		echo
	fi
	echo "- date: $(date -u '+%F %T UTC')"
	echo "- command: \`$COMMAND\`"
	echo "- machine: $(nproc) CPUs, ${model:-unknown model}, kernel $(uname -r); load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "- versions: $(go version | cut -d' ' -f3), $(dnsperf -h 2>&1 | awk '/^Version/{print "dnsperf " $2; exit}'),$( [ "$SKIP_DNSMASQ" != 1 ] && dnsmasq --version | head -1 | awk '{print " dnsmasq " $3 ","}') $( [ "$SKIP_COREDNS" != 1 ] && "$CACHE/coredns" -version 2>/dev/null | head -1)"
	echo "- svcdns: \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git -C "$ROOT" diff --quiet -- . ':!BENCHMARKS.md' ':!BENCHMARKS.png' ':!BENCHMARKS-proxy.png' 2>/dev/null || echo ' plus uncommitted changes')"
	echo
	echo "## DNS throughput and latency"
	echo
	echo "Each server is pinned to CPU $SERVER_CPU with GOMAXPROCS=1, dnsperf to CPU $CLIENT_CPU"
	echo "(\`dnsperf -c 4 -T 1 -q 200 -l $DURATION\`, median of $REPS rounds; every round runs each"
	echo "server in turn). Latency: \`dnsperf -Q $LAT_QPS -c 4 -q 500 -l $DURATION -v\`, percentiles of"
	echo "the per-query times (a lost query counts as slower than any answer). Data: 1,001 services"
	echo "(\`books-ms\`, \`svc0\`…\`svc999\` under \`service.local\`), one A and one SRV each, TTL 0;"
	echo "q-mix is 20,000 queries, 80% A and 20% SRV; q-a its A lines. CoreDNS \`hosts\` answers"
	echo "A only, so it runs q-a and its latency is on q-a. Instructions per query: whole"
	echo "process under \`valgrind --tool=callgrind\`, Ir over the 20,000 q-mix queries at $CG_QPS q/s ÷ the"
	echo "queries answered, counted from zero (\`callgrind_control -z\`) once the server has answered each"
	echo "question of the file once and is idle, dumped with \`callgrind_control -d\` before \`kill -9\`."
	echo "miekg-bare is not a product: it is \`bench/bare\`, a bare miekg/dns \`Server\` doing one map"
	echo "lookup per query (registered through the same API, same answer shapes as svcdns), the"
	echo "ceiling of any design that keeps miekg/dns's goroutine-per-packet server."
	echo
	echo "![queries/s and p99 per server]($(basename "$OUT_PNG"))"
	echo
	"$GEN" report "${REPORT_ARGS[@]}" -md
	if [ "$SKIP_DOCKER" != 1 ]; then
		echo "## Event → resolvable on the real Docker engine"
		echo
		echo "\`bench/eventlat\`: $EVENTLAT_N containers started one by one, each with its own"
		echo "\`SERVICE_NAME\`; time from the \`start\` event's own timestamp to the first UDP answer that"
		echo "holds the container's address, and from the \`die\` event of \`docker rm -f\` to NXDOMAIN."
		echo
		echo '```'
		cat "$EVENTLAT_OUT"
		echo '```'
		echo
	fi
	if [ "$SKIP_GOBENCH" != 1 ]; then
		echo "## Go benchmarks"
		echo
		echo "\`go test -run '^\$' -bench . -benchmem -benchtime $GOBENCHTIME\` on the packages that have"
		echo "benchmarks (bench/: catalog apply under a concurrent reader, 100,000 instances, cold starts)."
		echo
		echo '```'
		grep -vE '^(goos|goarch|cpu|PASS)' "$GOBENCH_OUT" || true
		echo '```'
		echo
	fi
	echo "## How to reproduce"
	echo
	echo '```sh'
	echo 'make bench                      # = bench/run.sh: about 10 minutes with the defaults'
	echo 'DURATION=2 REPS=1 bench/run.sh  # a quick check of the harness'
	echo 'SKIP_COREDNS=1 SKIP_CALLGRIND=1 SKIP_DOCKER=1 bench/run.sh'
	echo '```'
	echo
	echo "The script installs dnsperf, dnsmasq-base and valgrind with apt-get when they are"
	echo "missing, and builds CoreDNS $COREDNS_VERSION into \`.cache/bench\` (ignored by git) with"
	echo "\`scripts/coredns.sh\`: CoreDNS's own main and query path, linked with the plugins used here"
	echo "(bind, cache, errors, file, forward, hosts, log); without the Go module proxy it skips CoreDNS"
	echo "and says so. Run it on a quiet"
	echo "machine: every other process competes for the two pinned cores. The anchors it is"
	echo "judged against are in the research notes (performance-anchors.md §4 and §6)."
	echo "\`SKIP_PROXY=1\` leaves out the HTTP proxy section below; \`bench/proxy.sh\` runs it alone"
	echo "and replaces only that section. The same for the cluster: \`SKIP_CLUSTER=1\`, \`bench/cluster.sh\`"
	echo "(\`make bench-cluster\`)."
} >"$OUT_MD"
log "wrote $OUT_MD and $OUT_PNG"

# ---- the HTTP proxy (its own section of OUT_MD) ----

if [ "$SKIP_PROXY" != 1 ]; then
	log "HTTP proxy: bench/proxy.sh"
	SVCDNS_BIN=$SVCDNS DURATION=$DURATION REPS=$REPS SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU OUT_MD=$OUT_MD \
		OUT_PNG="$(dirname "$OUT_PNG")/BENCHMARKS-proxy.png" "$ROOT/bench/proxy.sh" || log "bench/proxy.sh failed"
else
	log "HTTP proxy skipped (SKIP_PROXY=1)"
fi

# ---- the cluster, issue 10 (its own section of OUT_MD) ----

if [ "$SKIP_CLUSTER" != 1 ]; then
	log "cluster: bench/cluster.sh"
	SVCDNS_BIN=$SVCDNS DURATION=$DURATION REPS=$REPS SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU OUT_MD=$OUT_MD \
		OUT_PNG="$(dirname "$OUT_PNG")/BENCHMARKS-cluster.png" "$ROOT/bench/cluster.sh" || log "bench/cluster.sh failed"
else
	log "cluster skipped (SKIP_CLUSTER=1)"
fi

#!/usr/bin/env bash
# bench/cluster.sh: the figures of issue 10's "How it is measured" for
# svcdns's cluster. bench/cluster (a Go program) runs N nodes of package
# cluster in one process on loopback, 1,000 instances each, and measures
# change -> every node, kill -> gone, join -> all held and gossip bytes.
# Then DNS queries/s of one svcdns binary holding 100,000 peer instances
# (joined to an in-process cluster) against the same binary alone.
# Writes its section of BENCHMARKS.md (between the cluster markers, so a
# run of this script alone replaces only that section) and
# BENCHMARKS-cluster.png. bench/run.sh calls it unless SKIP_CLUSTER=1;
# `make bench-cluster` runs it alone.
#
# Settings (environment):
#   CLUSTER_NODES=10,50,100   cluster sizes (N or N:instances); none: only the DNS part
#   CLUSTER_INSTANCES=1000    instances per node
#   CLUSTER_IDLE=15s          idle window for gossip bytes
#   CLUSTER_LOAD=10s          window of 100 changes/s
#   CLUSTER_FLAGS=            more bench/cluster flags (e.g. -probe-interval 500ms)
#   CLUSTER_DNS_NODES=10      nodes of the cluster the DNS server joins,
#   CLUSTER_DNS_INSTANCES=10000  each owning this many (100,000 peer instances)
#   SKIP_CLUSTER_DNS=1        no DNS part
#   DURATION=10 REPS=3        dnsperf seconds per run, runs per server (median)
#   SERVER_CPU=1 CLIENT_CPU=0 cores of svcdns and of dnsperf plus the cluster process
#   CLUSTER_PORT_BASE=15370   first of 5 loopback ports
#   SVCDNS_BIN=path           this svcdns binary instead of building ./cmd/svcdns
#   OUT_MD, OUT_PNG           default BENCHMARKS.md, BENCHMARKS-cluster.png
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER_NODES=${CLUSTER_NODES:-10,50,100}
CLUSTER_INSTANCES=${CLUSTER_INSTANCES:-1000}
CLUSTER_IDLE=${CLUSTER_IDLE:-15s}
CLUSTER_LOAD=${CLUSTER_LOAD:-10s}
CLUSTER_FLAGS=${CLUSTER_FLAGS:-}
CLUSTER_DNS_NODES=${CLUSTER_DNS_NODES:-10}
CLUSTER_DNS_INSTANCES=${CLUSTER_DNS_INSTANCES:-10000}
SKIP_CLUSTER_DNS=${SKIP_CLUSTER_DNS:-0}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${CLUSTER_PORT_BASE:-15370}
OUT_MD=${OUT_MD:-$ROOT/BENCHMARKS.md}
OUT_PNG=${OUT_PNG:-$ROOT/BENCHMARKS-cluster.png}
CACHE=$ROOT/.cache/bench
COMMAND="$(for v in CLUSTER_NODES CLUSTER_INSTANCES CLUSTER_IDLE CLUSTER_LOAD CLUSTER_FLAGS CLUSTER_DNS_NODES CLUSTER_DNS_INSTANCES SKIP_CLUSTER_DNS DURATION REPS; do
	if [ -n "${!v+x}" ]; then printf '%s=%q ' "$v" "${!v}"; fi; done)bench/cluster.sh"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

W=$(mktemp -d /tmp/svcdns-cluster.XXXXXX)
PIDS=()
cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$rc" != 0 ]; then log "scratch directory kept: $W"; else rm -rf "$W"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE"
[ -f "$ROOT/.cache/.gitignore" ] || printf '*\n' >"$ROOT/.cache/.gitignore"
log "building bench/cluster, gen, plot"
for t in cluster gen plot; do go build -o "$CACHE/$t" "./bench/$t"; done
if [ -n "${SVCDNS_BIN:-}" ]; then SVCDNS=$SVCDNS_BIN; else
	go build -o "$CACHE/svcdns" ./cmd/svcdns
	SVCDNS=$CACHE/svcdns
fi

# ---- the cluster alone ----

: >"$W/cluster.txt"
: >"$W/cluster.tsv"
if [ "$CLUSTER_NODES" != none ]; then
	log "nodes $CLUSTER_NODES × $CLUSTER_INSTANCES instances (a minute or two per size)"
	# shellcheck disable=SC2086
	timeout 1200 "$CACHE/cluster" -nodes "$CLUSTER_NODES" -instances "$CLUSTER_INSTANCES" -idle "$CLUSTER_IDLE" \
		-load "$CLUSTER_LOAD" -results "$W/cluster.tsv" $CLUSTER_FLAGS >"$W/cluster.txt" 2> >(tee "$W/cluster.log" >&2) ||
		die "bench/cluster failed: $(tail -3 "$W/cluster.log")"
	cat "$W/cluster.txt" >&2
fi

# ---- DNS q/s with the peers' records loaded ----

dns_rows=
if [ "$SKIP_CLUSTER_DNS" != 1 ]; then
	command -v dnsperf >/dev/null || die "dnsperf missing (apt-get install dnsperf)"
	"$CACHE/gen" data -dir "$W"
	mkfifo "$W/serve.in"
	log "DNS: an in-process cluster of $CLUSTER_DNS_NODES × $CLUSTER_DNS_INSTANCES, on CPU $CLIENT_CPU"
	# The fifo held open on fd 9: the cluster runs until this script ends.
	timeout 1800 taskset -c "$CLIENT_CPU" "$CACHE/cluster" -serve "$CLUSTER_DNS_NODES" -instances "$CLUSTER_DNS_INSTANCES" \
		<"$W/serve.in" >"$W/serve.out" 2>"$W/serve.log" &
	PIDS+=($!)
	exec 9>"$W/serve.in"
	for _ in $(seq 1 3000); do grep -qs '^ready ' "$W/serve.out" && break; sleep 0.1; done
	read -r _ join key <"$W/serve.out" || die "the in-process cluster did not start: $(tail -3 "$W/serve.log")"
	[ -n "$key" ] || die "the in-process cluster did not start: $(tail -3 "$W/serve.log")"

	run_svcdns() { # name dns-port http-port flags...
		local name=$1 dp=$2 hp=$3
		shift 3
		timeout 1800 taskset -c "$SERVER_CPU" env GOMAXPROCS=1 "$SVCDNS" --docker-host none --upstream none --ttl 0 \
			--dns-addr "127.0.0.1:$dp" --http-addr "127.0.0.1:$hp" --node "$name" "$@" >"$W/$name.log" 2>&1 &
		PIDS+=($!)
	}
	run_svcdns alone "$PORT" $((PORT + 1))
	run_svcdns joined $((PORT + 2)) $((PORT + 3)) --cluster-addr "127.0.0.1:$((PORT + 4))" --join "$join" --cluster-key "$key"
	for s in "alone $PORT $((PORT + 1))" "joined $((PORT + 2)) $((PORT + 3))"; do
		read -r name dp hp <<<"$s"
		"$CACHE/gen" register -api "http://127.0.0.1:$hp" -timeout 60s >/dev/null ||
			die "registration with svcdns ($name) failed: $(tail -5 "$W/$name.log")"
		"$CACHE/gen" check -server "127.0.0.1:$dp" -types A,SRV -wait 30s >&2 || die "svcdns ($name) does not answer the data set"
	done
	want=$((CLUSTER_DNS_NODES * CLUSTER_DNS_INSTANCES + 1001))
	loaded=0
	began=$(date +%s.%N)
	for _ in $(seq 1 1200); do
		loaded=$(curl -fsS "http://127.0.0.1:$((PORT + 3))/healthz" | sed -n 's/.*"catalog":{[^}]*"instances":\([0-9]*\).*/\1/p')
		[ "${loaded:-0}" -ge "$want" ] && break
		sleep 0.1
	done
	[ "${loaded:-0}" -ge "$want" ] || die "svcdns (joined) holds ${loaded:-0} instances, want $want: $(tail -5 "$W/joined.log")"
	log "svcdns (joined) holds $loaded instances, $(awk -v b="$began" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-b}') s after registration"
	declare -A RUNS
	for rep in $(seq 1 "$REPS"); do
		for s in "alone $PORT" "joined $((PORT + 2))"; do
			read -r name dp <<<"$s"
			out=$W/$name-$rep.dnsperf
			taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) \
				dnsperf -s 127.0.0.1 -p "$dp" -d "$W/q-mix.txt" -l "$DURATION" -c 4 -T 1 -q 200 >"$out" 2>&1 ||
				die "dnsperf against $name failed: $(tail -3 "$out")"
			read -r qps lost _ < <("$CACHE/gen" qps <"$out")
			log "round $rep/$REPS svcdns $name: $qps q/s, lost $lost"
			RUNS[$name]="${RUNS[$name]:-} $qps"
		done
	done
	median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }
	qa=$(echo "${RUNS[alone]}" | median)
	qj=$(echo "${RUNS[joined]}" | median)
	ratio=$(awk -v a="$qa" -v j="$qj" 'BEGIN{printf "%+.1f%%", 100 * (j - a) / a}')
	log "DNS q/s: alone $qa, with $loaded instances held $qj ($ratio)"
	printf 'alone\tdns_qps\t%s\njoined\tdns_qps\t%s\n' "$qa" "$qj" >>"$W/cluster.tsv"
	dns_rows="| svcdns alone (1,001 local instances) | $qa | runs:${RUNS[alone]} |
| svcdns joined, holding $((CLUSTER_DNS_NODES * CLUSTER_DNS_INSTANCES)) peer instances too | $qj ($ratio) | runs:${RUNS[joined]} |"
	exec 9>&-
fi

# ---- the report ----

if [ "$CLUSTER_NODES" != none ]; then
	"$CACHE/plot" -mode cluster -in "$W/cluster.tsv" -out "$OUT_PNG" \
		-title "svcdns cluster, $CLUSTER_INSTANCES instances per node, $(date -u +%F)" || log "plot failed"
fi

{
	echo "<!-- cluster:begin (bench/cluster.sh writes this section) -->"
	echo "## Many hosts: the cluster (issue 10)"
	echo
	echo "\`$COMMAND\` on $(nproc) CPUs, $(date -u '+%F %T UTC'), svcdns \`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\`,"
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo
	echo "\`bench/cluster\` runs N nodes of package \`cluster\` in one process on loopback, each"
	echo "owning $CLUSTER_INSTANCES instances (one container with one published port each), gossip"
	echo "encrypted with AES-256. *change → every node*: 100 changes/s cluster-wide for"
	echo "$CLUSTER_LOAD, each a container of a random node replaced; time from the change in the"
	echo "owner's store to its write into the last peer's store (p50/p99 over the changes; *per"
	echo "node* over every change × peer pair). *kill*: one node's memberlist shut down without a"
	echo "leave, as a killed process; time until its records are gone from the first and from the"
	echo "last other node. *join*: a new node with a real catalog joins node 0; time from its"
	echo "start until it holds every live node's records. *gossip*: bytes written to and read from"
	echo "the UDP and TCP sockets (encrypted, compressed where memberlist compresses), per node per"
	echo "second, idle for $CLUSTER_IDLE and under the change load. The idle window starts once the"
	echo "cluster is quiet: over two 2 s windows in a row no node has anything queued to send, none is"
	echo "behind a peer, no full state is asked for or applied, and the byte rate no longer falls;"
	echo "*formed / quiet after* is the time until every node held every record, then until quiet."
	echo "Node 0 and the joining node keep"
	echo "their peers' records in a real catalog; the others count them (100 catalogs of 100,000"
	echo "instances would not fit in the machine's memory), so the catalog write cost is in the"
	echo "join figure, not in the change latency of every peer. All nodes share one Go runtime: one"
	echo "garbage collector marks all their heaps at once and one scheduler runs all their"
	echo "goroutines on the machine's cores, where each real node has its own process and CPU; the"
	echo "second table says, for each phase, what the runtime did (runtime/metrics: GC cycles, the"
	echo "GC's share of CPU, GC pauses, the delay of runnable goroutines before they ran)."
	echo
	echo "![cluster figures]($(basename "$OUT_PNG"))"
	echo
	cat "$W/cluster.txt"
	echo
	echo "Targets (issue 10): change p99 ≤ 1 s at 100 nodes; kill → gone ≤ 10 s at 100 nodes;"
	echo "join ≤ 2 s for 100,000 records; idle gossip ≤ 20 kB/s per node at 100 × 1,000."
	echo "What a user would run instead, Consul's LAN pool, is memberlist with its LAN timings"
	echo "(probe 1 s, suspicion 4 × log10(N) s; svcdns uses 3 × log10(N) s): its failure detection"
	echo "is about 5-6 s for 3 nodes and 5-12 s for 4-10 (research notes), and a Consul catalog"
	echo "write goes through the Raft leader before any agent's DNS sees it."
	if [ -n "$dns_rows" ]; then
		echo
		echo "DNS with the peers' records loaded: the same svcdns binary twice, pinned to CPU"
		echo "$SERVER_CPU with GOMAXPROCS=1, \`--docker-host none\`, the 1,001 instances of the DNS"
		echo "benchmark registered in each; one of them joined to an in-process cluster of"
		echo "$CLUSTER_DNS_NODES × $CLUSTER_DNS_INSTANCES (on CPU $CLIENT_CPU, with dnsperf, during both"
		echo "runs). q-mix, \`dnsperf -c 4 -T 1 -q 200 -l $DURATION\`, median of $REPS alternating runs."
		echo "Target: within 5%."
		echo
		echo "| server | queries/s | |"
		echo "| --- | --- | --- |"
		echo "$dns_rows"
	fi
	echo
	echo "Reproduce: \`make bench-cluster\` (this section only), or \`bench/run.sh\` (everything)."
	echo "<!-- cluster:end -->"
} >"$W/section.md"

if [ -f "$OUT_MD" ] && grep -q '^<!-- cluster:begin' "$OUT_MD"; then
	awk -v f="$W/section.md" '/^<!-- cluster:begin/{while ((getline l < f) > 0) print l; skip=1; next}
		/^<!-- cluster:end -->/{skip=0; next} !skip' "$OUT_MD" >"$W/out.md"
	cp "$W/out.md" "$OUT_MD"
else
	{ [ -f "$OUT_MD" ] && echo; cat "$W/section.md"; } >>"$OUT_MD"
fi
log "wrote the cluster section of $OUT_MD and $OUT_PNG"

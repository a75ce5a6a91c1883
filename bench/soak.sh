#!/usr/bin/env bash
# bench/soak.sh (make soak): a bounded soak of svcdns on loopback, with
# container churn on the real Docker engine.
#
# It builds svcdns, testapps/fakeupstream and testapps/fakesvc; starts the
# fake upstream on 127.0.0.1 (the only resolver svcdns forwards to: no query
# ever leaves the host); starts svcdns watching the local engine for
# containers labelled svcdns-soak=1; registers SOAK_INSTANCES instances over
# the HTTP API; then, for SOAK_DURATION seconds, runs two dnsperf loads side
# by side — names of the zone (95% that exist, 5% that do not) and names
# outside it (forwarded to the fake upstream) — while containers built FROM
# scratch are started and removed in a bounded loop.
#
# It prints RSS (VmRSS), goroutines (go_goroutines on /metrics) and query
# counters at start, during and at the end, dnsperf's figures, and PASS or
# FAIL for the soak's criteria:
#   - zero queries lost (both loads)
#   - zero SERVFAIL for names of the zone
#   - rcodes as the query files expect (about 5% NXDOMAIN for the zone,
#     NOERROR for every forwarded name)
#   - RSS flat: at the end within max(10%, 8 MiB) of its value after the
#     warm-up (min(120 s, a third of the run))
#   - goroutines flat: back to the pre-load count ±10 within 45 s of the
#     load (idle connections to the daemon close after 30 s)
#   - no stale container: removed containers are gone from the catalog
#   - svcdns exits 0 on SIGTERM
# and exits 1 if any fails. Every process, container and image it made is
# removed on exit, whatever happens.
#
# Settings (environment):
#   SOAK_DURATION=600    seconds of load (60 makes a short run)
#   SOAK_QPS=5000        total query rate (dnsperf -Q), 5% of it forwarded
#   SOAK_INSTANCES=1000  API instances (4 per service)
#   SOAK_CHURN=8         containers alive at once in the churn loop
#   SOAK_SAMPLE=10       seconds between RSS/goroutine samples
#   KEEP=1               keep the scratch directory (logs, query files)
set -euo pipefail

cd "$(dirname "$0")/.."
SOAK_DURATION=${SOAK_DURATION:-600}
SOAK_QPS=${SOAK_QPS:-5000}
SOAK_INSTANCES=${SOAK_INSTANCES:-1000}
SOAK_CHURN=${SOAK_CHURN:-8}
SOAK_SAMPLE=${SOAK_SAMPLE:-10}
LABEL=svcdns-soak=1
PREFIX=svcdns-soak-
IMAGE=svcdns-soak-fakesvc:latest

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

for v in SOAK_DURATION SOAK_QPS SOAK_INSTANCES SOAK_CHURN SOAK_SAMPLE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: want a positive whole number"
done
command -v docker >/dev/null || die "no docker CLI"
docker info >/dev/null 2>&1 || die "no Docker engine (docker info fails)"
if ! command -v dnsperf >/dev/null; then
	log "installing dnsperf"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsperf >/dev/null ||
		die "dnsperf is missing and could not be installed"
fi

W=$(mktemp -d /tmp/svcdns-soak.XXXXXX)
SVCDNS_PID= UPSTREAM_PID= BG_PIDS=()

# cleanup stops what this script started, by pid, and removes the soak's
# containers and image.
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $SVCDNS_PID ]] && kill -0 "$SVCDNS_PID" 2>/dev/null; then
		kill -9 "$SVCDNS_PID" 2>/dev/null || true
	fi
	if [[ -n $UPSTREAM_PID ]] && kill -0 "$UPSTREAM_PID" 2>/dev/null; then
		kill "$UPSTREAM_PID" 2>/dev/null || true
		sleep 0.2
		kill -9 "$UPSTREAM_PID" 2>/dev/null || true
	fi
	local ids
	ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
	if [[ -n $ids ]]; then
		# shellcheck disable=SC2086
		docker rm -f -v $ids >/dev/null 2>&1 || true
	fi
	docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $W"
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR

# ---- build ----
log "building svcdns, fakeupstream and fakesvc"
export CGO_ENABLED=0
go build -trimpath -ldflags '-s -w' -o "$W/svcdns" ./cmd/svcdns
go build -trimpath -ldflags '-s -w' -o "$W/fakeupstream" ./integration/testapps/fakeupstream
mkdir -p "$W/img"
go build -trimpath -ldflags '-s -w' -o "$W/img/fakesvc" ./integration/testapps/fakesvc
printf 'FROM scratch\nCOPY fakesvc /\nEXPOSE 8080\nENTRYPOINT ["/fakesvc"]\n' >"$W/img/Dockerfile"
# Leftovers of a crashed run.
stale=$(docker ps -aq --filter "label=$LABEL")
if [[ -n $stale ]]; then
	# shellcheck disable=SC2086
	docker rm -f -v $stale >/dev/null
fi
docker build -q --label "$LABEL" -t "$IMAGE" "$W/img" >/dev/null 2>"$W/build.err" || die "docker build: $(cat "$W/build.err")"

# ---- fake upstream and svcdns ----
"$W/fakeupstream" -addr 127.0.0.1:0 -http 127.0.0.1:0 >"$W/upstream.out" 2>"$W/upstream.log" &
UPSTREAM_PID=$!
for _ in $(seq 100); do
	[[ $(wc -l <"$W/upstream.out") -ge 2 ]] && break
	sleep 0.05
done
UPSTREAM=$(sed -n 1p "$W/upstream.out")
UPSTREAM_HTTP=$(sed -n 2p "$W/upstream.out" | cut -d' ' -f2)
[[ -n $UPSTREAM && -n $UPSTREAM_HTTP ]] || die "fake upstream did not start: $(cat "$W/upstream.log")"

"$W/svcdns" --dns-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --node soak \
	--docker-filter "label=$LABEL" --upstream "$UPSTREAM" >"$W/svcdns.log" 2>&1 &
SVCDNS_PID=$!
for _ in $(seq 200); do
	grep -q 'msg="svcdns started"' "$W/svcdns.log" && break
	kill -0 "$SVCDNS_PID" 2>/dev/null || die "svcdns exited: $(cat "$W/svcdns.log")"
	sleep 0.05
done
start_line=$(grep 'msg="svcdns started"' "$W/svcdns.log") || die "svcdns did not start: $(cat "$W/svcdns.log")"
DNS=$(sed -E 's/.* dns=([^ ]+).*/\1/' <<<"$start_line")
API=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$start_line")
DNS_PORT=${DNS##*:}
for _ in $(seq 100); do
	curl -sf "http://$API/healthz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://$API/healthz" >/dev/null || die "svcdns not healthy (Docker synced?): $(curl -s "http://$API/healthz")"
log "svcdns pid $SVCDNS_PID on $DNS (API $API), fake upstream $UPSTREAM"

metric() { # sum of a metric's samples whose line matches $2 (default: all)
	curl -sf "http://$API/metrics" | awk -v m="$1" -v f="${2:-}" '
		($1 == m || index($1, m "{") == 1) && (f == "" || index($0, f) > 0) { s += $NF }
		END { printf "%d\n", s }'
}
catalog_instances() { # the sum of the instance counts of GET /v1/services
	curl -sf "http://$API/v1/services" | awk -F'"instances":' '{ for (i = 2; i <= NF; i++) n += $i + 0 } END { print n + 0 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SVCDNS_PID/status"; }
snapshot() { # label rss goroutines
	printf '%-8s RSS %6d KiB  goroutines %4d  dns queries %9d (SERVFAIL %d)  forwards %d  catalog instances %d\n' \
		"$1" "$2" "$3" "$(metric svcdns_dns_queries_total)" \
		"$(metric svcdns_dns_queries_total 'rcode="SERVFAIL"')" "$(metric svcdns_forward_requests_total)" \
		"$(catalog_instances)"
}

# ---- instances ----
services=$(((SOAK_INSTANCES + 3) / 4))
log "registering $SOAK_INSTANCES instances of $services services"
# One curl, 16 PUTs at a time (a process per PUT is slow on a busy host);
# a PUT that failed is retried once on its own.
for i in $(seq 1 "$SOAK_INSTANCES"); do
	((i > 1)) && echo next
	printf 'url = "http://%s/v1/instances/i%d"\nrequest = "PUT"\nheader = "Content-Type: application/json"\n' "$API" "$i"
	printf 'data = "{\\"service\\":\\"soak-svc-%d\\",\\"address\\":\\"10.%d.%d.%d\\",\\"port\\":8080}"\n' \
		$(((i - 1) % services + 1)) $((i / 65536 % 256 + 40)) $((i / 256 % 256)) $((i % 256))
	printf 'output = "/dev/null"\nwrite-out = "%%{http_code} %%{url_effective}\\n"\n'
done >"$W/register.curl"
curl -s -K "$W/register.curl" --parallel --parallel-max 16 >"$W/register.codes" 2>"$W/register.err" || true
awk '$1 !~ /^20[0-9]$/ { print $2 }' "$W/register.codes" >"$W/register.retry"
while read -r url; do
	i=${url##*/i}
	curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' \
		-d "{\"service\":\"soak-svc-$(((i - 1) % services + 1))\",\"address\":\"10.$((i / 65536 % 256 + 40)).$((i / 256 % 256)).$((i % 256))\",\"port\":8080}" \
		"$url" || die "PUT $url failed twice"
done <"$W/register.retry"
[[ -s $W/register.retry ]] && log "$(wc -l <"$W/register.retry") PUTs retried: $(awk '$1 !~ /^20[0-9]$/ { print $1 }' "$W/register.codes" | sort | uniq -c | tr -s ' \n' ' ')"
got=$(catalog_instances)
[[ $got -ge $SOAK_INSTANCES ]] || die "catalog has $got instances after registering $SOAK_INSTANCES"

# ---- query files ----
# Zone: 95% names that exist (A and SRV of services, A of instances'
# container names, the churned service), 5% that do not (NXDOMAIN).
# Outside: names the fake upstream answers (A, AAAA, MX).
awk -v n=100000 -v svcs="$services" -v inst="$SOAK_INSTANCES" -v seed=7 'BEGIN {
	srand(seed)
	for (i = 0; i < n; i++) {
		r = rand()
		if (r < 0.05)       printf "nx-%d.service.local A\n", int(rand() * 1e6)
		else if (r < 0.60)  printf "soak-svc-%d.service.local A\n", int(rand() * svcs) + 1
		else if (r < 0.80)  printf "soak-svc-%d.service.local SRV\n", int(rand() * svcs) + 1
		else if (r < 0.99)  printf "i%d.container.local A\n", int(rand() * inst) + 1
		else                printf "soak-churn.service.local A\n"
	}
}' >"$W/zone.txt"
awk -v n=20000 -v seed=8 'BEGIN {
	srand(seed); split("A AAAA MX", t, " ")
	for (i = 0; i < n; i++) printf "fwd-%d.example.com %s\n", int(rand() * 1e6), t[int(rand() * 3) + 1]
}' >"$W/outside.txt"

# ---- start ----
echo "==== svcdns soak: ${SOAK_DURATION}s, ${SOAK_QPS} qps (5% forwarded), $SOAK_INSTANCES instances, churn of $SOAK_CHURN containers ===="
echo "start:   $(date -u +%FT%TZ)  $("$W/svcdns" --version 2>/dev/null || echo svcdns dev)  dnsperf $(dpkg-query -W -f '${Version}' dnsperf 2>/dev/null || echo '?')  load average $(cut -d' ' -f1-3 /proc/loadavg)"
START_RSS=$(rss_kib)
START_G=$(metric go_goroutines)
snapshot "start" "$START_RSS" "$START_G"

# ---- churn: bounded by time and count ----
churn() {
	local i=0 end=$((SECONDS + SOAK_DURATION)) max=$((SOAK_DURATION * 5)) old
	while ((SECONDS < end && i < max)); do
		i=$((i + 1))
		docker run -d --name "${PREFIX}c$i" --label "$LABEL" --label SERVICE_NAME=soak-churn "$IMAGE" >/dev/null 2>>"$W/churn.err" || true
		old=$((i - SOAK_CHURN))
		if ((old > 0)); then
			case $((old % 3)) in
			0) docker rm -f "${PREFIX}c$old" >/dev/null 2>>"$W/churn.err" || true ;;
			1) { docker stop -t 1 "${PREFIX}c$old" && docker rm "${PREFIX}c$old"; } >/dev/null 2>>"$W/churn.err" || true ;;
			2) { docker kill "${PREFIX}c$old" && docker rm "${PREFIX}c$old"; } >/dev/null 2>>"$W/churn.err" || true ;;
			esac
		fi
		echo "$i" >"$W/churn.count"
		sleep 0.3
	done
}
churn &
BG_PIDS+=($!)

sampler() {
	local t0=$SECONDS
	while sleep "$SOAK_SAMPLE"; do
		kill -0 "$SVCDNS_PID" 2>/dev/null || return
		printf '%d\t%d\t%d\n' $((SECONDS - t0)) "$(rss_kib)" "$(metric go_goroutines)" >>"$W/samples.tsv"
		printf '  t=%4ds RSS %6d KiB  goroutines %4d  churned %s containers\n' $((SECONDS - t0)) "$(rss_kib)" \
			"$(metric go_goroutines)" "$(cat "$W/churn.count" 2>/dev/null || echo 0)"
	done
}
: >"$W/samples.tsv"
sampler &
BG_PIDS+=($!)

zone_qps=$((SOAK_QPS * 95 / 100))
out_qps=$((SOAK_QPS - zone_qps))
dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$W/zone.txt" -l "$SOAK_DURATION" -Q "$zone_qps" -c 4 -t 5 >"$W/dnsperf-zone.txt" 2>&1 &
ZONE_PID=$!
dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$W/outside.txt" -l "$SOAK_DURATION" -Q "$out_qps" -c 2 -t 5 >"$W/dnsperf-outside.txt" 2>&1 &
OUT_PID=$!
BG_PIDS+=("$ZONE_PID" "$OUT_PID")
zone_rc=0 out_rc=0
wait "$ZONE_PID" || zone_rc=$?
wait "$OUT_PID" || out_rc=$?
kill -0 "$SVCDNS_PID" 2>/dev/null || die "svcdns died during the load: $(tail -n 20 "$W/svcdns.log")"
LOAD_END_RSS=$(rss_kib)
kill "${BG_PIDS[1]}" 2>/dev/null || true # the sampler
wait "${BG_PIDS[0]}" 2>/dev/null || true # churn ends on its own
CHURNED=$(cat "$W/churn.count" 2>/dev/null || echo 0)

# ---- end ----
dnsperf_field() { # file, label -> number
	awk -v l="$2" 'index($0, l":") { sub(/^[^:]*:[ \t]*/, ""); print $1; exit }' "$1"
}
rcodes() { awk '/Response codes:/ { sub(/^[^:]*:[ \t]*/, ""); print; exit }' "$1"; }
servfail() { rcodes "$1" | awk '{ for (i = 1; i < NF; i++) if ($i == "SERVFAIL") n += $(i + 1) } END { print n + 0 }'; }

echo "---- dnsperf ----"
for f in zone outside; do
	file=$W/dnsperf-$f.txt
	printf '%-8s sent %s  completed %s  lost %s  qps %s  avg latency %s s\n' "$f" \
		"$(dnsperf_field "$file" 'Queries sent')" "$(dnsperf_field "$file" 'Queries completed')" \
		"$(dnsperf_field "$file" 'Queries lost')" "$(dnsperf_field "$file" 'Queries per second')" \
		"$(dnsperf_field "$file" 'Average Latency (s)')"
	printf '         rcodes: %s\n' "$(rcodes "$file")"
done
echo "fake upstream: $(curl -sf "http://$UPSTREAM_HTTP/count")"
echo "churn: $CHURNED containers started and removed ($(wc -l <"$W/churn.err" 2>/dev/null || echo 0) docker errors)"

# Settle: the last forwards and removals finish.
sleep 5
END_RSS=$(rss_kib)
END_G=$(metric go_goroutines)
snapshot "end" "$END_RSS" "$END_G"
# Idle keep-alive connections to the Docker daemon (two goroutines each;
# the watcher keeps up to 33 for its sync workers) close after the client's
# 30 s idle timeout. A leak never comes back: wait out the timeout before
# judging.
SETTLE_G=0
while ((END_G > START_G + 10 && SETTLE_G < 40)); do
	sleep 2
	SETTLE_G=$((SETTLE_G + 2))
	END_G=$(metric go_goroutines)
done

# The churn's last containers: remove them, and the catalog must follow.
ids=$(docker ps -aq --filter "label=$LABEL" || true)
if [[ -n $ids ]]; then
	# shellcheck disable=SC2086
	docker rm -f -v $ids >/dev/null 2>&1 || true
fi
stale=unknown
for _ in $(seq 50); do # 10 s
	if curl -sf "http://$API/v1/services/soak-churn" -o "$W/churn-svc.json"; then
		stale=$(awk -F'"id":' '{ n += NF - 1 } END { print n + 0 }' "$W/churn-svc.json")
		[[ $stale == 0 ]] && break
	fi
	sleep 0.2
done

kill -TERM "$SVCDNS_PID"
exit_rc=0
for _ in $(seq 100); do
	kill -0 "$SVCDNS_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$SVCDNS_PID" 2>/dev/null; then
	exit_rc=timeout
else
	wait "$SVCDNS_PID" || exit_rc=$?
fi
SVCDNS_PID=

# ---- verdict ----
fail=0
verdict() { # ok(0/1) text
	if [[ $1 == 0 ]]; then echo "PASS $2"; else
		echo "FAIL $2"
		fail=1
	fi
}
zl=$(dnsperf_field "$W/dnsperf-zone.txt" 'Queries lost')
ol=$(dnsperf_field "$W/dnsperf-outside.txt" 'Queries lost')
zs=$(servfail "$W/dnsperf-zone.txt")
zs=${zs:-0}
warm=$((SOAK_DURATION / 3 < 120 ? SOAK_DURATION / 3 : 120))
WARM_RSS=$(awk -v w="$warm" '$1 >= w { print $2; exit }' "$W/samples.tsv")
WARM_RSS=${WARM_RSS:-$START_RSS}
rss_tol=$((WARM_RSS / 10 > 8192 ? WARM_RSS / 10 : 8192))
echo "---- verdict ----"
verdict $([[ $zone_rc == 0 && $out_rc == 0 && -n $zl && -n $ol ]] && echo 0 || echo 1) \
	"dnsperf ran (exit zone $zone_rc, outside $out_rc)"
verdict $([[ ${zl:-x} == 0 && ${ol:-x} == 0 ]] && echo 0 || echo 1) "zero lost: zone $zl, outside $ol"
verdict $([[ $zs == 0 ]] && echo 0 || echo 1) "zero SERVFAIL for zone names: $zs"
# The zone file has 5% names that do not exist, the outside file none.
zone_other=$(rcodes "$W/dnsperf-zone.txt" | awk -F', ' '{ for (i = 1; i <= NF; i++) { split($i, f, " "); if (f[1] != "NOERROR" && f[1] != "NXDOMAIN") n += f[2] } } END { print n + 0 }')
zone_nx=$(rcodes "$W/dnsperf-zone.txt" | awk -F', ' '{ for (i = 1; i <= NF; i++) { split($i, f, " "); if (f[1] == "NXDOMAIN") n += f[2] } } END { print n + 0 }')
zone_done=$(dnsperf_field "$W/dnsperf-zone.txt" 'Queries completed')
out_other=$(rcodes "$W/dnsperf-outside.txt" | awk -F', ' '{ for (i = 1; i <= NF; i++) { split($i, f, " "); if (f[1] != "NOERROR") n += f[2] } } END { print n + 0 }')
nx_pm=$((${zone_done:-0} > 0 ? zone_nx * 1000 / zone_done : 0))
verdict $((zone_other == 0 && out_other == 0 && nx_pm >= 45 && nx_pm <= 60 ? 0 : 1)) \
	"rcodes as the query files expect: zone NXDOMAIN $((nx_pm / 10)).$((nx_pm % 10))% (file: 5%), zone other than NOERROR/NXDOMAIN $zone_other, outside other than NOERROR $out_other"
verdict $((LOAD_END_RSS > WARM_RSS + rss_tol ? 1 : 0)) \
	"RSS flat: ${START_RSS} KiB at start, ${WARM_RSS} KiB after ${warm}s warm-up, ${LOAD_END_RSS} KiB at the end of the load (tolerance ${rss_tol} KiB)"
verdict $((END_G > START_G + 10 || END_G < START_G - 10 ? 1 : 0)) \
	"goroutines flat: $START_G before the load, $END_G $((5 + SETTLE_G)) s after it (±10)"
verdict $([[ $stale == 0 ]] && echo 0 || echo 1) "no stale container in the catalog after the churn: $stale left"
verdict $([[ $exit_rc == 0 ]] && echo 0 || echo 1) "svcdns exit on SIGTERM: $exit_rc"
if [[ $fail != 0 ]]; then
	echo "svcdns log (last 30 lines):"
	tail -n 30 "$W/svcdns.log"
	echo "==== SOAK FAIL ===="
	exit 1
fi
echo "==== SOAK PASS ===="

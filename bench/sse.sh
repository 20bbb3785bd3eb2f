#!/usr/bin/env bash
# SSE benchmark: the gateway's Server-Sent Events against a trivial SSE server (B5, bench/SseBaseline), measured in
# the same run, interleaved, pinned: produce->event latency, fan-out, idle connections. See bench/README.md.
#
#   bench/sse.sh [--quick] [--runs N] [--duration S] [--warmup S] [--no-build] [--keep] [--base REV]
#
# --base REV: an A/B of two gateway builds instead: the gateway at REV (built in a temporary git worktree) takes the
# baseline's place, so every row compares the working tree (gateway) with REV (baseline) in the same interleaved runs.
#
# Environment overrides: RUNS, DURATION, WARMUP, LATENCY_RATE, FANOUT_SUBS, FANOUT_RATE, FANOUT_SECONDS, IDLE_SUBS,
# IDLE_SECONDS, DRAIN, SOURCES, BASELINE_PORT, GATEWAY_PORT, SERVER_CPU, LOAD_CPU, BENCH_TMP.
set -Eeuo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Every .NET process here runs pinned to one CPU, and there the runtime waits ten times longer (1 s instead of
# 100 ms of no new methods) before it starts promoting hot methods to optimized code; under load something new is
# always compiled, so the gateway ran its first minute on unoptimized code (bench/README.md, "Warm-up on one CPU").
# This restores the multi-core delay for the baselines and the gateway alike; the Docker image sets it too.
export DOTNET_TC_DelaySingleProcMultiplier=${DOTNET_TC_DelaySingleProcMultiplier:-1}

# ---------------------------------------------------------------------------------------------- settings
RUNS=${RUNS:-3}                     # interleaved latency rounds (gateway, baseline)
DURATION=${DURATION:-20}            # seconds of producing per latency run
WARMUP=${WARMUP:-15}                # seconds of a discarded latency run per server before anything is measured
LATENCY_RATE=${LATENCY_RATE:-1000}  # records/s, 1 subscriber
FANOUT_SUBS=${FANOUT_SUBS:-1000}
FANOUT_RATE=${FANOUT_RATE:-100}
FANOUT_SECONDS=${FANOUT_SECONDS:-20}
IDLE_SUBS=${IDLE_SUBS:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-30}    # hold; 30 s spans two of the gateway's 15 s keep-alives
DRAIN=${DRAIN:-5}                   # after producing, wait at most this long for subscribers to catch up
BASELINE_PORT=${BASELINE_PORT:-18191}
GATEWAY_PORT=${GATEWAY_PORT:-18192}
SERVER_CPU=${SERVER_CPU:-1}         # the servers run here...
LOAD_CPU=${LOAD_CPU:-0}             # ...and the load generator here
SETTLE=2                            # seconds of quiet after each run (the server closes what the run left)
DO_BUILD=1
KEEP=0
BASE=""                             # --base REV: the baseline is the gateway at REV
PROBLEMS=0                          # set when something looks wrong: the temp dir (logs, outputs) is then kept

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --quick) RUNS=1; DURATION=5; WARMUP=3; FANOUT_SUBS=200; FANOUT_SECONDS=5; IDLE_SUBS=1000; IDLE_SECONDS=5; DRAIN=3 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --keep) KEEP=1 ;;
        --base) BASE=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
SOURCES=${SOURCES:-$((1 + IDLE_SUBS / 10000))}   # 127.0.0.1..K as source addresses: K x ~28,000 ephemeral ports
for n in RUNS DURATION WARMUP LATENCY_RATE FANOUT_SUBS FANOUT_RATE FANOUT_SECONDS IDLE_SUBS IDLE_SECONDS DRAIN SOURCES \
    BASELINE_PORT GATEWAY_PORT SERVER_CPU LOAD_CPU; do
    [[ ${!n} =~ ^[0-9]+$ ]] || { echo "$n must be a whole number (got '${!n}')" >&2; exit 2; }
done
((RUNS >= 1 && RUNS <= 100)) || { echo "RUNS must be 1..100" >&2; exit 2; }
((DURATION >= 1 && DURATION <= 600 && WARMUP <= 600 && FANOUT_SECONDS >= 1 && FANOUT_SECONDS <= 600)) ||
    { echo "DURATION and FANOUT_SECONDS 1..600 s, WARMUP 0..600 s" >&2; exit 2; }
((IDLE_SUBS >= 1 && IDLE_SUBS <= 100000 && FANOUT_SUBS >= 1 && FANOUT_SUBS <= 100000 && IDLE_SECONDS >= 1 && IDLE_SECONDS <= 600)) ||
    { echo "IDLE_SUBS and FANOUT_SUBS 1..100000, IDLE_SECONDS 1..600" >&2; exit 2; }
((SOURCES >= 1 && SOURCES <= 250)) || { echo "SOURCES must be 1..250" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY_PROJECT=$REPO/src/Gateway.Server/Gateway.Server.csproj
BASELINE_PROJECT=$REPO/bench/SseBaseline/SseBaseline.csproj
LOAD_PROJECT=$REPO/bench/SseLoad/SseLoad.csproj
GATEWAY_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
BASELINE_DLL=$REPO/bench/SseBaseline/bin/Release/net10.0/SseBaseline.dll
LOAD_DLL=$REPO/bench/SseLoad/bin/Release/net10.0/SseLoad.dll
if [[ -n $BASE ]]; then
    BASE_TREE=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-sse-base.XXXXXX")
    git -C "$REPO" worktree add --detach -q "$BASE_TREE/src" "$BASE" || die "no commit '$BASE'"
    BASELINE_PROJECT=$BASE_TREE/src/src/Gateway.Server/Gateway.Server.csproj
    BASELINE_DLL=$BASE_TREE/src/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
fi
BASELINE_URL=http://127.0.0.1:$BASELINE_PORT
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
TOPIC=sse


# ---------------------------------------------------------------------------------------------- cleanup
WORK=""
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid i
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do        # at most 10 s for a graceful stop
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $BASE ]]; then
        git -C "$REPO" worktree remove --force "$BASE_TREE/src" 2>/dev/null || true
        rm -rf "$BASE_TREE"
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP || PROBLEMS || rc != 0)); then
            rm -rf "$WORK/data"
            log "kept $WORK (server logs, load outputs; gateway data removed)"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------- checks
for tool in taskset curl timeout dotnet awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done
(($(nproc) > SERVER_CPU && $(nproc) > LOAD_CPU)) || die "needs CPUs $SERVER_CPU and $LOAD_CPU (have $(nproc))"
# Every subscriber is a file descriptor in the load generator and in the server (both inherit this limit).
need_fds=$((IDLE_SUBS > FANOUT_SUBS ? IDLE_SUBS : FANOUT_SUBS))
need_fds=$((need_fds + 1024))
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || ((hard > 1048576)); then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || true
(($(ulimit -n) >= need_fds)) || die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $need_fds file descriptors are needed"
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
(((port_hi - port_lo) * SOURCES > IDLE_SUBS + FANOUT_SUBS)) ||
    die "ephemeral ports $port_lo-$port_hi x $SOURCES source address(es) are too few for $IDLE_SUBS connections (raise SOURCES)"

port_busy "$BASELINE_PORT" && die "port $BASELINE_PORT is in use (set BASELINE_PORT)"
port_busy "$GATEWAY_PORT" && die "port $GATEWAY_PORT is in use (set GATEWAY_PORT)"

# ---------------------------------------------------------------------------------------------- build
if ((DO_BUILD)); then
    log "building Gateway.Server, SseBaseline and SseLoad (Release)"
    for project in "$GATEWAY_PROJECT" "$BASELINE_PROJECT" "$LOAD_PROJECT"; do
        dotnet build -c Release -nologo -v q "$project" >/dev/null || die "build failed (run: dotnet build -c Release $project)"
    done
fi
for dll in "$GATEWAY_DLL" "$BASELINE_DLL" "$LOAD_DLL"; do
    [[ -f $dll ]] || die "missing $dll"
done

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-sse.XXXXXX")
mkdir -p "$WORK/data"
RESULTS=$WORK/results.txt   # one SseLoad result line per measured run
: >"$RESULTS"

# ---------------------------------------------------------------------------------------------- servers
export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production

log "starting baseline on $BASELINE_URL and gateway on $GATEWAY_URL (CPU $SERVER_CPU); load on CPU $LOAD_CPU; ulimit -n $(ulimit -n)"
if [[ -n $BASE ]]; then
    mkdir -p "$WORK/base-data"
    start_server "$(dirname "$BASELINE_DLL")" "$BASELINE_DLL" "$WORK/baseline.log" --urls="$BASELINE_URL" \
        --Storage:DataDirectory="$WORK/base-data" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning
    BASELINE_HEALTH=$BASELINE_URL/health/ready
else
    start_server "$(dirname "$BASELINE_DLL")" "$BASELINE_DLL" "$WORK/baseline.log" --urls="$BASELINE_URL"
    BASELINE_HEALTH=$BASELINE_URL/health
fi
BASELINE_PID=$STARTED_PID
start_server "$(dirname "$GATEWAY_DLL")" "$GATEWAY_DLL" "$WORK/gateway.log" --urls="$GATEWAY_URL" \
    --Storage:DataDirectory="$WORK/data" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning
GATEWAY_PID=$STARTED_PID
wait_ready "$BASELINE_HEALTH" "$BASELINE_PID" "$WORK/baseline.log"
wait_ready "$GATEWAY_URL/health/ready" "$GATEWAY_PID" "$WORK/gateway.log"

GATEWAYS=("$GATEWAY_URL")
[[ -n $BASE ]] && GATEWAYS+=("$BASELINE_URL")
for url in "${GATEWAYS[@]}"; do
    code=$(curl -s -o "$WORK/topic.out" -w '%{http_code}' --max-time 10 -X POST "$url/v1/topics" \
        -H 'Content-Type: application/json' -d "{\"name\":\"$TOPIC\",\"partitions\":1}" || true)
    [[ $code == 2* ]] || die "creating topic $TOPIC on $url: HTTP $code $(head -c 500 "$WORK/topic.out")"
done

# Probes: a stream starts with "retry:" and a produce is accepted (a wrong path fails here, not as a table of zeros).
probe_stream() {   # probe_stream <url>
    local out
    out=$(curl -s -N --max-time 1 "$1" || true)
    [[ $out == retry:* ]] || die "probe $1: expected an event stream, got: $(head -c 300 <<<"$out")"
}
probe_stream "$GATEWAY_URL/v1/topics/$TOPIC/events?from=latest"
if [[ -n $BASE ]]; then probe_stream "$BASELINE_URL/v1/topics/$TOPIC/events?from=latest"; else probe_stream "$BASELINE_URL/events"; fi
code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 -X POST -H 'Content-Type: text/plain' \
    --data-binary 'probe' "$GATEWAY_URL/v1/topics/$TOPIC/records?acks=memory" || true)
[[ $code == 2* ]] || die "probe produce: HTTP $code $(head -c 500 "$WORK/probe.out")"
if [[ -n $BASE ]]; then
    code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 -X POST -H 'Content-Type: text/plain' \
        --data-binary 'probe' "$BASELINE_URL/v1/topics/$TOPIC/records?acks=memory" || true)
else
    code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 -X POST --data-binary 'probe' "$BASELINE_URL/publish" || true)
fi
[[ $code == 2* ]] || die "probe publish: HTTP $code $(head -c 500 "$WORK/probe.out")"
log "probes OK"

# ---------------------------------------------------------------------------------------------- runs
# load <output file> <gateway|baseline> <mode> <SseLoad options...>: one SseLoad run on the load CPU, bounded in time.
load() {
    local out=$1 target=$2 mode=$3 url pid limit line speaks=$2
    shift 3
    [[ -n $BASE ]] && speaks=gateway   # both servers are gateways; the line still says which one it measured
    if [[ $target == gateway ]]; then url=$GATEWAY_URL pid=$GATEWAY_PID; else url=$BASELINE_URL pid=$BASELINE_PID; fi
    kill -0 "$BASELINE_PID" 2>/dev/null || die "baseline died: $(tail -n 20 "$WORK/baseline.log")"
    kill -0 "$GATEWAY_PID" 2>/dev/null || die "gateway died: $(tail -n 20 "$WORK/gateway.log")"
    limit=$((DURATION + FANOUT_SECONDS + IDLE_SECONDS + WARMUP + DRAIN + 240))
    line=$(timeout -k 5 "$limit" taskset -c "$LOAD_CPU" dotnet "$LOAD_DLL" "$mode" --url "$url" --target "$speaks" \
        --topic "$TOPIC" --pid "$pid" --drain "$DRAIN" --connect-timeout 90 "$@" 2>>"$WORK/load.err" | tail -n 1) || true
    [[ -n $BASE && $target == baseline ]] && line=${line/ target=gateway / target=baseline }
    if [[ $line != "sse mode="* ]]; then
        log "!! $mode $target: no result (see $WORK/load.err): $(tail -n 3 "$WORK/load.err")"
        PROBLEMS=1
        line="sse mode=$mode target=$target error=no_result"
    fi
    echo "$line" >>"$out"
    sleep "$SETTLE"
    if [[ $target == gateway ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$GATEWAY_URL/health/ready" || true) != 200 ]]; then
        log "!! gateway does not answer /health/ready within 5 s after $mode"
        PROBLEMS=1
    fi
    summary "$line"
}
kv() { awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, p, "="); if (p[1] == k) { print substr($i, length(k) + 2); exit } } }' <<<"$1"; }
summary() {
    local l=$1 mode
    mode=$(kv "$l" mode)
    if [[ $mode == idle ]]; then
        log "idle $(kv "$l" target): $(kv "$l" connected)/$(kv "$l" subs) connected, $(kv "$l" kb_per_sub) KB/sub, CPU $(kv "$l" cpu_pct) %, errors $(kv "$l" sub_errors)"
    else
        log "$mode $(kv "$l" target): sent $(kv "$l" sent), received $(kv "$l" received)/$(kv "$l" expected), lost $(kv "$l" lost), p50 $(kv "$l" p50_ms) p99 $(kv "$l" p99_ms) max $(kv "$l" max_ms) ms, $(kv "$l" deliveries_per_s) deliveries/s"
    fi
    if [[ $(kv "$l" lost) =~ ^[1-9] || $(kv "$l" sub_errors) =~ ^[1-9] || $(kv "$l" connect_failed) =~ ^[1-9] || $(kv "$l" failed) =~ ^[1-9] ]]; then
        log "!! losses or errors in this run"
        PROBLEMS=1
    fi
}

total=$((2 * WARMUP + 2 * (IDLE_SECONDS + 15) + RUNS * 2 * (DURATION + SETTLE + 2) + 2 * (FANOUT_SECONDS + SETTLE + 10)))
log "warm-up ${WARMUP}s per server; idle $IDLE_SUBS x ${IDLE_SECONDS}s; latency $LATENCY_RATE rec/s x ${DURATION}s x $RUNS round(s); fan-out $FANOUT_SUBS subs x $FANOUT_RATE rec/s x ${FANOUT_SECONDS}s: about $((total / 60)) min $((total % 60)) s"

if ((WARMUP > 0)); then
    for target in gateway baseline; do
        log "warm-up $target (${WARMUP}s)"
        load "$WORK/warmup.txt" "$target" latency --subscribers 1 --rate "$LATENCY_RATE" --seconds "$WARMUP" --label warmup
    done
fi
# Idle first: the RSS per connection is cleanest before the fan-out runs have grown the servers' heaps.
for target in gateway baseline; do
    log "idle $target: $IDLE_SUBS connections for ${IDLE_SECONDS}s ($SOURCES source address(es))"
    load "$RESULTS" "$target" idle --subscribers "$IDLE_SUBS" --seconds "$IDLE_SECONDS" --sources "$SOURCES" --connect-concurrency 64
done
for ((r = 1; r <= RUNS; r++)); do
    for target in gateway baseline; do
        log "latency round $r/$RUNS $target"
        load "$RESULTS" "$target" latency --subscribers 1 --rate "$LATENCY_RATE" --seconds "$DURATION" --label "round$r"
    done
done
for target in gateway baseline; do
    log "fan-out $target: $FANOUT_SUBS subscribers x $FANOUT_RATE rec/s for ${FANOUT_SECONDS}s"
    load "$RESULTS" "$target" fanout --subscribers "$FANOUT_SUBS" --rate "$FANOUT_RATE" --seconds "$FANOUT_SECONDS"
done

# ---------------------------------------------------------------------------------------------- table
# values <mode> <target> <key>: the key's values over the measured runs, one a line
values() { grep -E "^sse mode=$1 target=$2 " "$RESULTS" | while IFS= read -r l; do kv "$l" "$3"; done | grep -E '^[0-9.]+$' || true; }
# stats3 <mode> <target> <key>: "median min max" (or "- - -")
stats3() {
    values "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "- - -"; exit }
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s %s\n", med, v[1], v[NR]
        }'
}
sum() { values "$@" | awk '{ s += $1 } END { printf "%d\n", s }'; }
med() { stats3 "$@" | awk '{ print $1 }'; }
spread() { stats3 "$@" | awk '{ if ($1 == "-") print "-"; else if ($2 == $3) print $1; else printf "%s (%s..%s)\n", $1, $2, $3 }'; }
ratio() { awk -v g="$1" -v b="$2" 'BEGIN { if (g == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", g / b }'; }
verdict() {   # verdict <value> <op> <limit>
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "-") { print "?"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (op == ">=") ? (v + 0 >= l + 0) : (v + 0 == l + 0)
        print ok ? "ok" : "MISS" }'
}

g_p99=$(med latency gateway p99_ms) b_p99=$(med latency baseline p99_ms)
g_lost=$(sum latency gateway lost) b_lost=$(sum latency baseline lost)
g_dps=$(med fanout gateway deliveries_per_s) b_dps=$(med fanout baseline deliveries_per_s)
g_fp99=$(med fanout gateway p99_ms) b_fp99=$(med fanout baseline p99_ms)
g_flost=$(sum fanout gateway lost) b_flost=$(sum fanout baseline lost)
g_ferr=$(($(sum fanout gateway sub_errors) + $(sum fanout gateway connect_failed)))
b_ferr=$(($(sum fanout baseline sub_errors) + $(sum fanout baseline connect_failed)))
g_kb=$(med idle gateway kb_per_sub) b_kb=$(med idle baseline kb_per_sub)
dps_ratio=$(ratio "$g_dps" "$b_dps") fp99_ratio=$(ratio "$g_fp99" "$b_fp99")
fanout_verdict=$(verdict "$dps_ratio" ">=" 0.8)
[[ $(verdict "$fp99_ratio" "<=" 1.5) == ok ]] || fanout_verdict=MISS
[[ $(verdict "$fp99_ratio" "<=" 1.5) == "?" ]] && fanout_verdict="?"
((g_flost + g_ferr == 0)) || fanout_verdict=MISS

echo
echo "Gateway SSE benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
[[ -n $BASE ]] && echo "A/B: gateway = the working tree, baseline = the gateway at $BASE ($(git -C "$REPO" rev-parse --short "$BASE"))"
echo "servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU; $(nproc) CPUs; warm-up ${WARMUP}s; latency ${DURATION}s x $RUNS round(s); fan-out ${FANOUT_SECONDS}s; idle hold ${IDLE_SECONDS}s"
echo
fmt='%-44s %-24s %-24s %7s  %-26s %s\n'
printf "$fmt" metric gateway baseline ratio target verdict
printf "$fmt" -------------------------------------------- ------------------------ ------------------------ ------- -------------------------- -------
printf "$fmt" "latency 1 sub x $LATENCY_RATE rec/s: p50 ms" "$(spread latency gateway p50_ms)" "$(spread latency baseline p50_ms)" \
    "$(ratio "$(med latency gateway p50_ms)" "$(med latency baseline p50_ms)")" - -
printf "$fmt" "latency 1 sub x $LATENCY_RATE rec/s: p99 ms" "$(spread latency gateway p99_ms)" "$(spread latency baseline p99_ms)" \
    "$(ratio "$g_p99" "$b_p99")" "gateway p99 <= 5 ms" "$(verdict "$g_p99" "<=" 5)"
printf "$fmt" "latency 1 sub x $LATENCY_RATE rec/s: p99.9 ms" "$(spread latency gateway p999_ms)" "$(spread latency baseline p999_ms)" \
    "$(ratio "$(med latency gateway p999_ms)" "$(med latency baseline p999_ms)")" - -
printf "$fmt" "latency 1 sub x $LATENCY_RATE rec/s: max ms" "$(spread latency gateway max_ms)" "$(spread latency baseline max_ms)" - - -
printf "$fmt" "latency: lost events (all rounds)" "$g_lost" "$b_lost" - "none lost" "$(verdict "$g_lost" "==" 0)"
printf "$fmt" "latency: server CPU %" "$(spread latency gateway server_cpu_pct)" "$(spread latency baseline server_cpu_pct)" \
    "$(ratio "$(med latency gateway server_cpu_pct)" "$(med latency baseline server_cpu_pct)")" - -
printf "$fmt" "fan-out $FANOUT_SUBS x $FANOUT_RATE rec/s: deliveries/s" "$g_dps" "$b_dps" "$dps_ratio" "ratio >= 0.8" "$(verdict "$dps_ratio" ">=" 0.8)"
printf "$fmt" "fan-out: p50 ms" "$(med fanout gateway p50_ms)" "$(med fanout baseline p50_ms)" \
    "$(ratio "$(med fanout gateway p50_ms)" "$(med fanout baseline p50_ms)")" - -
printf "$fmt" "fan-out: p99 ms" "$g_fp99" "$b_fp99" "$fp99_ratio" "ratio <= 1.5" "$(verdict "$fp99_ratio" "<=" 1.5)"
printf "$fmt" "fan-out: lost deliveries / failed subs" "$g_flost / $g_ferr" "$b_flost / $b_ferr" - "none lost" "$( ((g_flost + g_ferr == 0)) && echo ok || echo MISS)"
printf "$fmt" "fan-out: server CPU %" "$(med fanout gateway server_cpu_pct)" "$(med fanout baseline server_cpu_pct)" \
    "$(ratio "$(med fanout gateway server_cpu_pct)" "$(med fanout baseline server_cpu_pct)")" - -
printf "$fmt" "idle $IDLE_SUBS subs: RSS KB per subscriber" "$g_kb" "$b_kb" "$(ratio "$g_kb" "$b_kb")" "gateway <= 15 KB" "$(verdict "$g_kb" "<=" 15)"
printf "$fmt" "idle: connected / failed" "$(med idle gateway connected) / $(sum idle gateway connect_failed)" \
    "$(med idle baseline connected) / $(sum idle baseline connect_failed)" - - -
printf "$fmt" "idle: server CPU % over the hold" "$(med idle gateway cpu_pct)" "$(med idle baseline cpu_pct)" - - -
echo
echo "fan-out verdict (deliveries ratio >= 0.8, p99 ratio <= 1.5, none lost): $fanout_verdict"
echo "latency = produce request sent -> event parsed by the subscriber (same clock, load process on CPU $LOAD_CPU); median (min..max) over rounds."
echo "ratio = gateway / baseline. KB per subscriber = (server VmRSS at the end of the hold - before connecting) / connected."
GW_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$GATEWAY_PID/status" 2>/dev/null || echo 0)
BL_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$BASELINE_PID/status" 2>/dev/null || echo 0)
if [[ -n $BASE ]]; then
    echo "peak RSS: gateway $((GW_RSS / 1024)) MB, baseline (the gateway at $BASE) $((BL_RSS / 1024)) MB"
else
    echo "peak RSS: gateway $((GW_RSS / 1024)) MB, baseline $((BL_RSS / 1024)) MB; baseline $(curl -s --max-time 5 "$BASELINE_URL/stats" || echo '(no stats)')"
fi
echo "raw results: one SseLoad line per run$( ((KEEP || PROBLEMS)) && echo " in $RESULTS" || echo ' (use --keep to keep them)')"

# The gateway log at Warning and above, by level and message; the first stack of each exception type.
GWLOG=$WORK/gateway.log
if grep -qE '^\[[0-9:]+ (WRN|ERR|FTL)\]' "$GWLOG"; then
    echo
    echo "gateway log (Warning and above):"
    awk '
        /^\[[0-9:]+ (WRN|ERR|FTL)\]/ { line = $0; sub(/^\[[0-9:]+ /, "[", line); gsub(/[0-9]+(\.[0-9]+)? ?ms/, "N ms", line); count[substr(line, 1, 170)]++; next }
        /^[A-Za-z_.]+(Exception|Error)[:]/ { ex = $0; sub(/:.*/, "", ex); count["exception " ex]++ }
        END { for (k in count) printf "   %6d x %s\n", count[k], k }
    ' "$GWLOG" | sort -rn | head -n 20
    awk '
        /^[A-Za-z_.]+(Exception|Error)[:]/ {
            kind = $0; sub(/:.*/, "", kind); showing = 0
            if (kind ~ /OperationCanceled|TaskCanceled/ || kind in seen) next
            seen[kind] = 1; showing = 12; printf "\n   first %s\n   %s\n", kind, substr($0, 1, 300); next
        }
        showing > 0 && /^ +at / { print "   " $0; showing-- }
    ' "$GWLOG"
    if grep -qE '^\[[0-9:]+ (ERR|FTL)\]' "$GWLOG"; then PROBLEMS=1; fi
fi
if [[ -s $WORK/load.err ]]; then
    echo
    echo "load generator messages ($(wc -l <"$WORK/load.err") lines, first 10):"
    head -n 10 "$WORK/load.err" | sed 's/^/   /'
fi
exit 0

#!/usr/bin/env bash
# Many-partitions benchmark (issue 34): one embedded node with TOPICS x PER_TOPIC partitions (100 x 100 = 10,000 by
# default) and one 1,000-partition topic. Measures RSS idle, the time to create a 1,000-partition topic, durable and
# memory produce spread over 1,000 partitions beside the same into one partition (same run), a consumer group over
# the 1,000 partitions (join, fetch, commit, describe), /metrics' size and scrape time, and restart to ready (graceful
# stop, and kill -9 while 100 partitions are written) with the first produce after it. See bench/README.md.
#
#   bench/partitions.sh [--quick] [--topics N] [--per-topic N] [--seconds S] [--no-build] [--keep]
#
# Environment overrides: TOPICS, PER_TOPIC, DURATION, PARTITIONS_PORT, BENCH_TMP, SERVER_CPU (1), LOAD_CPU (0).
set -Eeuo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOPICS=${TOPICS:-100}
PER_TOPIC=${PER_TOPIC:-100}
DURATION=${DURATION:-10}
PORT=${PARTITIONS_PORT:-18384}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
WIDE=1000
DO_BUILD=1
KEEP=0
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --quick) TOPICS=10; PER_TOPIC=100; DURATION=3 ;;
        --topics) TOPICS=$2; shift ;;
        --per-topic) PER_TOPIC=$2; shift ;;
        --seconds) DURATION=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
URL=http://127.0.0.1:$PORT
PIDS=()
PID=""
WORK=""
PROBLEMS=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
    wait 2>/dev/null || true
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP || PROBLEMS)); then log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_tool wrk wrk
ensure_tool jq jq
ensure_tool curl curl
port_busy "$PORT" && die "port $PORT is in use (set PARTITIONS_PORT)"
if ((DO_BUILD)); then
    log "building Gateway.Server (Release)"
    dotnet build -c Release -nologo -v q "$REPO/src/Gateway.Server/Gateway.Server.csproj" >/dev/null || die "build failed"
fi
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-partitions.XXXXXX")
DATA=$WORK/data

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }
start() {
    start_server "$REPO/src/Gateway.Server/bin/Release/net10.0" "$DLL" "$WORK/gateway.log" --urls="$URL" \
        --Storage:DataDirectory="$DATA" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning "$@"
    PID=$STARTED_PID
}
wait_ok() {   # wait_ok <url>: polls every 5 ms, 120 s at most
    local i
    for ((i = 0; i < 24000; i++)); do
        curl -sf -o /dev/null --max-time 2 "$1" && return 0
        kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/gateway.log" >&2; die "the server exited"; }
        sleep 0.005
    done
    die "no answer from $1 within 120 s"
}
stop() {   # stop TERM|KILL
    kill "-$1" "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
} 2>/dev/null
post() { curl -s -o "$WORK/post.out" -w '%{http_code} %{time_total}' --max-time 120 -X POST -H 'Content-Type: application/json' "$@"; }
seconds_ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }

declare -A FIG
printf '{"records":[{"value":"%s"}]}' "$(head -c 1000 /dev/zero | tr '\0' 'x')" >"$WORK/record.json"
# produce.lua: one 1 KB record per request; each connection goes round the partitions from its own start.
cat >"$WORK/produce.lua" <<LUA
local f = assert(io.open("$WORK/record.json", "rb"))
local body = f:read("*a")
f:close()
local counter = 0
function setup(thread) end
function init(args)
  partitions = tonumber(args[1]); topic = args[2]; acks = args[3]
  counter = math.random(0, partitions - 1)
end
function request()
  counter = counter + 1
  local path = "/v1/topics/" .. topic .. "/partitions/" .. (counter % partitions) .. "/records?acks=" .. acks
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end
LUA
produce() {   # produce <topic> <partitions> <acks> <seconds> -> req/s
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$4s" -s "$WORK/produce.lua" "$URL" -- "$2" "$1" "$3" >"$WORK/wrk.txt" 2>&1 || true
    grep -q "Non-2xx" "$WORK/wrk.txt" && log "non-2xx answers: $(grep Non-2xx "$WORK/wrk.txt")"
    wrk_rps "$WORK/wrk.txt"
}

# ------------------------------------------------------------------------------------------------------ the partitions
start
wait_ok "$URL/health/ready"
sleep 2
FIG[rss0]=$(rss_mb)
log "RSS with no topics: ${FIG[rss0]} MB"
t0=$(now_ms)
for ((t = 0; t < TOPICS; t++)); do
    out=$(post -d "{\"name\":\"t$t\",\"partitions\":$PER_TOPIC}" "$URL/v1/topics")
    [[ $out == 201* ]] || die "create t$t: $out $(cat "$WORK/post.out")"
done
FIG[create_all]=$(($(now_ms) - t0))
out=$(post -d "{\"name\":\"wide\",\"partitions\":$WIDE}" "$URL/v1/topics")
[[ $out == 201* ]] || die "create wide: $out $(cat "$WORK/post.out")"
FIG[create_wide]=$(seconds_ms "${out#* }")
post -d '{"name":"one","partitions":1}' "$URL/v1/topics" >/dev/null
TOTAL=$((TOPICS * PER_TOPIC + WIDE + 1))
log "created $TOTAL partitions: ${TOPICS} x ${PER_TOPIC} in ${FIG[create_all]} ms, $WIDE in one topic in ${FIG[create_wide]} ms"
FIG[rss_created]=$(rss_mb)
sleep 15 # past Storage:PartitionIdleMs: every log at rest
FIG[rss_idle]=$(rss_mb)
log "RSS with $TOTAL partitions: ${FIG[rss_created]} MB just created, ${FIG[rss_idle]} MB idle"

# ------------------------------------------------------------------------------------------------------ throughput
produce one 1 disk 2 >/dev/null # warm-up
open_partitions() { curl -sf "$URL/metrics" | awk '$1 == "gateway_log_open_partitions" { printf "%d", $2 }'; }
# Cold: every partition of the wide topic at rest, each one's first write opens its log (allocates and clears its two
# pages: on this VM the host backs fresh guest memory at a few ms per MB).
FIG[wide_cold]=$(produce wide "$WIDE" memory "$DURATION")
# Then until every partition of the wide topic has been written since (their logs open, as on a node in service).
t0=$(now_ms)
while (($(open_partitions) < WIDE && $(now_ms) - t0 < 120000)); do
    produce wide "$WIDE" memory 2 >/dev/null
done
FIG[warm_ms]=$(($(now_ms) - t0))
log "cold: ${FIG[wide_cold]} req/s over $WIDE partitions at rest; all open after ${FIG[warm_ms]} ms more"
for acks in disk memory; do
    FIG[one_$acks]=$(produce one 1 "$acks" "$DURATION")
    FIG[wide_$acks]=$(produce wide "$WIDE" "$acks" "$DURATION")
    FIG[journal_$acks]=$(curl -sf "$URL/metrics" | awk '$1 == "gateway_write_journal_active" { printf "%d", $2 }')
    log "acks=$acks: one partition ${FIG[one_$acks]} req/s, $WIDE partitions ${FIG[wide_$acks]} req/s (write journal active: ${FIG[journal_$acks]})"
done
FIG[rss_busy]=$(rss_mb)

# ------------------------------------------------------------------------------------------------ a group over 1,000
# A first group warms up the group code (the first join compiles it), then the timed one; after the produce runs, so
# the node is still closing the partitions they opened.
post -d '{"topics":["one"],"memberId":"a"}' "$URL/v1/groups/warm/members" >/dev/null
sleep 2
out=$(post -d '{"topics":["wide"],"memberId":"a","autoOffsetReset":"earliest"}' "$URL/v1/groups/g/members")
FIG[group_join]=$(seconds_ms "${out#* }")
generation=$(curl -sf "$URL/v1/groups/g" | jq .generation)
FIG[group_fetch]=$(seconds_ms "$(curl -s -o /dev/null -w '%{time_total}' "$URL/v1/groups/g/members/a/records?limit=1000")")
out=$(post -d "{\"generation\":$generation}" "$URL/v1/groups/g/members/a/offsets")
FIG[group_commit]=$(seconds_ms "${out#* }")
FIG[group_describe]=$(seconds_ms "$(curl -s -o /dev/null -w '%{time_total}' "$URL/v1/groups/g")")
log "group over $WIDE partitions: join ${FIG[group_join]} ms, fetch ${FIG[group_fetch]} ms, commit ${FIG[group_commit]} ms, describe ${FIG[group_describe]} ms"

# -------------------------------------------------------------------------------------------------------- /metrics
curl -s -o "$WORK/metrics.txt" "$URL/metrics"
FIG[metrics_kb]=$(($(stat -c %s "$WORK/metrics.txt") / 1024))
FIG[metrics_ms]=$(seconds_ms "$(curl -s -o /dev/null -w '%{time_total}' "$URL/metrics")")
log "/metrics: ${FIG[metrics_kb]} KB in ${FIG[metrics_ms]} ms"

# --------------------------------------------------------------------------------------------------------- restarts
first_produce_ms() {   # ms from start to ready, and to the first durable produce to a partition at rest
    local t0=$1
    wait_ok "$URL/health/ready"
    FIG[$2_ready]=$(($(now_ms) - t0))
    out=$(post --data-binary "@$WORK/record.json" "$URL/v1/topics/t$((TOPICS - 1))/partitions/$((PER_TOPIC - 1))/records?acks=disk")
    [[ $out == 200* || $out == 201* ]] || die "first produce after restart: $out $(cat "$WORK/post.out")"
    FIG[$2_first]=$(($(now_ms) - t0))
}
stop TERM
t0=$(now_ms)
start
first_produce_ms "$t0" graceful
log "restart after a graceful stop: ready in ${FIG[graceful_ready]} ms, first produce at ${FIG[graceful_first]} ms"
sleep 12
# kill -9 while 100 partitions (of the wide topic) are written
taskset -c "$LOAD_CPU" wrk -t1 -c64 -d5s -s "$WORK/produce.lua" "$URL" -- 100 wide memory >/dev/null 2>&1 &
sleep 3
stop KILL
wait 2>/dev/null || true
t0=$(now_ms)
start
first_produce_ms "$t0" killed
FIG[rss_restarted]=$(rss_mb)
log "restart after kill -9 during produce to 100 partitions: ready in ${FIG[killed_ready]} ms, first produce at ${FIG[killed_first]} ms"
stop TERM

ratio_of() { ratio "${FIG[$1]}" "${FIG[$2]}"; }
printf '\nMany partitions: %d topics x %d + one of %d (+1) = %d partitions, one node (server on CPU %s, load on CPU %s)\n\n' \
    "$TOPICS" "$PER_TOPIC" "$WIDE" "$TOTAL" "$SERVER_CPU" "$LOAD_CPU"
printf '%-12s %-62s %10s %s\n' id what figure target
row() { printf '%-12s %-62s %10s %s\n' "$@"; }
row P-rss0 "RSS, no topics, MB" "${FIG[rss0]}" ""
row P-rss "RSS, $TOTAL partitions, idle, MB" "${FIG[rss_idle]}" "<= 1536"
row P-per "RSS per idle partition, KB" "$(((FIG[rss_idle] - FIG[rss0]) * 1024 / TOTAL))" "<= 64"
row P-create "create a $WIDE-partition topic, ms" "${FIG[create_wide]}" "<= 2000"
row P-disk "produce 1 KB acks=disk over $WIDE partitions / one, req/s" "$(ratio_of wide_disk one_disk)" ">= 0.6 (${FIG[wide_disk]} / ${FIG[one_disk]})"
row P-memory "the same, acks=memory" "$(ratio_of wide_memory one_memory)" ">= 0.8 (${FIG[wide_memory]} / ${FIG[one_memory]})"
row P-cold "acks=memory over $WIDE partitions at rest (first writes), req/s" "${FIG[wide_cold]}" "(then all open in ${FIG[warm_ms]} ms)"
row P-rssbusy "RSS after the produce runs, MB" "${FIG[rss_busy]}" "(within Storage:LogMemoryBytes)"
row P-group "group over $WIDE partitions: join / fetch / commit / describe ms" "${FIG[group_join]}/${FIG[group_fetch]}/${FIG[group_commit]}/${FIG[group_describe]}" "<= 100 each"
row P-metrics "/metrics size KB / scrape ms" "${FIG[metrics_kb]}/${FIG[metrics_ms]}" "< a few MB / < 100"
row P-restart "restart after a graceful stop: ready / first produce, ms" "${FIG[graceful_ready]}/${FIG[graceful_first]}" "<= 3000"
row P-kill9 "restart after kill -9 (100 written): ready / first produce, ms" "${FIG[killed_ready]}/${FIG[killed_first]}" "<= 5000"

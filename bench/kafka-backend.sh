#!/usr/bin/env bash
# The Kafka backend's benchmark (issue 33), against librdkafka's mock cluster (3 brokers, replication factor 3) in
# another process, each scenario beside its baseline in the same round:
#   KB-produce  HTTP produce of 1 KB records through one Gateway node (Storage:Backend=kafka), one record per request,
#               wrk -c64, acks=disk (Kafka acks=all): records/s  vs  KB-direct, Confluent.Kafka alone sending the same
#               records to the same cluster with acks=all, 64 produce calls in flight, one record each (target >= 0.5)
#   KB-memory   the same with acks=memory (acks=1)  vs  KB-direct-1 (acks=1)
#   KB-fetch    HTTP fetch of the last ~1 MB (1,000 JSON records of 1 KB) of a partition, wrk -c64: requests/s  vs  the
#               same through a node on the embedded backend (target >= 0.8)
#   KB-fanout   SSE fan-out, FANOUT_SUBS subscribers of one topic x FANOUT_RATE records/s for FANOUT_SECONDS (bench/SseLoad):
#               deliveries/s and p99 produce->event  vs  the same through a node on the embedded backend (target >= 0.8)
# Placement: the mock cluster and wrk on CPU 0; the Gateway node, or in the baseline the Kafka client, on CPU 1.
# Usage: bench/kafka-backend.sh [--quick] [--runs N] [--duration S] [--no-build] [--keep]
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
FANOUT_SUBS=${FANOUT_SUBS:-1000}
FANOUT_RATE=${FANOUT_RATE:-100}
FANOUT_SECONDS=${FANOUT_SECONDS:-20}
DO_BUILD=1
KEEP=0
while (($#)); do
    case $1 in
        --quick) RUNS=1; DURATION=3; FANOUT_SUBS=200; FANOUT_SECONDS=5 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --keep) KEEP=1 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# One pinned core: the runtime's single-processor tiering delay would keep the node in unoptimized code for its first
# minute under load (see README, Docker); the image sets the same.
export DOTNET_TC_DelaySingleProcMultiplier=${DOTNET_TC_DelaySingleProcMultiplier:-1}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
GATEWAY_PORT=${GATEWAY_PORT:-18283}
EMBEDDED_PORT=${EMBEDDED_PORT:-18284}
PROBLEMS=0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
LOAD_DLL=$REPO/bench/KafkaLoad/bin/Release/net10.0/KafkaLoad.dll
SSE_LOAD_DLL=$REPO/bench/SseLoad/bin/Release/net10.0/SseLoad.dll
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
EMBEDDED_URL=http://127.0.0.1:$EMBEDDED_PORT

WORK=""
PIDS=()
MOCK_PID=""
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    [[ -n $MOCK_PID ]] && exec 7>&- 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP || PROBLEMS)); then log "kept $WORK (logs)"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_tool wrk wrk
ensure_tool taskset util-linux
ensure_tool curl curl
ensure_tool jq jq
port_busy "$GATEWAY_PORT" && die "port $GATEWAY_PORT is in use"
port_busy "$EMBEDDED_PORT" && die "port $EMBEDDED_PORT is in use"

if ((DO_BUILD)); then
    log "building Gateway.Server, KafkaLoad and SseLoad (Release)"
    for project in src/Gateway.Server/Gateway.Server.csproj bench/KafkaLoad/KafkaLoad.csproj bench/SseLoad/SseLoad.csproj; do
        dotnet build -c Release -nologo -v q "$REPO/$project" >/dev/null || die "build of $project failed"
    done
fi

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-kafka-backend-bench.XXXXXX")
load() { taskset -c "$SERVER_CPU" dotnet "$LOAD_DLL" "$@"; }

# The mock cluster lives as long as its stdin (fd 7 here) is open.
mkfifo "$WORK/mock.in"
(exec taskset -c "$LOAD_CPU" dotnet "$LOAD_DLL" mock bench,kbfetch,kbsse <"$WORK/mock.in" >"$WORK/mock.out" 2>"$WORK/mock.log") &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
exec 7>"$WORK/mock.in"
for ((i = 0; i < 100; i++)); do
    [[ -s $WORK/mock.out ]] && break
    sleep 0.2
done
BOOTSTRAP=$(head -n 1 "$WORK/mock.out")
[[ $BOOTSTRAP == *:* ]] || { cat "$WORK/mock.log" >&2; die "the mock cluster did not start"; }
log "mock cluster at $BOOTSTRAP"

# Kafka:TailFetchWaitMs=10: the mock cluster holds an empty fetch for its whole max wait even when records arrive
# (rdkafka_mock_handlers.c delays the empty answer; a real broker answers at once), so the default 100 ms would be the
# mock's latency, not the node's.
start_server "$WORK" "$GATEWAY_DLL" "$WORK/gateway.log" "--urls=$GATEWAY_URL" --Storage:Backend=kafka "--Kafka:BootstrapServers=$BOOTSTRAP" \
    --Kafka:MetadataRefreshMs=1000 --Kafka:TailFetchWaitMs=10 --Serilog:MinimumLevel:Default=Warning
GATEWAY_PID=$STARTED_PID
wait_ready "$GATEWAY_URL/health/ready" "$GATEWAY_PID" "$WORK/gateway.log"
for ((i = 0; i < 50; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$GATEWAY_URL/v1/topics/bench") == 200 ]] && break
    sleep 0.2
done

printf '{"records":[{"value":"%s"}]}' "$(head -c 1000 /dev/zero | tr '\0' 'x')" >"$WORK/record.json"
cat >"$WORK/produce.lua" <<LUA
local f = assert(io.open("$WORK/record.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
wrk_errors() { awk '/Non-2xx|Socket errors/ { print }' "$1"; }


# A warm-up of each, discarded.
taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s -s "$WORK/produce.lua" "$GATEWAY_URL/v1/topics/bench/partitions/0/records?acks=disk" >/dev/null 2>&1 || true
for ((round = 1; round <= RUNS; round++)); do
    log "round $round of $RUNS"
    for acks in disk memory; do
        kafka_acks=all; [[ $acks == memory ]] && kafka_acks=1
        taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/produce.lua" "$GATEWAY_URL/v1/topics/bench/partitions/0/records?acks=$acks" >"$WORK/wrk.txt" 2>&1 || true
        log "KB-$acks: $(wrk_rps "$WORK/wrk.txt") req/s $(wrk_errors "$WORK/wrk.txt")"
        add "KB-$acks" "$(wrk_rps "$WORK/wrk.txt")"
        out=$(load inflight "$BOOTSTRAP" bench "$DURATION" 1024 64 "$kafka_acks" 2)
        log "KB-direct-$kafka_acks: $out"
        add "KB-direct-$kafka_acks" "$(jq -r .recordsPerSecond <<<"$out")"
    done
done
kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway died during the run"

# ---------------------------------------------------------------------------------------------- fetch and SSE fan-out
# The same build on the embedded backend, for the comparison: same CPU, its own data folder, no Kafka listener.
mkdir -p "$WORK/embedded"
start_server "$WORK/embedded" "$GATEWAY_DLL" "$WORK/embedded.log" "--urls=$EMBEDDED_URL" "--Storage:DataDirectory=$WORK/embedded/data" \
    --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning
EMBEDDED_PID=$STARTED_PID
wait_ready "$EMBEDDED_URL/health/ready" "$EMBEDDED_PID" "$WORK/embedded.log"
{
    printf '{"records":['
    for ((i = 0; i < 100; i++)); do
        ((i)) && printf ','
        printf '{"value":"%s"}' "$(head -c 1000 /dev/zero | tr '\0' 'y')"
    done
    printf ']}'
} >"$WORK/body-100-json.bin"
declare -A FETCH_PATH
for node in kafka embedded; do
    url=$GATEWAY_URL; [[ $node == embedded ]] && url=$EMBEDDED_URL
    for topic in kbfetch kbsse; do
        if [[ $node == kafka ]]; then
            # The mock cluster made them (it takes no CreateTopics): the node sees them at its next metadata round.
            for ((i = 0; i < 50; i++)); do
                [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/v1/topics/$topic") == 200 ]] && break
                sleep 0.2
            done
        else
            code=$(curl -s -o "$WORK/topic.out" -w '%{http_code}' --max-time 30 -X POST "$url/v1/topics" -H 'Content-Type: application/json' -d "{\"name\":\"$topic\",\"partitions\":1}")
            [[ $code == 201 ]] || die "creating $topic on the $node node: HTTP $code $(head -c 300 "$WORK/topic.out")"
        fi
    done
    for ((i = 0; i < 12; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
            --data-binary "@$WORK/body-100-json.bin" "$url/v1/topics/kbfetch/partitions/0/records") || true
        [[ $code == 200 ]] || die "filling kbfetch on the $node node: HTTP $code"
    done
    FETCH_PATH[$node]="$url/v1/topics/kbfetch/partitions/0/records?offset=200&maxBytes=1048576&limit=10000"
    count=$(curl -s --max-time 30 "${FETCH_PATH[$node]}" | jq '.records | length') || true
    log "fetch on the $node node: $count records per answer"
done
sse_load() {   # sse_load <node> <SseLoad options...>: one SseLoad run, its result line
    local node=$1 url=$GATEWAY_URL pid=$GATEWAY_PID
    shift
    [[ $node == embedded ]] && url=$EMBEDDED_URL pid=$EMBEDDED_PID
    timeout -k 5 $((FANOUT_SECONDS + 300)) taskset -c "$LOAD_CPU" dotnet "$SSE_LOAD_DLL" "$@" --url "$url" --target gateway \
        --topic kbsse --pid "$pid" --drain 5 --connect-timeout 90 2>>"$WORK/sse-load.err" | tail -n 1
}
kv() { awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, p, "="); if (p[1] == k) { print substr($i, length(k) + 2); exit } } }' <<<"$1"; }
for node in kafka embedded; do
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s "${FETCH_PATH[$node]}" >/dev/null 2>&1 || true
    sse_load "$node" latency --subscribers 1 --rate 200 --seconds 3 >/dev/null || true   # warm-up
done
for ((round = 1; round <= RUNS; round++)); do
    for node in kafka embedded; do
        taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" "${FETCH_PATH[$node]}" >"$WORK/wrk.txt" 2>&1 || true
        log "fetch $node round $round: $(wrk_rps "$WORK/wrk.txt") req/s $(wrk_errors "$WORK/wrk.txt")"
        add "fetch-$node" "$(wrk_rps "$WORK/wrk.txt")"
    done
    for node in kafka embedded; do
        line=$(sse_load "$node" fanout --subscribers "$FANOUT_SUBS" --rate "$FANOUT_RATE" --seconds "$FANOUT_SECONDS") || true
        log "fan-out $node round $round: $line"
        [[ $line == "sse mode="* ]] || { PROBLEMS=1; continue; }
        add "fanout-$node" "$(kv "$line" deliveries_per_s)"
        add "fanout-p99-$node" "$(kv "$line" p99_ms)"
        add "fanout-lost-$node" "$(kv "$line" lost)"
    done
done
kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway died during the run"
kill -0 "$EMBEDDED_PID" 2>/dev/null || die "the embedded gateway died during the run"

echo
echo "Kafka backend over the mock cluster (3 brokers, RF 3), $RUNS round(s) of ${DURATION}s; node/client on CPU $SERVER_CPU, mock and wrk on CPU $LOAD_CPU; medians, records/s"
printf '%-12s %-66s %10s %10s %7s %s\n' id what median baseline ratio target
printf '%-12s %-66s %10s %10s %7s %s\n' KB-produce "HTTP, 1 KB, one record per request, wrk -c64, acks=disk" "$(median KB-disk)" "$(median KB-direct-all)" "$(ratio "$(median KB-disk)" "$(median KB-direct-all)")" ">= 0.5 of Confluent.Kafka alone (acks=all, 64 in flight)"
printf '%-12s %-66s %10s %10s %7s %s\n' KB-memory "the same, acks=memory" "$(median KB-memory)" "$(median KB-direct-1)" "$(ratio "$(median KB-memory)" "$(median KB-direct-1)")" "(acks=1)"
printf '%-12s %-66s %10s %10s %7s %s\n' KB-fetch "HTTP fetch of ~1 MB from the tail (1,000 x 1 KB), wrk -c64: req/s" "$(median fetch-kafka)" "$(median fetch-embedded)" "$(ratio "$(median fetch-kafka)" "$(median fetch-embedded)")" ">= 0.8 of the embedded backend"
printf '%-12s %-66s %10s %10s %7s %s\n' KB-fanout "SSE, $FANOUT_SUBS subscribers x $FANOUT_RATE rec/s: deliveries/s" "$(median fanout-kafka)" "$(median fanout-embedded)" "$(ratio "$(median fanout-kafka)" "$(median fanout-embedded)")" ">= 0.8 of the embedded backend"
printf '%-12s %-66s %10s %10s %7s %s\n' KB-fanout99 "  its produce->event p99, ms (lower is better)" "$(median fanout-p99-kafka)" "$(median fanout-p99-embedded)" "$(ratio "$(median fanout-p99-kafka)" "$(median fanout-p99-embedded)")" "(lost: kafka $(median fanout-lost-kafka), embedded $(median fanout-lost-embedded))"

#!/usr/bin/env bash
# The Kafka listener's benchmarks (issue 32), each against its baseline measured in the same run, interleaved:
#   K-produce  Confluent.Kafka producer, acks=all, 1 KB records in 64 KB batches, one partition, five requests in
#              flight (Kafka's max.in.flight), closed loop: MB/s  vs  B4-batch, FasterLog alone taking the same 64 KB
#              entries from 5 writers, each waiting for its durable commit (target >= 0.8)
#   K-idem     the same with enable.idempotence=true (Java's default): librdkafka then keeps one request per
#              partition in flight (it allows 5 minus the *messages* in flight), so one partition runs at 1 / RTT
#   K-consume  a caught-up Confluent.Kafka consumer reading a 1 GB topic from offset 0: MB/s  vs  B2, the trivial
#              Kestrel app serving a 1 MiB buffer (wrk -c64, the ceiling for serving bytes) (target >= 0.8)
#   K-fetch    the same read by the leanest consumer there is (raw Fetch v4, one in flight, batch headers walked): the
#              broker's side alone, as wrk measures B2; K-consume is bounded by the client's own CPU (one core)
#   K-latency  produce -> consume at 1,000 rec/s, open loop, acks=all: p50/p99/p99.9 (target p99 <= 5 ms)
#   G-ndjson   the same 1 KB records over HTTP for comparison: 100 x 1 KB NDJSON per request, acks=disk, wrk -c64
#   K-idle     RSS per idle Kafka connection (ApiVersions + Metadata said, then silence) (target <= 20 KB)
# Usage: bench/kafka.sh [--quick] [--runs N] [--duration S] [--no-build] [--keep]
#   --quick: 1 round of 3 s runs, a 256 MB topic for K-consume, 1,000 idle connections (~3 min with the builds)
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
TOPIC_MB=${TOPIC_MB:-1024}
IDLE=${IDLE:-2000}
DO_BUILD=1
KEEP=0
QUICK=0
while (($#)); do
    case $1 in
        --quick) QUICK=1; RUNS=1; DURATION=3; TOPIC_MB=256; IDLE=1000 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --keep) KEEP=1 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# Every process here is pinned to one CPU, where the runtime would wait ten times longer before optimizing hot methods
# (bench/run.sh says why); the multi-core delay for the gateway and the baselines alike, as the Docker image sets.
export DOTNET_TC_DelaySingleProcMultiplier=${DOTNET_TC_DelaySingleProcMultiplier:-1}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
BASELINE_PORT=${BASELINE_PORT:-18281}
GATEWAY_PORT=${GATEWAY_PORT:-18282}
KAFKA_PORT=${KAFKA_PORT:-18292}
PROBLEMS=0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
BASELINE_DLL=$REPO/bench/Baseline/bin/Release/net10.0/Baseline.dll
LOG_BASELINE_DLL=$REPO/bench/LogBaseline/bin/Release/net10.0/LogBaseline.dll
LOAD_DLL=$REPO/bench/KafkaLoad/bin/Release/net10.0/KafkaLoad.dll
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT

WORK=""
PIDS=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP || PROBLEMS)); then log "kept $WORK (logs; data removed)"; rm -rf "$WORK/data" "$WORK/b4"; else rm -rf "$WORK"; fi
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
for p in "$BASELINE_PORT" "$GATEWAY_PORT" "$KAFKA_PORT"; do port_busy "$p" && die "port $p is in use"; done

if ((DO_BUILD)); then
    log "building Gateway.Server, Baseline, LogBaseline and KafkaLoad (Release)"
    for project in src/Gateway.Server/Gateway.Server.csproj bench/Baseline/Baseline.csproj bench/LogBaseline/LogBaseline.csproj bench/KafkaLoad/KafkaLoad.csproj; do
        dotnet build -c Release -nologo -v q "$REPO/$project" >/dev/null || die "build of $project failed"
    done
fi

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-kafka-bench.XXXXXX")
mkdir -p "$WORK/data"
load() { taskset -c "$LOAD_CPU" dotnet "$LOAD_DLL" "$@"; }

start_server "$WORK" "$BASELINE_DLL" "$WORK/baseline.log" --urls "http://127.0.0.1:$BASELINE_PORT"
wait_ready "http://127.0.0.1:$BASELINE_PORT/health" "$STARTED_PID" "$WORK/baseline.log"
start_server "$WORK" "$GATEWAY_DLL" "$WORK/gateway.log" "--urls=$GATEWAY_URL" "--Storage:DataDirectory=$WORK/data" \
    "--KafkaProtocol:Listen=$BOOTSTRAP" --Serilog:MinimumLevel:Default=Warning
GATEWAY_PID=$STARTED_PID
wait_ready "$GATEWAY_URL/health/ready" "$GATEWAY_PID" "$WORK/gateway.log"
for topic in produce fill latency ndjson; do
    curl -sf -X POST "$GATEWAY_URL/v1/topics" -H 'Content-Type: application/json' -d "{\"name\":\"$topic\",\"partitions\":1}" >/dev/null
done

# The HTTP comparison: 100 x 1 KB NDJSON records per request.
chars() { head -c "$1" /dev/zero | tr '\0' 'x'; }
for ((i = 0; i < 100; i++)); do printf '{"value":"%s"}\n' "$(chars 1000)"; done >"$WORK/body-100-ndjson.bin"
cat >"$WORK/ndjson.lua" <<LUA
local f = assert(io.open("$WORK/body-100-ndjson.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
LUA
NDJSON_BYTES=$(stat -c %s "$WORK/body-100-ndjson.bin")


log "filling topic 'fill' with $TOPIC_MB MB of 1 KB records (acks=1)"
log "fill: $(load fill "$BOOTSTRAP" fill "$TOPIC_MB" 1024)"

for ((round = 1; round <= RUNS; round++)); do
    log "round $round of $RUNS"
    out=$(load produce "$BOOTSTRAP" produce "$DURATION" 1024 65536 all 3)
    log "K-produce: $out"; add K-produce "$(jq -r .mbPerSecond <<<"$out")"
    out=$(KAFKALOAD_ENABLE_IDEMPOTENCE=true load produce "$BOOTSTRAP" produce "$DURATION" 1024 65536 all 3)
    log "K-idem: $out"; add K-idem "$(jq -r .mbPerSecond <<<"$out")"
    rm -rf "$WORK/b4"
    out=$(taskset -c "$SERVER_CPU" dotnet "$LOG_BASELINE_DLL" "$WORK/b4" disk "$DURATION" 5 65536 2>&1 || true)
    rate=$(awk '{print $1; exit}' <<<"$out")
    log "B4-batch (64 KB entries, 5 writers, disk): $out"
    [[ $rate =~ ^[0-9]+$ ]] && add B4-batch "$(awk -v r="$rate" 'BEGIN { printf "%.1f", r * 65536 / 1e6 }')"

    out=$(load consume "$BOOTSTRAP" fill 1)
    log "K-consume: $out"; add K-consume "$(jq -r .mbPerSecond <<<"$out")"
    out=$(load fetch "$BOOTSTRAP" fill "$(jq -r .records <<<"$out")")
    log "K-fetch: $out"; add K-fetch "$(jq -r .mbPerSecond <<<"$out")"
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$BASELINE_PORT/blob" >"$WORK/b2.txt" 2>&1 || true
    add B2 "$(awk -v r="$(wrk_rps "$WORK/b2.txt")" 'BEGIN { printf "%.1f", r * 1048576 / 1e6 }')"
    log "B2: $(wrk_rps "$WORK/b2.txt") req/s of 1 MiB"

    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/ndjson.lua" "$GATEWAY_URL/v1/topics/ndjson/records?acks=disk" >"$WORK/ndjson.txt" 2>&1 || true
    add G-ndjson "$(awk -v r="$(wrk_rps "$WORK/ndjson.txt")" -v b="$NDJSON_BYTES" 'BEGIN { printf "%.1f", r * b / 1e6 }')"
    log "G-ndjson: $(wrk_rps "$WORK/ndjson.txt") req/s"

    out=$(load latency "$BOOTSTRAP" latency 1000 "$((DURATION * 2))")  # acks=all, linger 0
    log "K-latency: $out"
    add K-p50 "$(jq -r .p50Ms <<<"$out")"; add K-p99 "$(jq -r .p99Ms <<<"$out")"; add K-p999 "$(jq -r .p999Ms <<<"$out")"
done

out=$(load idle "$BOOTSTRAP" "$IDLE" "$GATEWAY_PID")
log "K-idle: $out"
IDLE_KB=$(jq -r .kbPerConnection <<<"$out")

echo
echo "Kafka listener, $RUNS round(s) of ${DURATION}s; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; medians"
printf '%-11s %-62s %10s %10s %7s %s\n' id what median baseline ratio target
printf '%-11s %-62s %10s %10s %7s %s\n' K-produce "Confluent.Kafka, 1 KB in 64 KB batches, acks=all, MB/s" "$(median K-produce)" "$(median B4-batch)" "$(ratio "$(median K-produce)" "$(median B4-batch)")" ">= 0.8 of B4-batch"
printf '%-11s %-62s %10s %10s %7s %s\n' K-idem "the same, idempotent (one request in flight), MB/s" "$(median K-idem)" "$(median B4-batch)" "$(ratio "$(median K-idem)" "$(median B4-batch)")" "(librdkafka's limit)"
printf '%-11s %-62s %10s %10s %7s %s\n' K-consume "caught-up consumer, $TOPIC_MB MB topic, MB/s" "$(median K-consume)" "$(median B2)" "$(ratio "$(median K-consume)" "$(median B2)")" ">= 0.8 of B2"
printf '%-11s %-62s %10s %10s %7s %s\n' K-fetch "the same read by a raw Fetch loop (the broker's side), MB/s" "$(median K-fetch)" "$(median B2)" "$(ratio "$(median K-fetch)" "$(median B2)")" ">= 0.8 of B2"
printf '%-11s %-62s %10s %10s %7s %s\n' G-ndjson "HTTP, 100 x 1 KB NDJSON per request, acks=disk, MB/s" "$(median G-ndjson)" "$(median B4-batch)" "$(ratio "$(median G-ndjson)" "$(median B4-batch)")" "(comparison)"
printf '%-11s %-62s %10s\n' K-latency "produce->consume at 1,000 rec/s: p50 / p99 / p99.9 ms" "$(median K-p50) / $(median K-p99) / $(median K-p999)"
printf '%-11s %-62s %10s %10s %7s %s\n' K-idle "RSS per idle Kafka connection ($IDLE), KB" "$IDLE_KB" "-" "-" "<= 20 KB"

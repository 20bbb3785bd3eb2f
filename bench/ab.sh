#!/usr/bin/env bash
# A/B of two builds of the gateway in one run: the working tree (B) against an older commit (A), the same scenarios
# against both, in interleaved rounds (A then B in odd rounds, B then A in even ones), each server pinned to the same
# core and wrk to the other, so that drift of this noisy machine hits both alike. Prints each scenario's median
# req/s for A and B and the ratio B/A. For a change that must keep the fast paths fast, or that adds work (a sync).
#
#   bench/ab.sh --base REV [--rounds N] [--duration S] [--warmup S] [--connections N] [SCENARIO...]
#
#   --base REV       the commit to compare with (built in a temporary git worktree, Release)
#   SCENARIO         any of: commit (group offset commit), 1k-disk, 1k-mem (1 record x 1 KB), 100-json
#                    (100 x 1 KB JSON, acks=disk), fetch-1m (fetch ~1 MB from a partition's tail); default: all
#   --rounds N       measured rounds (default 5); --duration S: seconds per run (default 10); --warmup S: per
#                    scenario and build, once (default 5); --connections N: wrk connections (default 64)
#
# Environment: BENCH_TMP (where the data directories go; default $TMPDIR or /tmp), SERVER_CPU / LOAD_CPU (1 / 0),
# A_PORT / B_PORT (18191 / 18192).
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "$*"; exit 2; }

BASE="" ROUNDS=5 DURATION=10 WARMUP=5 CONNECTIONS=64
SCENARIOS=()
while (($#)); do
    case "$1" in
        --base) BASE=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        commit|1k-disk|1k-mem|100-json|fetch-1m) SCENARIOS+=("$1") ;;
        *) die "unknown argument '$1' (--help)" ;;
    esac
    shift
done
[[ -n $BASE ]] || die "--base REV is required"
((${#SCENARIOS[@]})) || SCENARIOS=(commit 1k-disk 1k-mem 100-json fetch-1m)
SERVER_CPU=${SERVER_CPU:-1} LOAD_CPU=${LOAD_CPU:-0}
A_PORT=${A_PORT:-18191} B_PORT=${B_PORT:-18192}
for tool in wrk jq curl taskset; do command -v $tool >/dev/null || die "$tool is missing (bench/run.sh installs wrk and jq)"; done

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-ab.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    git -C "$REPO" worktree remove --force "$WORK/base" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building A = $BASE (worktree) and B = the working tree (Release)"
git -C "$REPO" worktree add --detach -q "$WORK/base" "$BASE"
A_REV=$(git -C "$WORK/base" rev-parse --short HEAD)
B_REV="$(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src || echo '+changes')"
dotnet build -c Release -nologo -v q "$WORK/base/src/Gateway.Server" >/dev/null || die "build of $BASE failed"
dotnet build -c Release -nologo -v q "$REPO/src/Gateway.Server" >/dev/null || die "build of the working tree failed"
A_DLL=$WORK/base/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
B_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll

start() {   # start <name> <dll> <port>
    mkdir -p "$WORK/$1-data"
    (cd "$(dirname "$2")" && exec taskset -c "$SERVER_CPU" dotnet "$2" --urls="http://127.0.0.1:$3" \
        --Storage:DataDirectory="$WORK/$1-data" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning >"$WORK/$1.log" 2>&1) &
    PIDS+=($!)
    for _ in $(seq 120); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$3/health/ready" || true) == 200 ]] && return 0
        sleep 0.5
    done
    tail -20 "$WORK/$1.log" >&2; die "$1 was not ready"
}
post() { curl -sf --max-time 10 -X POST -H 'Content-Type: application/json' "$@" >/dev/null; }
chars() { head -c "$1" /dev/zero | tr '\0' 'x'; }

prepare() {   # prepare <port>: topics, a group member (generation 1), a partition to fetch from
    local url=http://127.0.0.1:$1 i
    post "$url/v1/topics" -d '{"name":"bench","partitions":1}'
    post "$url/v1/topics" -d '{"name":"bench-groups","partitions":1}'
    post "$url/v1/topics" -d '{"name":"bench-fetch","partitions":1}'
    post "$url/v1/groups/bench-g/members" -d '{"topics":["bench-groups"],"memberId":"bench-member","sessionTimeoutMs":300000}'
    for i in $(seq 40); do post "$url/v1/topics/bench-fetch/records?acks=memory" --data-binary @"$WORK/body-100-json.bin"; done
}

chars 1024 >"$WORK/body-1k.bin"
{
    printf '{"records":['
    for i in $(seq 100); do ((i > 1)) && printf ','; printf '{"value":"%s"}' "$(chars 1000)"; done
    printf ']}'
} >"$WORK/body-100-json.bin"
printf '{"generation":1,"offsets":[{"topic":"bench-groups","partition":0,"offset":0}]}' >"$WORK/body-commit.json"

# path | body file (- for a GET) | content type
scenario() {
    case $1 in
        commit) echo "/v1/groups/bench-g/members/bench-member/offsets|$WORK/body-commit.json|application/json" ;;
        1k-disk) echo "/v1/topics/bench/records?acks=disk|$WORK/body-1k.bin|application/octet-stream" ;;
        1k-mem) echo "/v1/topics/bench/records?acks=memory|$WORK/body-1k.bin|application/octet-stream" ;;
        100-json) echo "/v1/topics/bench/records?acks=disk|$WORK/body-100-json.bin|application/json" ;;
        fetch-1m) echo "/v1/topics/bench-fetch/partitions/0/records?offset=2000&maxBytes=1048576&limit=10000|-|-" ;;
    esac
}
for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r _ body type <<<"$(scenario "$s")"
    [[ $body == - ]] && continue
    cat >"$WORK/$s.lua" <<EOF
local f = io.open("$body", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "$type"
EOF
done

start A "$A_DLL" "$A_PORT"
start B "$B_DLL" "$B_PORT"
prepare "$A_PORT"
prepare "$B_PORT"

run() {   # run <build> <scenario> <seconds>: req/s (non-2xx answers make it 0)
    local port=$A_PORT path body args out
    [[ $1 == B ]] && port=$B_PORT
    IFS='|' read -r path body _ <<<"$(scenario "$2")"
    args=(-t1 "-c$CONNECTIONS" "-d${3}s" --timeout 10s)
    [[ $body != - ]] && args+=(-s "$WORK/$2.lua")
    out=$(taskset -c "$LOAD_CPU" wrk "${args[@]}" "http://127.0.0.1:$port$path" 2>&1)
    if grep -q "Non-2xx" <<<"$out"; then log "$1 $2: non-2xx answers: $(grep Non-2xx <<<"$out")"; echo 0; return; fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

log "warm-up: ${WARMUP}s per scenario and build"
for s in "${SCENARIOS[@]}"; do run A "$s" "$WARMUP" >/dev/null; run B "$s" "$WARMUP" >/dev/null; done
declare -A RESULTS
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SCENARIOS[@]}"; do
        order=(A B); ((r % 2 == 0)) && order=(B A)
        for build in "${order[@]}"; do
            rps=$(run "$build" "$s" "$DURATION")
            RESULTS[$build,$s]+="$rps "
            log "round $r/$ROUNDS $s $build: $rps req/s"
        done
    done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
echo "A = $A_REV, B = $B_REV; $ROUNDS interleaved round(s) of ${DURATION}s, wrk -t1 -c$CONNECTIONS; servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; $(nproc) CPUs; data on $(df -T "$WORK" | awk 'NR==2{print $2}')"
echo
echo "| scenario | A req/s (median) | B req/s (median) | B / A | A runs | B runs |"
echo "| --- | ---: | ---: | ---: | --- | --- |"
for s in "${SCENARIOS[@]}"; do
    a=$(median "${RESULTS[A,$s]}"); b=$(median "${RESULTS[B,$s]}")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf (a > 0) ? "%.2f" : "-", b / a}')
    printf '| %s | %.0f | %.0f | %s | %s | %s |\n' "$s" "$a" "$b" "$ratio" "${RESULTS[A,$s]% }" "${RESULTS[B,$s]% }"
done

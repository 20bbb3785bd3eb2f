#!/usr/bin/env bash
# Restart benchmark: time from process start to a ready server, for the gateway with 1 GB in 16 partitions (after a
# graceful stop and after kill -9), for the gateway with no data, and for the trivial Kestrel app (B1's) as the
# floor of any ASP.NET process on this machine. The gateway runs as docker/Dockerfile ships it (self-contained, with
# composite ReadyToRun code); one more row times the plain Release build on the same data. Interleaved rounds; see
# bench/README.md.
#
#   bench/restart.sh [--quick] [--runs N] [--data-mb MB] [--partitions N] [--no-build] [--keep]
#
# Environment overrides: RUNS, DATA_MB, PARTITIONS, KILL9_MB_PER_PARTITION (6), RESTART_PORT, BASELINE_PORT,
# BENCH_TMP, SERVER_CPUS (default: all cores — a restart has no load generator beside it; set e.g. SERVER_CPUS=1 to
# pin).
set -Eeuo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
DATA_MB=${DATA_MB:-1024}
KILL9_MB_PER_PARTITION=${KILL9_MB_PER_PARTITION:-6}
PARTITIONS=${PARTITIONS:-16}
RESTART_PORT=${RESTART_PORT:-18183}
BASELINE_PORT=${BASELINE_PORT:-18184}
SERVER_CPUS=${SERVER_CPUS:-}
DO_BUILD=1
KEEP=0

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --quick) RUNS=1; DATA_MB=256 ;;
        --runs) RUNS=$2; shift ;;
        --data-mb) DATA_MB=$2; shift ;;
        --partitions) PARTITIONS=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for n in RUNS DATA_MB PARTITIONS RESTART_PORT BASELINE_PORT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || { echo "$n must be a whole number (got '${!n}')" >&2; exit 2; }
done
((RUNS >= 1 && PARTITIONS >= 1 && DATA_MB >= 1)) || { echo "RUNS, PARTITIONS and DATA_MB must be at least 1" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY_APP=$REPO/src/Gateway.Server/bin/Release/net10.0/publish-r2r/Gateway.Server
GATEWAY_JIT_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
BASELINE_DLL=$REPO/bench/Baseline/bin/Release/net10.0/Baseline.dll
URL=http://127.0.0.1:$RESTART_PORT


WORK=""
PID=""
stop_server() {   # stop_server TERM|KILL
    [[ -n $PID ]] || return 0
    kill "-$1" "$PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
} 2>/dev/null   # also bash's "Killed" notice for the kill -9 rounds
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server TERM
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP)); then log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in wrk curl; do command -v $tool >/dev/null 2>&1 || die "$tool is missing (bench/run.sh installs it)"; done
(exec 3<>"/dev/tcp/127.0.0.1/$RESTART_PORT") 2>/dev/null && die "port $RESTART_PORT is in use (set RESTART_PORT)"
(exec 3<>"/dev/tcp/127.0.0.1/$BASELINE_PORT") 2>/dev/null && die "port $BASELINE_PORT is in use (set BASELINE_PORT)"

if ((DO_BUILD)); then
    log "building Gateway.Server and Baseline (Release)"
    dotnet build -c Release -nologo -v q "$REPO/src/Gateway.Server/Gateway.Server.csproj" >/dev/null || die "build of Gateway.Server failed"
    "$REPO/bench/publish-r2r.sh" >/dev/null || die "publish of Gateway.Server (ReadyToRun) failed (run: bench/publish-r2r.sh)"
    dotnet build -c Release -nologo -v q "$REPO/bench/Baseline/Baseline.csproj" >/dev/null || die "build of Baseline failed"
fi
[[ -x $GATEWAY_APP && -f $GATEWAY_JIT_DLL && -f $BASELINE_DLL ]] || die "missing Release builds (run without --no-build)"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-restart.XXXXXX")
DATA=$WORK/data
PIN=()
[[ -n $SERVER_CPUS ]] && PIN=(taskset -c "$SERVER_CPUS")

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_gateway <data dir> [app]: starts the gateway (default: the published executable; a .dll runs under dotnet) in
# the background (PID set), in its own folder as the Docker image does (WORKDIR /app): the content root, whose
# appsettings.json is watched for changes, is then the application's folder and not the repository (2,800 folders
# to watch here)
start_gateway() {
    local app=${2:-$GATEWAY_APP}
    local cmd=("$app")
    [[ $app == *.dll ]] && cmd=(dotnet "$app")
    (cd "$(dirname "$app")" && exec "${PIN[@]}" "${cmd[@]}" --urls="$URL" --Storage:DataDirectory="$1" --KafkaProtocol:Listen= \
        --Serilog:MinimumLevel:Default=Warning) >>"$WORK/gateway.log" 2>&1 &
    PID=$!
}

# wait_ok <url> [curl args…]: polls until the URL answers 2xx; fails after 120 s or when the server died
wait_ok() {
    local url=$1 i
    shift
    for ((i = 0; i < 24000; i++)); do
        curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
        kill -0 "$PID" 2>/dev/null || die "the server exited while starting (see $WORK/gateway.log)"
        sleep 0.005
    done
    die "no answer from $url within 120 s"
}

# The timed starts run in this shell (not in $(…)) so that PID stays known to stop_server; the time goes to ELAPSED.
# time_gateway <data dir> [app]: ms from start to GET /health/ready = 200
time_gateway() {
    local t0
    t0=$(now_ms)
    start_gateway "$1" "${2:-}"
    wait_ok "$URL/health/ready"
    ELAPSED=$(($(now_ms) - t0))
}

# time_baseline: ms from start to the trivial app's first POST /post = 200
time_baseline() {
    local t0
    t0=$(now_ms)
    (cd "$(dirname "$BASELINE_DLL")" && exec "${PIN[@]}" dotnet "$BASELINE_DLL" --urls="http://127.0.0.1:$BASELINE_PORT") \
        >>"$WORK/baseline.log" 2>&1 &
    PID=$!
    wait_ok "http://127.0.0.1:$BASELINE_PORT/post" -X POST --data-binary x
    ELAPSED=$(($(now_ms) - t0))
}

# ---------------------------------------------------------------------------------------------- the data set
log "filling $DATA_MB MB into $PARTITIONS partitions"
start_gateway "$DATA"
wait_ok "$URL/health/ready"
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"restart\",\"partitions\":$PARTITIONS}" "$URL/v1/topics" || die "could not create the topic"
value=$(head -c 1000 /dev/zero | tr '\0' 'q')
for ((i = 0; i < 100; i++)); do printf '{"value":"%s"}\n' "$value"; done >"$WORK/body.ndjson"
cat >"$WORK/fill.lua" <<EOF
local f = io.open("$WORK/body.ndjson", "rb"); local body = f:read("*a"); f:close()
local n = 0
request = function()
  local p = n % $PARTITIONS; n = n + 1
  return wrk.format("POST", "/v1/topics/restart/partitions/" .. p .. "/records?acks=memory",
    {["Content-Type"] = "application/x-ndjson"}, body)
end
EOF
# The kill -9 row writes a fixed amount per partition (more than the 4 MB between recovery checkpoints), not for a
# time: it stops after KILL9_REQUESTS answers.
KILL9_REQUESTS=$((PARTITIONS * KILL9_MB_PER_PARTITION * 10))
{ cat "$WORK/fill.lua"; printf 'local answered = 0\nresponse = function()\n  answered = answered + 1\n  if answered >= %d then wrk.thread:stop() end\nend\n' "$KILL9_REQUESTS"; } >"$WORK/kill9.lua"
data_mb() { du -sm "$DATA/topics/restart" | cut -f1; }
while (($(data_mb) < DATA_MB)); do
    wrk -t1 -c16 -d1s -s "$WORK/fill.lua" "$URL" >"$WORK/fill.out" 2>&1 || die "wrk failed: $(cat "$WORK/fill.out")"
    grep -q "Non-2xx" "$WORK/fill.out" && die "the fill got errors: $(cat "$WORK/fill.out")"
done
STORED_MB=$(data_mb)
log "stored $STORED_MB MB"
stop_server TERM

# ---------------------------------------------------------------------------------------------- rounds
declare -A RESULTS=()
ELAPSED=0
add() { RESULTS[$1]+="$2 "; }
for ((round = 1; round <= RUNS; round++)); do
    log "round $round/$RUNS"
    time_baseline
    add B1-start "$ELAPSED"
    stop_server TERM
    rm -rf "$WORK/empty"
    time_gateway "$WORK/empty"
    add G-start-empty "$ELAPSED"
    stop_server TERM
    time_gateway "$DATA"
    add G-restart "$ELAPSED"
    stop_server TERM
    time_gateway "$DATA" "$GATEWAY_JIT_DLL"
    add G-restart-jit "$ELAPSED"
    stop_server TERM
    # On a copy, so the data set stays the same for every round's other rows (these writes used to grow it by a
    # few hundred MB over five rounds): writes past the last recovery checkpoints, as a crash finds them, then kill -9.
    rm -rf "$WORK/kill9"
    cp -a "$DATA" "$WORK/kill9"
    start_gateway "$WORK/kill9"
    wait_ok "$URL/health/ready"
    wrk -t1 -c16 -d60s -s "$WORK/kill9.lua" "$URL" >"$WORK/fill.out" 2>&1 || true
    grep -q "Non-2xx" "$WORK/fill.out" && die "the writes before kill -9 got errors: $(cat "$WORK/fill.out")"
    stop_server KILL
    time_gateway "$WORK/kill9"
    add G-restart-kill9 "$ELAPSED"
    stop_server TERM
done
rm -rf "$WORK/kill9"

stats() {   # min median max of the numbers given
    printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2); print a[1], m, a[NR] }'
}
printf '\nRestart: time from process start to ready (ms), %d round(s), data %d MB in %d partitions, cores %s\n\n' \
    "$RUNS" "$STORED_MB" "$PARTITIONS" "${SERVER_CPUS:-all}"
fmt='| %-16s | %-58s | %7s | %7s | %7s | %-7s |\n'
printf "$fmt" id scenario median min max target
printf "$fmt" --- --- ---: ---: ---: ---
for id in B1-start G-start-empty G-restart G-restart-kill9 G-restart-jit; do
    # shellcheck disable=SC2086
    read -r min median max <<<"$(stats ${RESULTS[$id]})"
    case $id in
        B1-start) what="trivial Kestrel app: start to first POST /post 200"; target="-" ;;
        G-start-empty) what="gateway, empty data directory: start to /health/ready 200"; target="-" ;;
        G-restart) what="gateway, ${STORED_MB} MB in $PARTITIONS partitions, after a graceful stop"; target="<= 1000" ;;
        G-restart-kill9) what="same after kill -9 ($KILL9_MB_PER_PARTITION MB per partition written past the last checkpoints)"; target="<= 1000" ;;
        G-restart-jit) what="G-restart with the plain Release build (JIT, shared framework)"; target="-" ;;
    esac
    printf "$fmt" "$id" "$what" "$median" "$min" "$max" "$target"
done
echo
echo "Every round: B1-start, G-start-empty, G-restart, G-restart-jit, G-restart-kill9 (runs: ${RESULTS[G-restart]}/ ${RESULTS[G-restart-kill9]})."
echo "The gateway rows but G-restart-jit run the self-contained composite ReadyToRun publish (bench/publish-r2r.sh), as docker/Dockerfile ships it."

#!/usr/bin/env bash
# Gateway throughput benchmark: the gateway's produce paths against a trivial Kestrel app (B1/B2) and the
# disk's fsync rate (B3), measured in the same run, interleaved, pinned. See bench/README.md for the method.
#
#   bench/run.sh [--quick] [--runs N] [--duration S] [--warmup S] [--connections N]
#                [--no-build] [--skip-fio] [--keep]
#
# Environment overrides: RUNS, DURATION, WARMUP, CONNECTIONS, BASELINE_PORT, GATEWAY_PORT, INLINE_BASELINE_PORT, BENCH_TMP,
# SERVER_CPU, LOAD_CPU, MAX_DATA_MB, MIN_FREE_MB, FIO_SECONDS, STALL_WAIT.
set -Eeuo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Every .NET process here runs pinned to one CPU, and there the runtime waits ten times longer (1 s instead of
# 100 ms of no new methods) before it starts promoting hot methods to optimized code; under load something new is
# always compiled, so the gateway ran its first minute on unoptimized code (bench/README.md, "Warm-up on one CPU").
# This restores the multi-core delay for the baselines and the gateway alike; the Docker image sets it too.
export DOTNET_TC_DelaySingleProcMultiplier=${DOTNET_TC_DelaySingleProcMultiplier:-1}

# ---------------------------------------------------------------------------------------------- settings
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}          # seconds per measured run
WARMUP=${WARMUP:-15}              # seconds of warm-up per scenario, once, before the measured runs
CONNECTIONS=${CONNECTIONS:-64}
BASELINE_PORT=${BASELINE_PORT:-18181}
GATEWAY_PORT=${GATEWAY_PORT:-18182}
INLINE_BASELINE_PORT=${INLINE_BASELINE_PORT:-18185}  # 18183-18184: bench/restart.sh
SERVER_CPU=${SERVER_CPU:-1}       # the servers run here...
LOAD_CPU=${LOAD_CPU:-0}           # ...and wrk (and fio) here
MAX_DATA_MB=${MAX_DATA_MB:-4096}  # the bench topic is deleted and re-created when its data grows past this
MIN_FREE_MB=${MIN_FREE_MB:-2048}  # stop rather than fill the disk
FIO_SECONDS=${FIO_SECONDS:-5}
SETTLE=1                          # seconds of quiet between two runs (lets background commits finish)
DO_BUILD=1
DO_FIO=1
RESTART_QUICK=0                   # bench/restart.sh runs at the end: --quick there too (256 MB, one round)
KEEP=0
PROBLEMS=0                        # set when something looks wrong: the temp dir (logs, wrk outputs) is then kept
STALL_WAIT=${STALL_WAIT:-120}     # seconds to wait for an unresponsive gateway before the next run

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --quick) RUNS=1; WARMUP=3; DURATION=5; FIO_SECONDS=5; RESTART_QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --no-build) DO_BUILD=0 ;;
        --skip-fio) DO_FIO=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for n in RUNS DURATION WARMUP CONNECTIONS BASELINE_PORT GATEWAY_PORT INLINE_BASELINE_PORT FIO_SECONDS STALL_WAIT MAX_DATA_MB MIN_FREE_MB; do
    [[ ${!n} =~ ^[0-9]+$ ]] || { echo "$n must be a whole number (got '${!n}')" >&2; exit 2; }
done
((RUNS >= 1 && RUNS <= 100)) || { echo "RUNS must be 1..100" >&2; exit 2; }
((DURATION >= 1 && DURATION <= 600 && WARMUP <= 600)) || { echo "DURATION 1..600 s, WARMUP 0..600 s" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GATEWAY_PROJECT=$REPO/src/Gateway.Server/Gateway.Server.csproj
BASELINE_PROJECT=$REPO/bench/Baseline/Baseline.csproj
GATEWAY_DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
BASELINE_DLL=$REPO/bench/Baseline/bin/Release/net10.0/Baseline.dll
LOG_BASELINE_PROJECT=$REPO/bench/LogBaseline/LogBaseline.csproj
LOG_BASELINE_DLL=$REPO/bench/LogBaseline/bin/Release/net10.0/LogBaseline.dll
LOAD_PROJECT=$REPO/bench/SseLoad/SseLoad.csproj          # the .NET load generator: its http mode is open-loop
LOAD_DLL=$REPO/bench/SseLoad/bin/Release/net10.0/SseLoad.dll
BASELINE_URL=http://127.0.0.1:$BASELINE_PORT
INLINE_BASELINE_URL=http://127.0.0.1:$INLINE_BASELINE_PORT
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT


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
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP || PROBLEMS)); then
            log "kept $WORK (logs, wrk outputs, Lua scripts; gateway data removed)"
            rm -rf "$WORK/data" "$WORK/fio"
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

# ---------------------------------------------------------------------------------------------- tools
ensure_tool wrk wrk
ensure_tool taskset util-linux
ensure_tool curl curl
((DO_FIO)) && ensure_tool fio fio
ensure_tool jq jq
command -v dotnet >/dev/null 2>&1 || die "dotnet is not on PATH"
(($(nproc) > SERVER_CPU && $(nproc) > LOAD_CPU)) || die "needs CPUs $SERVER_CPU and $LOAD_CPU (have $(nproc))"

port_busy "$BASELINE_PORT" && die "port $BASELINE_PORT is in use (set BASELINE_PORT)"
port_busy "$GATEWAY_PORT" && die "port $GATEWAY_PORT is in use (set GATEWAY_PORT)"
port_busy "$INLINE_BASELINE_PORT" && die "port $INLINE_BASELINE_PORT is in use (set INLINE_BASELINE_PORT)"

# ---------------------------------------------------------------------------------------------- build
if ((DO_BUILD)); then
    log "building Gateway.Server and Baseline (Release)"
    dotnet build -c Release -nologo -v q "$GATEWAY_PROJECT" >/dev/null || die "build of Gateway.Server failed (run: dotnet build -c Release $GATEWAY_PROJECT)"
    dotnet build -c Release -nologo -v q "$BASELINE_PROJECT" >/dev/null || die "build of Baseline failed (run: dotnet build -c Release $BASELINE_PROJECT)"
    dotnet build -c Release -nologo -v q "$LOG_BASELINE_PROJECT" >/dev/null || die "build of LogBaseline failed (run: dotnet build -c Release $LOG_BASELINE_PROJECT)"
    dotnet build -c Release -nologo -v q "$LOAD_PROJECT" >/dev/null || die "build of SseLoad failed (run: dotnet build -c Release $LOAD_PROJECT)"
    dotnet build -c Release -nologo -v q "$REPO/bench/SseBaseline/SseBaseline.csproj" >/dev/null || die "build of SseBaseline failed"
    "$REPO/bench/publish-r2r.sh" >/dev/null || die "publish of Gateway.Server with ReadyToRun failed (run: bench/publish-r2r.sh)"
fi
[[ -f $GATEWAY_DLL ]] || die "missing $GATEWAY_DLL"
[[ -f $BASELINE_DLL ]] || die "missing $BASELINE_DLL"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/gateway-bench.XXXXXX")
mkdir -p "$WORK/data" "$WORK/lua" "$WORK/wrk" "$WORK/fio"
RESULTS=$WORK/results.tsv   # scenario  round  req/s  non-2xx  socket-errors
: >"$RESULTS"

# ---------------------------------------------------------------------------------------------- bodies + Lua
# Printable, JSON-safe characters (base64 alphabet), so the same bytes serve raw, JSON and NDJSON bodies.
chars() { local s; s=$(head -c "$1" /dev/urandom | base64 -w0); printf '%s' "${s:0:$1}"; }

chars 1024 >"$WORK/body-1k.bin"
chars 102400 >"$WORK/body-100k.bin"
{
    printf '{"records":['
    for ((i = 0; i < 100; i++)); do
        ((i)) && printf ','
        printf '{"value":"%s"}' "$(chars 1000)"
    done
    printf ']}'
} >"$WORK/body-100-json.bin"
{
    for ((i = 0; i < 100; i++)); do
        printf '{"value":"%s"}\n' "$(chars 1000)"
    done
} >"$WORK/body-100-ndjson.bin"

# ---------------------------------------------------------------------------------------------- scenarios
# id | target | path | body file (- for a GET) | content type | bytes (the request body; for a GET the response) |
#   records per request (0: a baseline) | the baseline it is compared with (-: none) | label
SCENARIOS=(
    "B1-1k|baseline|/post|$WORK/body-1k.bin|application/octet-stream|-|0|-|baseline POST 1 KB|-"
    "B1i-1k|baseline-inline|/post|$WORK/body-1k.bin|application/octet-stream|-|0|-|B1 1 KB, completions inline|-"
    "G-1k-mem|gateway|/v1/topics/bench/records?acks=memory|$WORK/body-1k.bin|application/octet-stream|-|1|B1-1k|gw 1 rec x 1 KB, acks=memory|>=0.6"
    "B6-1k|baseline|/post-durable|$WORK/body-1k.bin|application/octet-stream|-|0|-|baseline durable POST 1 KB (B6)|-"
    "G-1k-disk|gateway|/v1/topics/bench/records?acks=disk|$WORK/body-1k.bin|application/octet-stream|-|1|B1-1k|gw 1 rec x 1 KB, acks=disk|-"
    "B1-100k|baseline|/post|$WORK/body-100k.bin|application/octet-stream|-|0|-|baseline POST 100 KB|-"
    "B1i-100k|baseline-inline|/post|$WORK/body-100k.bin|application/octet-stream|-|0|-|B1 100 KB, completions inline|-"
    "G-100-json|gateway|/v1/topics/bench/records?acks=disk|$WORK/body-100-json.bin|application/json|-|100|B1-100k|gw 100 x 1 KB JSON, acks=disk|>=0.4"
    "G-100-ndjson|gateway|/v1/topics/bench/records?acks=disk|$WORK/body-100-ndjson.bin|application/x-ndjson|-|100|B1-100k|gw 100 x 1 KB NDJSON, acks=disk|>=0.4"
    "G-commit|gateway|/v1/groups/bench-g/members/bench-member/offsets|$WORK/body-commit.json|application/json|-|1|B6-1k|gw group offset commit (durable)|>=0.5"
    "B2-1m|baseline|/blob|-|-|1048576|0|-|baseline GET 1 MiB (B2)|-"
    "G-fetch-1m|gateway|/v1/topics/bench-fetch/partitions/0/records?offset=FETCH_FROM&maxBytes=1048576&limit=10000|-|-|measured|1000|B2-1m|gw fetch ~1 MB from the tail|>=0.7"
)
# A group member whose offset commits the G-commit scenario repeats; its topic is never re-created, so its
# generation (1, in a fresh data directory) stays valid for the whole run.
printf '{"generation":1,"offsets":[{"topic":"bench-groups","partition":0,"offset":0}]}' >"$WORK/body-commit.json"
field() { local IFS='|'; local -a f; read -ra f <<<"$1"; printf '%s' "${f[$2]}"; }
scenario_of() { local s; for s in "${SCENARIOS[@]}"; do if [[ $(field "$s" 0) == "$1" ]]; then printf '%s' "$s"; fi; done; }
url_of() {
    local path
    path=$(field "$1" 2)
    path=${path//FETCH_FROM/${FETCH_FROM:-0}}
    case $(field "$1" 1) in
        gateway) printf '%s' "$GATEWAY_URL$path" ;;
        baseline-inline) printf '%s' "$INLINE_BASELINE_URL$path" ;;
        *) printf '%s' "$BASELINE_URL$path" ;;
    esac
}
bytes_of() {
    if [[ $(field "$1" 5) == measured ]]; then cat "$WORK/bytes-$(field "$1" 0)"
    elif [[ $(field "$1" 3) == - ]]; then field "$1" 5
    else stat -c %s "$(field "$1" 3)"; fi
}

# A wrk script per POST scenario: method, body (read once from the file) and content type.
for s in "${SCENARIOS[@]}"; do
    [[ $(field "$s" 3) == - ]] && continue
    cat >"$WORK/lua/$(field "$s" 0).lua" <<EOF
local f = assert(io.open("$(field "$s" 3)", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "$(field "$s" 4)"
EOF
done

# ---------------------------------------------------------------------------------------------- B3: fio
FSYNC_IOPS=""
if ((DO_FIO)); then
    log "B3: fio 4 KB write + fdatasync for ${FIO_SECONDS}s in $WORK/fio ($(df -T "$WORK" | awk 'NR==2{print $2}'))"
    if taskset -c "$LOAD_CPU" fio --name=fsync --directory="$WORK/fio" --rw=write --bs=4k --size=64m \
        --ioengine=sync --fdatasync=1 --time_based --runtime="$FIO_SECONDS" --output-format=json \
        >"$WORK/fio.json" 2>"$WORK/fio.err"; then
        FSYNC_IOPS=$(jq -r '.jobs[0].write.iops | floor' "$WORK/fio.json")
        log "B3: $FSYNC_IOPS fdatasync/s"
    else
        log "fio failed: $(head -c 500 "$WORK/fio.err")"
    fi
    rm -rf "$WORK/fio"
fi

# ---------------------------------------------------------------------------------------------- B4: FasterLog
# The storage engine alone on the server's core, 64 writers of 1 KB entries: with a commit per wait (disk) and
# without (memory). The gateway's produce rows divided by these say what HTTP and the gateway's own work cost.
B4_DISK="" B4_MEM=""
if [[ -f $LOG_BASELINE_DLL ]]; then
    for mode in memory disk; do
        rm -rf "$WORK/b4"
        out=$(taskset -c "$SERVER_CPU" dotnet "$LOG_BASELINE_DLL" "$WORK/b4" "$mode" "$DURATION" 64 1024 2>&1 || true)
        log "B4 ($mode): $out"
        rate=$(awk '{print $1; exit}' <<<"$out")
        [[ $rate =~ ^[0-9]+$ ]] || rate=""
        if [[ $mode == disk ]]; then B4_DISK=$rate; else B4_MEM=$rate; fi
    done
    rm -rf "$WORK/b4"
fi

# ---------------------------------------------------------------------------------------------- servers
export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
BASELINE_PID=""
GATEWAY_PID=""

log "starting baseline on $BASELINE_URL and gateway on $GATEWAY_URL (CPU $SERVER_CPU); wrk on CPU $LOAD_CPU"
start_server "$(dirname "$BASELINE_DLL")" "$BASELINE_DLL" "$WORK/baseline.log" --urls="$BASELINE_URL" --DurableFile="$WORK/baseline-durable.log"
BASELINE_PID=$STARTED_PID
# The same baseline with the one runtime setting the gateway chooses for itself (GatewayHosting's
# PreferInlineSocketCompletions): the rows against it show how much of a ratio is that setting, not the gateway's code.
DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 start_server "$(dirname "$BASELINE_DLL")" "$BASELINE_DLL" \
    "$WORK/baseline-inline.log" --urls="$INLINE_BASELINE_URL"
INLINE_BASELINE_PID=$STARTED_PID
start_server "$(dirname "$GATEWAY_DLL")" "$GATEWAY_DLL" "$WORK/gateway.log" --urls="$GATEWAY_URL" \
    --Storage:DataDirectory="$WORK/data" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning
GATEWAY_PID=$STARTED_PID
wait_ready "$BASELINE_URL/health" "$BASELINE_PID" "$WORK/baseline.log"
wait_ready "$INLINE_BASELINE_URL/health" "$INLINE_BASELINE_PID" "$WORK/baseline-inline.log"
wait_ready "$GATEWAY_URL/health/ready" "$GATEWAY_PID" "$WORK/gateway.log"

create_topic() {
    local code
    code=$(curl -s -o "$WORK/topic.out" -w '%{http_code}' --max-time 10 -X POST "$GATEWAY_URL/v1/topics" \
        -H 'Content-Type: application/json' -d '{"name":"bench","partitions":1}')
    [[ $code == 2* ]] || die "creating topic bench: HTTP $code $(head -c 500 "$WORK/topic.out")"
}
create_topic
code=$(curl -s -o "$WORK/topic.out" -w '%{http_code}' --max-time 10 -X POST "$GATEWAY_URL/v1/topics" \
    -H 'Content-Type: application/json' -d '{"name":"bench-groups","partitions":1}')
[[ $code == 2* ]] || die "creating topic bench-groups: HTTP $code $(head -c 500 "$WORK/topic.out")"
code=$(curl -s -o "$WORK/join.out" -w '%{http_code}' --max-time 10 -X POST "$GATEWAY_URL/v1/groups/bench-g/members" \
    -H 'Content-Type: application/json' -d '{"topics":["bench-groups"],"memberId":"bench-member","sessionTimeoutMs":300000}')
[[ $code == 2* ]] || die "joining group bench-g: HTTP $code $(head -c 500 "$WORK/join.out")"
grep -q '"generation":1' "$WORK/join.out" || die "expected generation 1 for the bench member: $(head -c 500 "$WORK/join.out")"

# Keeps the data directory bounded (retention is not enforced by the server yet) and the disk from filling. Sets
# RECREATED=1 when it re-created the topic: the run after it then warms the new topic up unmeasured first.
RECREATED=0
check_disk() {
    local used free code
    used=$(du -sm "$WORK/data" | awk '{print $1}')
    if ((used > MAX_DATA_MB)); then
        log "data is ${used} MB > ${MAX_DATA_MB} MB: re-creating topic bench"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X DELETE "$GATEWAY_URL/v1/topics/bench" || true)
        [[ $code == 2* ]] || die "deleting topic bench: HTTP $code"
        create_topic
        RECREATED=1
    fi
    free=$(df -Pm "$WORK" | awk 'NR==2{print $4}')
    ((free >= MIN_FREE_MB)) || die "only ${free} MB free under $WORK (MIN_FREE_MB=$MIN_FREE_MB)"
}

# The fetch scenario reads the last ~1 MB of a partition of 1 KB JSON records, written once here.
code=$(curl -s -o "$WORK/topic.out" -w '%{http_code}' --max-time 10 -X POST "$GATEWAY_URL/v1/topics" \
    -H 'Content-Type: application/json' -d '{"name":"bench-fetch","partitions":1}')
[[ $code == 2* ]] || die "creating topic bench-fetch: HTTP $code $(head -c 500 "$WORK/topic.out")"
for _ in $(seq 1 12); do
    code=$(curl -s -o "$WORK/fill.out" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
        --data-binary "@$WORK/body-100-json.bin" "$GATEWAY_URL/v1/topics/bench-fetch/partitions/0/records")
    [[ $code == 2* ]] || die "filling bench-fetch: HTTP $code $(head -c 500 "$WORK/fill.out")"
done
FETCH_END=$(curl -s --max-time 10 "$GATEWAY_URL/v1/topics/bench-fetch/partitions/0/offsets" | jq -r .endOffset)
FETCH_FROM=$((FETCH_END - 1000))
curl -s -o /dev/null -w '%{size_download}' --max-time 10 \
    "$GATEWAY_URL/v1/topics/bench-fetch/partitions/0/records?offset=$FETCH_FROM&maxBytes=1048576&limit=10000" >"$WORK/bytes-G-fetch-1m"
log "fetch scenario: offsets $FETCH_FROM.. of $FETCH_END, $(cat "$WORK/bytes-G-fetch-1m") bytes per answer"

# One request per scenario with curl: a wrong body shows up here as a clear error, not as a table of 4xx.
for s in "${SCENARIOS[@]}"; do
    url=$(url_of "$s") body=$(field "$s" 3)
    if [[ $body == - ]]; then
        code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 "$url" || true)
    else
        code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 -X POST -H "Content-Type: $(field "$s" 4)" \
            --data-binary "@$body" "$url" || true)
    fi
    [[ $code == 2* ]] || die "probe $(field "$s" 0): $url -> HTTP $code: $(head -c 500 "$WORK/probe.out")"
done
log "probes OK"

# ---------------------------------------------------------------------------------------------- wrk
# run_wrk <scenario> <seconds> <output file>
run_wrk() {
    local s=$1 secs=$2 out=$3
    local -a args=(-t1 "-c$CONNECTIONS" "-d${secs}s" --timeout 10s)
    if [[ $(field "$s" 3) != - ]]; then args+=(-s "$WORK/lua/$(field "$s" 0).lua"); fi
    if [[ $(field "$s" 1) == gateway ]]; then check_disk; fi
    kill -0 "$BASELINE_PID" 2>/dev/null || die "baseline server died: $(tail -n 20 "$WORK/baseline.log")"
    kill -0 "$INLINE_BASELINE_PID" 2>/dev/null || die "inline baseline died: $(tail -n 20 "$WORK/baseline-inline.log")"
    kill -0 "$GATEWAY_PID" 2>/dev/null || die "gateway died: $(tail -n 20 "$WORK/gateway.log")"
    if ((RECREATED)); then
        # A new topic's first seconds pay for its fresh log buffers and the deleted one's files, and the re-creation
        # fell before the same scenario in every round (NDJSON, once JSON had passed the limit).
        RECREATED=0
        taskset -c "$LOAD_CPU" wrk "${args[@]/#-d*/-d3s}" "$(url_of "$s")" >/dev/null 2>&1 || true
        sleep "$SETTLE"
    fi
    taskset -c "$LOAD_CPU" wrk "${args[@]}" "$(url_of "$s")" >"$out" 2>&1 || log "wrk exited non-zero for $(field "$s" 0): $(tail -n 3 "$out")"
    sleep "$SETTLE"
    if [[ $(field "$s" 1) == gateway ]]; then wait_responsive "$(field "$s" 0)"; fi
}
# After a gateway run the gateway must answer /health/ready within 2 s; if it does not, note the stall and wait
# (at most STALL_WAIT s) so that it does not silently eat the next scenario.
STALLS=$WORK/stalls.txt
: >"$STALLS"
wait_responsive() {
    local start=$SECONDS
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$GATEWAY_URL/health/ready" || true) == 200 ]] && return 0
    log "!! gateway does not answer /health/ready after $1; waiting up to ${STALL_WAIT}s"
    PROBLEMS=1
    while ((SECONDS - start < STALL_WAIT)); do
        kill -0 "$GATEWAY_PID" 2>/dev/null || die "gateway died: $(tail -n 20 "$WORK/gateway.log")"
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$GATEWAY_URL/health/ready" || true) == 200 ]]; then
            echo "after $1: gateway unresponsive for ~$((SECONDS - start + 2))s" >>"$STALLS"
            log "gateway answers again after ~$((SECONDS - start + 2))s"
            return 0
        fi
        sleep 1
    done
    echo "after $1: gateway unresponsive for more than ${STALL_WAIT}s" >>"$STALLS"
    die "gateway unresponsive for more than ${STALL_WAIT}s after $1 (log: $WORK/gateway.log; process $GATEWAY_PID)"
}
# parse_wrk <file>: "req/s non2xx socket_errors" (a run with no responses at all is 0 req/s)
parse_wrk() {
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
        END { printf "%s %d %d\n", (rps == "" ? "0" : rps), non2xx, errs }' "$1"
}

n=${#SCENARIOS[@]}
total=$(((WARMUP > 0 ? n * WARMUP : 0) + RUNS * n * (DURATION + SETTLE)))
log "${#SCENARIOS[@]} scenarios; warm-up ${WARMUP}s each, then $RUNS round(s) of ${DURATION}s runs, c=$CONNECTIONS: about $((total / 60)) min $((total % 60)) s"

if ((WARMUP > 0)); then
    for s in "${SCENARIOS[@]}"; do
        log "warm-up $(field "$s" 0) (${WARMUP}s)"
        run_wrk "$s" "$WARMUP" "$WORK/wrk/warmup-$(field "$s" 0).txt"
    done
fi

# Interleaved: every round runs each baseline next to the gateway scenarios compared with it (A B B A B B ...).
for ((r = 1; r <= RUNS; r++)); do
    for s in "${SCENARIOS[@]}"; do
        id=$(field "$s" 0)
        out=$WORK/wrk/run$r-$id.txt
        run_wrk "$s" "$DURATION" "$out"
        read -r rps non2xx errs < <(parse_wrk "$out")
        printf '%s\t%d\t%s\t%d\t%d\n' "$id" "$r" "$rps" "$non2xx" "$errs" >>"$RESULTS"
        note=""
        if ((non2xx + errs > 0)); then note=" (!! $non2xx non-2xx, $errs socket errors)"; fi
        if [[ $rps == 0 || $rps == 0.00 ]]; then note+=" (!! no responses)"; fi
        log "round $r/$RUNS $id: $rps req/s$note"
    done
done

# ---------------------------------------------------------------------------------------------- table
# stats <id>: "median min max" of req/s over the rounds
stats() {
    awk -F'\t' -v id="$1" '$1 == id { print $3 }' "$RESULTS" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "0 0 0"; exit }
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f %.0f %.0f\n", med, v[1], v[NR]
        }'
}
errors() { awk -F'\t' -v id="$1" '$1 == id { n += $4; e += $5; if ($3 + 0 == 0) z++ } END { printf "%d %d %d\n", n, e, z }' "$RESULTS"; }
# paired <gateway id> <baseline id>: min and max over rounds of gateway/baseline in the same round
paired() {   # paired <gateway id> <baseline id> [factor: gateway bytes / baseline bytes]
    awk -F'\t' -v g="$1" -v b="$2" -v f="${3:-1}" '
        $1 == g { gw[$2] = $3 } $1 == b { bl[$2] = $3 }
        END {
            for (r in gw) if (bl[r] > 0) { x = f * gw[r] / bl[r]; if (min == "" || x < min) min = x; if (max == "" || x > max) max = x }
            if (min == "") print "-"; else printf "%.3f..%.3f\n", min, max
        }' "$RESULTS"
}
median_of() { stats "$1" | awk '{print $1}'; }

echo
echo "Gateway benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
echo "wrk -t1 -c$CONNECTIONS, ${DURATION}s x $RUNS run(s) after ${WARMUP}s warm-up; servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; $(nproc) CPUs; data on $(df -T "$WORK" | awk 'NR==2{print $2}')"
echo
fmt='%-13s %-32s %9s %9s %9s %9s %10s %8s %10s %7s %7s %13s %s\n'
printf "$fmt" id scenario "body B" "req/s" min max "rec/s" "MB/s" "base req/s" ratio target "paired" errors
printf "$fmt" ------------- -------------------------------- --------- --------- --------- --------- ---------- -------- ---------- ------- ------- ------------- ------
ANY_ERRORS=0
for s in "${SCENARIOS[@]}"; do
    id=$(field "$s" 0) bytes=$(bytes_of "$s") recs=$(field "$s" 6) base=$(field "$s" 7) label=$(field "$s" 8) target=$(field "$s" 9)
    read -r med min max < <(stats "$id")
    read -r non2xx errs zero < <(errors "$id")
    mbs=$(awk -v r="$med" -v b="$bytes" 'BEGIN { printf "%.1f", r * b / 1e6 }')
    recps=-
    ((recs > 0)) && recps=$((med * recs))
    basecol=- ratio=- pair=-
    if [[ $base != - ]]; then
        basecol=$(median_of "$base")
        # Bulk scenarios compare bytes moved (MB/s), the others requests (req/s).
        gb=1 bb=1
        if [[ $base == B1-100k || $base == B2-1m ]]; then gb=$bytes bb=$(bytes_of "$(scenario_of "$base")"); fi
        ratio=$(awk -v g="$med" -v b="$basecol" -v gb="$gb" -v bb="$bb" 'BEGIN { if (b > 0) printf "%.3f", (g * gb) / (b * bb); else print "-" }')
        pair=$(paired "$id" "$base" "$(awk -v a="$gb" -v b="$bb" 'BEGIN { printf "%.6f", a / b }')")
    fi
    flag=-
    if ((non2xx + errs + zero > 0)); then
        flag="!!"
        ((non2xx)) && flag+=" ${non2xx} non-2xx"
        ((errs)) && flag+=" ${errs} sock"
        ((zero)) && flag+=" ${zero} run(s) with 0 responses"
        ANY_ERRORS=1
        PROBLEMS=1
    fi
    printf "$fmt" "$id" "$label" "$bytes" "$med" "$min" "$max" "$recps" "$mbs" "$basecol" "$ratio" "$target" "$pair" "$flag"
done
if [[ -n $FSYNC_IOPS ]]; then
    printf "$fmt" B3 "fio 4 KB write+fdatasync (/s)" 4096 "$FSYNC_IOPS" - - - "$(awk -v r="$FSYNC_IOPS" 'BEGIN { printf "%.1f", r * 4096 / 1e6 }')" - - - - -
    echo
    for id in G-1k-disk G-100-json G-100-ndjson; do
        med=$(median_of "$id")
        awk -v id="$id" -v r="$med" -v f="$FSYNC_IOPS" \
            'BEGIN { if (f > 0) printf "%-13s acks=disk requests/s / fsync/s = %.2f%s\n", id, r / f, (id == "G-1k-disk" ? "   (target >= 8)" : "") }'
    done
    # A durable produce does all that a memory one does and waits for the disk besides, so acks=memory over fsync/s is
    # the most the acks=disk row above can reach on this run's disk.
    awk -v m="$(median_of G-1k-mem)" -v f="$FSYNC_IOPS" \
        'BEGIN { if (f > 0) printf "G-1k-mem      acks=memory requests/s / fsync/s = %.2f   (ceiling of the acks=disk row: %s)\n", m / f, (m / f >= 8 ? "the target of 8 is within it" : "below 8, the target asks acks=disk to beat acks=memory") }'
fi
if [[ -n $B4_MEM && -n $B4_DISK ]]; then
    printf "$fmt" B4-mem "FasterLog 1 KB appends/s, memory" 1024 "$B4_MEM" - - - - - - - - -
    printf "$fmt" B4-disk "FasterLog 1 KB appends/s, disk" 1024 "$B4_DISK" - - - - - - - - -
    awk -v g="$(median_of G-1k-mem)" -v b="$B4_MEM" 'BEGIN { if (b > 0) printf "G-1k-mem      gateway / FasterLog alone (memory) = %.2f\n", g / b }'
    awk -v g="$(median_of G-1k-disk)" -v b="$B4_DISK" 'BEGIN { if (b > 0) printf "G-1k-disk     gateway / FasterLog alone (disk)   = %.2f\n", g / b }'
fi
awk -v d="$(median_of G-1k-disk)" -v m="$(median_of G-1k-mem)" \
    'BEGIN { if (m > 0) printf "G-1k-disk     acks=disk / acks=memory requests/s = %.2f   (target >= 0.5)\n", d / m }' 
# B6, the trivial app made durable (group commit, one write-through write per round): what any HTTP server doing
# durable 1 KB requests reaches here, against the same two yardsticks as the acks=disk row, and the gateway against it.
awk -v b6="$(median_of B6-1k)" -v b1="$(median_of B1-1k)" -v g="$(median_of G-1k-disk)" -v f="${FSYNC_IOPS:-0}" 'BEGIN {
    if (f > 0) printf "B6-1k         durable baseline requests/s / fsync/s = %.2f   (the acks=disk target of 8, for a trivial app)\n", b6 / f
    if (b1 > 0) printf "B6-1k         durable baseline / B1 requests/s = %.2f   (the acks=disk / acks=memory target of 0.5, for a trivial app)\n", b6 / b1
    if (b6 > 0) printf "G-1k-disk     acks=disk / durable baseline (B6) requests/s = %.2f\n", g / b6 }'
echo
echo "Against B1i, the baseline with socket completions inline as the gateway runs them (no target; the targets are against B1):"
for pair in G-1k-mem:B1i-1k G-1k-disk:B1i-1k G-commit:B1i-1k G-100-json:B1i-100k G-100-ndjson:B1i-100k; do
    g=${pair%%:*} b=${pair#*:}
    gb=1 bb=1
    if [[ $b == B1i-100k ]]; then gb=$(bytes_of "$(scenario_of "$g")") bb=$(bytes_of "$(scenario_of "$b")"); fi
    awk -v g="$g" -v b="$b" -v gm="$(median_of "$g")" -v bm="$(median_of "$b")" -v gb="$gb" -v bb="$bb" \
        'BEGIN { if (bm > 0) printf "%-13s / %-9s = %.3f\n", g, b, (gm * gb) / (bm * bb) }'
done
echo
echo "ratio = median gateway req/s / median baseline req/s; paired = min..max of gateway/baseline within the same round."
echo "MB/s = request body bytes x req/s / 1e6 (response bytes for B2). rec/s = req/s x records per request."

# ---------------------------------------------------------------------------------------------- open-loop latency
# Closed-loop latency hides queueing; here requests are due at 50 % and 80 % of the scenario's median peak, whatever
# the server does, and latency counts from when each was due. B1 runs at the same rates as the reference.
open_loop() {   # open_loop <base url> <path> <rate>: prints the generator's result line
    taskset -c "$LOAD_CPU" dotnet "$LOAD_DLL" http --url "$1" --path "$2" --body-file "$WORK/body-1k.bin" \
        --content-type application/octet-stream --rate "$3" --seconds "$DURATION" --warmup 2 \
        --connections "$CONNECTIONS" 2>>"$WORK/open-loop.err" || true
    sleep "$SETTLE"
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
if [[ -f $LOAD_DLL ]]; then
    echo
    echo "Open-loop latency (ms from when each request was due; bench/SseLoad http, $CONNECTIONS connections, ${DURATION}s after 2 s warm-up)"
    fmt2='%-10s %4s %7s %8s | %7s %7s %7s %8s | %7s %7s %7s | %s\n'
    printf "$fmt2" id load rate achieved p50 p99 p99.9 max "B1 p50" "B1 p99" "B1 p99.9" "note"
    for id in G-1k-mem G-1k-disk; do
        path=$(field "$(scenario_of "$id")" 2)
        peak=$(median_of "$id")
        for pct in 50 80; do
            rate=$((peak * pct / 100))
            ((rate > 0)) || continue
            b=$(open_loop "$BASELINE_URL" /post "$rate")
            g=$(open_loop "$GATEWAY_URL" "$path" "$rate")
            note=""
            for line in "$g" "$b"; do
                if [[ -z $line ]]; then note="!! the generator failed (see $WORK/open-loop.err)"; PROBLEMS=1; continue; fi
                awk -v a="$(kv achieved_per_s "$line")" -v r="$rate" 'BEGIN { exit !(a < 0.97 * r) }' && note="!! achieved < 97 % of the rate: the generator (~16 k req/s on one core) or the server fell behind"
                (($(kv errors "$line") + $(kv socket_errors "$line") > 0)) && note="!! errors" && PROBLEMS=1
            done
            printf "$fmt2" "$id" "$pct%" "$rate" "$(kv achieved_per_s "$g")" "$(kv p50_ms "$g")" "$(kv p99_ms "$g")" "$(kv p999_ms "$g")" \
                "$(kv max_ms "$g")" "$(kv p50_ms "$b")" "$(kv p99_ms "$b")" "$(kv p999_ms "$b")" "$note"
        done
    done
fi
GW_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$GATEWAY_PID/status" 2>/dev/null || echo 0)
BL_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$BASELINE_PID/status" 2>/dev/null || echo 0)
echo "peak RSS: gateway $((GW_RSS / 1024)) MB, baseline $((BL_RSS / 1024)) MB; gateway data $(du -sm "$WORK/data" | awk '{print $1}') MB"
if [[ -s $STALLS ]]; then
    echo
    echo "!! gateway stalls (no answer to /health/ready within 2 s after a run):"
    sed 's/^/   /' "$STALLS"
fi
if ((ANY_ERRORS)); then
    echo
    echo "!! some runs had non-2xx responses, socket errors or no responses at all (wrk outputs in $WORK/wrk)"
fi
# The gateway log at Warning: requests cut off when wrk stops (client aborts) are logged as errors too; count them
# apart from everything else.
GWLOG=$WORK/gateway.log
LOG_NOISE='TaskCanceledException|OperationCanceledException|Unexpected end of request content|ConnectionResetException|ConnectionAbortedException'
if grep -qE '^\[[0-9:]+ (WRN|ERR|FTL)\]' "$GWLOG"; then
    echo
    echo "gateway log (Warning and above):"
    awk '
        /^\[[0-9:]+ (WRN|ERR|FTL)\]/ {
            lvl = $2; sub(/\]/, "", lvl)
            if ($0 ~ /Gateway.Server.Requests:/) {
                ms = $(NF - 1) + 0; code = $(NF - 3)
                key = sprintf("%s request log: responded %s", lvl, code)
                count[key]++; if (ms > slow[key]) slow[key] = ms
            } else {
                line = $0; sub(/^\[[^]]*\] /, "", line); count[lvl " " substr(line, 1, 160)]++
            }
            next
        }
        /^[A-Za-z_.]+(Exception|Error)[:]/ { ex = $0; sub(/:.*/, "", ex); msg = $0; sub(/^[^:]*: /, "", msg); count["exception " ex ": " substr(msg, 1, 100)]++ }
        END { for (k in count) printf "   %6d x %s%s\n", count[k], k, (k in slow ? sprintf(" (slowest %.0f ms)", slow[k]) : "") }
    ' "$GWLOG" | sort -k3
    echo "   (OperationCanceled/TaskCanceled and \"Unexpected end of request content\" come from wrk closing its connections"
    echo "    at the end of each run with requests in flight; the server then logs them as 500s nobody receives.)"
    # Any other exception: show the first stack of each kind, and keep the temp dir.
    awk -v noise="$LOG_NOISE" '
        /^\[[0-9:]+ [A-Z]+\]/ { header = $0; showing = 0; next }
        /^[A-Za-z_.]+(Exception|Error)[:]/ {
            showing = 0
            if ($0 ~ noise) next
            kind = $0; sub(/:.*/, "", kind)
            if (kind in seen) next
            seen[kind] = 1; showing = 16
            printf "\n   first %s, logged under: %s\n   %s\n", kind, substr(header, 1, 160), $0
            next
        }
        showing > 0 && /^ +at / { print "   " $0; showing--; next }
        showing > 0 && /^--- End/ { print "   " $0; next }
    ' "$GWLOG"
    if awk -v noise="$LOG_NOISE" '/^[A-Za-z_.]+(Exception|Error)[:]/ && $0 !~ noise { found = 1 } END { exit !found }' "$GWLOG"; then
        PROBLEMS=1
    fi
fi

# Restart to ready (bench/restart.sh): its own servers and data, on its own ports, after the runs above.
RESTART_ARGS=(--no-build --runs "$RUNS")
((RESTART_QUICK)) && RESTART_ARGS+=(--quick)
if ! BENCH_TMP="${BENCH_TMP:-${TMPDIR:-/tmp}}" "$REPO/bench/restart.sh" "${RESTART_ARGS[@]}"; then
    echo "!! bench/restart.sh failed"
    PROBLEMS=1
fi

# The SSE scenarios against B5 (bench/sse.sh), on ports of their own beside the idle servers above.
SSE_ARGS=(--no-build --runs "$RUNS")
((RESTART_QUICK)) && SSE_ARGS+=(--quick)
if ! BASELINE_PORT=$((BASELINE_PORT + 10)) GATEWAY_PORT=$((GATEWAY_PORT + 10)) SERVER_CPU="$SERVER_CPU" LOAD_CPU="$LOAD_CPU" \
    "$REPO/bench/sse.sh" "${SSE_ARGS[@]}"; then
    echo "!! bench/sse.sh failed"
    PROBLEMS=1
fi
exit 0

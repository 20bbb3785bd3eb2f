#!/usr/bin/env bash
# Where the time goes in one scenario: starts the Release gateway pinned to CPU 1, drives the scenario with wrk on
# CPU 0, samples the server's CPU with dotnet-trace (pinned in dotnet-tools.json) and prints the methods with the
# most exclusive and inclusive samples.
#
#   bench/profile.sh produce-1k | produce-1k-mem | produce-100-json | produce-100-ndjson | commit | fetch-1m  [seconds]
set -Eeuo pipefail
SCENARIO=${1:?scenario}
SECONDS_TRACED=${2:-15}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DLL=$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
PORT=${PORT:-18190}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-profile.XXXXXX")
cleanup() { [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK/data"; }
trap cleanup EXIT
cd "$REPO" && dotnet tool restore >/dev/null
[[ -f $DLL ]] || dotnet build -c Release -nologo -v q src/Gateway.Server >/dev/null
(cd "$(dirname "$DLL")" && exec taskset -c 1 dotnet "$DLL" --urls="$URL" --Storage:DataDirectory="$WORK/data" --KafkaProtocol:Listen= --Serilog:MinimumLevel:Default=Warning) >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do curl -sf -o /dev/null "$URL/health/ready" && break; sleep 0.5; done
post() { curl -sf -o /dev/null -X POST -H "Content-Type: $1" --data-binary "$2" "$URL$3"; }
post application/json '{"name":"p","partitions":1}' /v1/topics
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$WORK/1k"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
v = "x" * 1000
open(f"{w}/100.json", "w").write(json.dumps({"records": [{"key": f"k{i}", "value": v} for i in range(100)]}))
open(f"{w}/100.ndjson", "w").write("".join(json.dumps({"key": f"k{i}", "value": v}) + "\n" for i in range(100)))
PY
lua() { printf 'wrk.method = "POST"\nlocal f = io.open("%s", "rb")\nwrk.body = f:read("*a")\nf:close()\nwrk.headers["Content-Type"] = "%s"\n' "$1" "$2" >"$WORK/s.lua"; }
case $SCENARIO in
    produce-1k) lua "$WORK/1k" application/octet-stream; PATH_=/v1/topics/p/records?acks=disk ;;
    produce-1k-mem) lua "$WORK/1k" application/octet-stream; PATH_=/v1/topics/p/records?acks=memory ;;
    produce-100-json) lua "$WORK/100.json" application/json; PATH_=/v1/topics/p/records ;;
    produce-100-ndjson) lua "$WORK/100.ndjson" application/x-ndjson; PATH_=/v1/topics/p/records ;;
    commit)
        curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"topics":["p"],"memberId":"m","sessionTimeoutMs":300000}' "$URL/v1/groups/g/members"
        printf '{"generation":1,"offsets":[{"topic":"p","partition":0,"offset":0}]}' >"$WORK/commit.json"
        lua "$WORK/commit.json" application/json; PATH_=/v1/groups/g/members/m/offsets ;;
    fetch-1m)
        for _ in $(seq 1 12); do post application/json "@$WORK/100.json" /v1/topics/p/records; done
        printf '' >"$WORK/s.lua"; PATH_="/v1/topics/p/partitions/0/records?offset=200&maxBytes=1048576&limit=10000" ;;
    *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
taskset -c 0 wrk -t1 -c64 -d5s -s "$WORK/s.lua" "$URL$PATH_" >/dev/null   # warm-up
taskset -c 0 wrk -t1 -c64 -d"$((SECONDS_TRACED + 4))s" -s "$WORK/s.lua" "$URL$PATH_" >"$WORK/wrk.txt" &
WRK=$!
sleep 2
dotnet trace collect-linux -p "$PID" --profile cpu-sampling --duration "00:00:00:$SECONDS_TRACED" -o "$WORK/trace.nettrace" >/dev/null
wait $WRK
grep -E "Requests/sec" "$WORK/wrk.txt"
dotnet trace report "$WORK/trace.nettrace" topN -n 25 2>/dev/null || true
dotnet trace report "$WORK/trace.nettrace" topN -n 40 --inclusive 2>/dev/null || true
echo "trace: $WORK/trace.nettrace"

#!/usr/bin/env bash
# Chaos run: kill -9 cycles under acks=disk produce and a consumer group, a Jepsen-style check of the whole log, then
# corrupted-segment scenarios (bench/chaos/README.md). Builds the harness (Release) and runs it against a server DLL
# that is already built; the temporary data directory is removed at the end.
#
#   bench/chaos/run.sh [--quick] [--out FILE] [harness options...]
#
#   --quick      about 5 cycles x 3 s, 16 producers (CI); default: 50 cycles x 4 s, 32 producers, up to 50 records
#                per request (about 1-2 million acknowledged records, 5-7 minutes on 2 CPUs)
#   --power-cut  power cuts instead of kills: the data on powerfs (bench/chaos/powerfs), which drops whatever was
#                not synced at each cut; 50 cycles (--quick: 6); needs root, /dev/fuse, fuse3 and python3-fusepy
#   --out FILE   also write the Markdown report to FILE (it is always printed)
#   anything else goes to the harness as it is: --seed N, --producers N, --cycles K, --no-corruption, ...
#
# Environment: GATEWAY_DLL (default src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll), CHAOS_TMP (where the
# temporary data directory goes; default $TMPDIR or /tmp). Exit code: the harness's (0 pass, 1 a safety figure is not 0).
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROJECT=$REPO/bench/chaos/Chaos.csproj
HARNESS=$REPO/bench/chaos/bin/Release/net10.0/Chaos.dll
GATEWAY_DLL=${GATEWAY_DLL:-$REPO/src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

QUICK=0
POWER=0
PASS=()
OUT=""
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --power-cut) POWER=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) PASS+=("$1") ;;
    esac
    shift
done

if ((POWER)); then
    MODE=(--power-cut --powerfs "$REPO/bench/chaos/powerfs/powerfs.py" --cycles 50 --seconds-per-cycle 6 --producers 32 --max-records 50)
    ((QUICK)) && MODE=(--power-cut --powerfs "$REPO/bench/chaos/powerfs/powerfs.py" --cycles 6 --seconds-per-cycle 3 --producers 16 --max-records 20)
else
    MODE=(--cycles 50 --seconds-per-cycle 4 --producers 32 --max-records 50)
    ((QUICK)) && MODE=(--cycles 5 --seconds-per-cycle 3 --producers 16 --max-records 20)
fi

command -v dotnet >/dev/null 2>&1 || { log "dotnet is not on PATH"; exit 2; }
if [[ ! -f $GATEWAY_DLL ]]; then
    log "no server at $GATEWAY_DLL: build it first (dotnet build -c Release src/Gateway.Server) or set GATEWAY_DLL"
    exit 2
fi

log "building the harness (Release)"
dotnet build "$PROJECT" -c Release -nologo -v q >/dev/null || { log "build failed: dotnet build -c Release $PROJECT"; exit 2; }

WORK=$(mktemp -d "${CHAOS_TMP:-${TMPDIR:-/tmp}}/gateway-chaos.XXXXXX")
cleanup() {
    # A power-cut run mounts powerfs inside the work directory: make sure it is gone before removing the tree.
    if grep -q " $WORK/run/powerfs " /proc/mounts 2>/dev/null; then umount -l "$WORK/run/powerfs" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ARGS=(--server-dll "$GATEWAY_DLL" --data "$WORK/run" "${MODE[@]}")
[[ -n $OUT ]] && ARGS+=(--out "$OUT")
log "running: dotnet $HARNESS ${ARGS[*]} ${PASS[*]}"
start=$SECONDS
rc=0
dotnet "$HARNESS" "${ARGS[@]}" "${PASS[@]}" || rc=$?
if ((rc != 0)) && [[ -f $WORK/run/server.log ]]; then
    kept=$(mktemp "${TMPDIR:-/tmp}/gateway-chaos-server.XXXXXX.log")
    cp "$WORK/run/server.log" "$kept"
    log "server output kept in $kept"
fi
log "done in $((SECONDS - start)) s, exit code $rc"
exit "$rc"

# Shared by the benchmark scripts (run.sh, sse.sh, restart.sh, ab.sh, kafka.sh, kafka-backend.sh): logging, tools, ports, server processes, figures.
# Source it after `set -Eeuo pipefail`; start_server needs SERVER_CPU and appends to the PIDS array.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
# A failure: the temp dir is kept (PROBLEMS) and the script exits.
die() { log "ERROR: $*"; PROBLEMS=1; exit 1; }

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
APT_UPDATED=0
ensure_tool() {   # ensure_tool <command> <debian package>
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2"
    if ((!APT_UPDATED)); then
        as_root apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "could not install $2"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() {   # start_server <dir> <dll> <log> <args...>; sets STARTED_PID
    local dir=$1 dll=$2 out=$3
    shift 3
    (cd "$dir" && exec taskset -c "$SERVER_CPU" dotnet "$dll" "$@") >"$out" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

wait_ready() {   # wait_ready <url> <pid> <log>: at most 60 s
    local i
    for ((i = 0; i < 120; i++)); do
        kill -0 "$2" 2>/dev/null || { tail -n 30 "$3" >&2; die "server exited while starting ($1)"; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true) == 200 ]] && return 0
        sleep 0.5
    done
    tail -n 30 "$3" >&2
    die "not ready after 60 s: $1"
}

# Named series of figures (kafka.sh, kafka-backend.sh): add <name> <value>; median <name> ("-" when none); ratio <a> <b>.
declare -A VALUES
add() { VALUES[$1]+="$2 "; }
median() { tr ' ' '\n' <<<"${VALUES[$1]:-}" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

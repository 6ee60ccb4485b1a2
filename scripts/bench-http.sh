#!/usr/bin/env bash
# HTTP benchmark: the same hyper 1.x file service (examples/http.rs) on faultless and on
# tokio's current-thread runtime, driven by wrk, in the same run, alternating runtimes.
#
#   scripts/bench-http.sh [ROUNDS] [SECONDS] [CONNECTIONS] [FILE_BYTES]
#   MODE=cold scripts/bench-http.sh ...
#
# MODE=hot (default): every request fetches one resident 4 KiB file (FILE_BYTES), so this
# measures the runtimes' network paths, not the disk. MODE=cold: each request fetches a
# random 4 KiB range of a 1 GiB file (FILE_BYTES) whose pages each server drops when it
# starts: the data-larger-than-memory case, where a cold page blocks tokio's only thread
# and faultless's task yields. Defaults: 5 rounds of 10 s each per runtime, 64 connections. With PIN=1 the server is
# pinned to CPU 0 and wrk (one thread) to CPU 1. Prints each run's requests/s and the
# server's requests per CPU-second (its user+system time from /proc: the steadier number on
# a shared, noisy machine), the medians, and the ratios faultless / tokio.
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
SECS=${2:-10}
CONNS=${3:-64}
MODE=${MODE:-hot}
if [ "$MODE" = cold ]; then BYTES=${4:-1073741824}; else BYTES=${4:-4096}; fi

command -v wrk >/dev/null || { echo "bench-http: wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release --example http >&2
BIN=target/release/examples/http

# On the target directory's filesystem (a disk, not tmpfs: cold pages must be read back).
DIR=$(mktemp -d -p target)
trap 'rm -rf "$DIR"' EXIT
head -c "$BYTES" /dev/urandom > "$DIR/file.bin"
sync "$DIR/file.bin"
COLD=()
WRK_SCRIPT=()
if [ "$MODE" = cold ]; then
    COLD=(--cold)
    cat > "$DIR/random.lua" <<LUA
local pages = $((BYTES / 4096))
math.randomseed(os.time())
request = function()
  local off = math.random(0, pages - 1) * 4096
  return wrk.format("GET", "/file.bin", { ["Range"] = "bytes=" .. off .. "-" .. (off + 4095) })
end
LUA
    WRK_SCRIPT=(-s "$DIR/random.lua")
fi

PIN_SERVER=() PIN_WRK=()
if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0) PIN_WRK=(taskset -c 1)
fi

# The server's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Runs one server and one wrk run; prints "requests/s requests-per-CPU-second".
run_one() {
    local runtime=$1
    "${PIN_SERVER[@]}" "$BIN" --dir "$DIR" --addr 127.0.0.1:0 --runtime "$runtime" "${COLD[@]}" > "$DIR/out" 2>&1 &
    local pid=$!
    local url=""
    for _ in $(seq 100); do
        url=$(grep -o 'http://[0-9.:]*' "$DIR/out" 2>/dev/null || true)
        [ -n "$url" ] && break
        sleep 0.05
    done
    [ -n "$url" ] || { cat "$DIR/out" >&2; kill "$pid"; exit 1; }
    local before; before=$(cpu_ticks "$pid")
    "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "${WRK_SCRIPT[@]}" "$url/file.bin" > "$DIR/wrk" 2>&1
    local after; after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if grep -q "Non-2xx\|Socket errors" "$DIR/wrk"; then
        echo "bench-http: $runtime: errors:" >&2; cat "$DIR/wrk" >&2; exit 1
    fi
    local total; total=$(awk '/requests in/ {print $1}' "$DIR/wrk")
    local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk")
    awk -v r="$rps" -v n="$total" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.0f %.0f\n", r, (t > 0 ? n / (t / hz) : 0)}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "# $MODE: wrk -t1 -c$CONNS -d${SECS}s, $BYTES-byte file, $ROUNDS rounds, kernel $(uname -r), $(nproc) CPUs"
F=() T=() FC=() TC=()
for r in $(seq "$ROUNDS"); do
    read -r t tc < <(run_one tokio)
    read -r f fc < <(run_one faultless)
    T+=("$t") F+=("$f") TC+=("$tc") FC+=("$fc")
    echo "round $r: faultless $f req/s ($fc req/CPU-s), tokio $t req/s ($tc req/CPU-s)"
done
ratio() { awk -v f="$1" -v t="$2" 'BEGIN {printf "%.2f", f/t}'; }
fm=$(printf '%s\n' "${F[@]}" | median); tm=$(printf '%s\n' "${T[@]}" | median)
fcm=$(printf '%s\n' "${FC[@]}" | median); tcm=$(printf '%s\n' "${TC[@]}" | median)
echo "median req/s:       faultless $fm, tokio current_thread $tm, ratio $(ratio "$fm" "$tm")x"
echo "median req/CPU-s:   faultless $fcm, tokio current_thread $tcm, ratio $(ratio "$fcm" "$tcm")x"

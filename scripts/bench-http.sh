#!/usr/bin/env bash
# HTTP benchmark: the same hyper 1.x file service (examples/http.rs) on faultless and on
# tokio's current-thread runtime, driven by wrk, in the same run, alternating runtimes.
#
#   scripts/bench-http.sh [ROUNDS] [SECONDS] [CONNECTIONS] [FILE_BYTES]
#
# Defaults: 5 rounds of 10 s each per runtime, 64 connections, a 4 KiB file (every page
# resident: this measures the runtimes' I/O paths, not the disk). The server is pinned to
# CPU 0 and wrk (one thread) to CPU 1 when the machine has two CPUs or more. Prints each
# run's requests/s, the medians and the ratio faultless / tokio.
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
SECS=${2:-10}
CONNS=${3:-64}
BYTES=${4:-4096}

command -v wrk >/dev/null || { echo "bench-http: wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release --example http >&2
BIN=target/release/examples/http

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
head -c "$BYTES" /dev/urandom > "$DIR/file.bin"

PIN_SERVER=() PIN_WRK=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0) PIN_WRK=(taskset -c 1)
fi

# Runs one server and one wrk run; prints requests/s.
run_one() {
    local runtime=$1
    "${PIN_SERVER[@]}" "$BIN" --dir "$DIR" --addr 127.0.0.1:0 --runtime "$runtime" > "$DIR/out" 2>&1 &
    local pid=$!
    local url=""
    for _ in $(seq 100); do
        url=$(grep -o 'http://[0-9.:]*' "$DIR/out" 2>/dev/null || true)
        [ -n "$url" ] && break
        sleep 0.05
    done
    [ -n "$url" ] || { cat "$DIR/out" >&2; kill "$pid"; exit 1; }
    "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "$url/file.bin" > "$DIR/wrk" 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    grep -q "Non-2xx" "$DIR/wrk" && { echo "bench-http: errors:" >&2; cat "$DIR/wrk" >&2; exit 1; }
    awk '/Requests\/sec/ {print $2}' "$DIR/wrk"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "# wrk -t1 -c$CONNS -d${SECS}s, $BYTES-byte file, $ROUNDS rounds, kernel $(uname -r), $(nproc) CPUs"
F=() T=()
for r in $(seq "$ROUNDS"); do
    t=$(run_one tokio); f=$(run_one faultless)
    T+=("$t") F+=("$f")
    echo "round $r: faultless $f req/s, tokio $t req/s"
done
fm=$(printf '%s\n' "${F[@]}" | median)
tm=$(printf '%s\n' "${T[@]}" | median)
echo "median: faultless $fm req/s, tokio current_thread $tm req/s, ratio $(awk -v f="$fm" -v t="$tm" 'BEGIN {printf "%.2f", f/t}')x"

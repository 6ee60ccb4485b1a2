#!/usr/bin/env bash
# Rounds of random GETs against `faultless serve` on an existing server store, with only
# CACHE (default 1536M) of memory left for the page cache (`faultless pressure`): GET/s, p50,
# p99 and the executor's major faults per round. For comparing builds on the same store in
# the same window (scripts/bench-redis.sh's pressure section loads its own store and runs
# this build only).
#
#   bash scripts/pressure-rounds.sh DB ROUNDS BIN [serve args...]   # needs redis-tools
#
# DB: a store written by `faultless serve` (e.g. the one bench-redis.sh keeps with COLD_DB);
# its keys must be redis-benchmark's `key:NNNNNNNNNNNN` for 0..KEYS (default 2000000). The
# file is dropped from the page cache first (and the kernel's caches, where permitted).
set -euo pipefail
DB=$1; ROUNDS=$2; BIN=$3; shift 3
CACHE=${CACHE:-1536M}
KEYS=${KEYS:-2000000}
PORT=${PORT:-6403}
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$DB"
sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true
"$BIN" pressure --page-cache "$CACHE" -- "$BIN" serve --port "$PORT" --data "$DB" "$@" >/dev/null 2>&1 &
server=$!
trap 'redis-cli -p "$PORT" shutdown >/dev/null 2>&1 || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 300); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
faults() { redis-cli -p "$PORT" info pages | tr -d '\r' | awk -F: '$1 == "executor_major_faults" { print $2 }'; }
for r in $(seq "$ROUNDS"); do
    before=$(faults)
    line=$(redis-benchmark -p "$PORT" -t get -n 300000 -c 50 -P 16 -r "$KEYS" --csv 2>/dev/null |
        awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }')
    read -r rps p50 p99 <<<"$line"
    echo "$(basename "$BIN") round $r: $rps GET/s  p50 $p50 ms  p99 $p99 ms  executor major faults $(( $(faults) - before ))"
done

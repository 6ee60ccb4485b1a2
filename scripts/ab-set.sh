#!/usr/bin/env bash
# Alternating SET runs of `faultless serve` builds on fresh stores: SET/s, p99, and the CPU the
# server's main thread spent per SET (from /proc/PID/task/TID/schedstat), which is steadier
# than throughput on a shared machine.
#
#   bash scripts/ab-set.sh ROUNDS BIN [BIN...]      # needs redis-tools (redis-benchmark)
#
# Environment: N (requests per run, default 300000); SERVE_ARGS (extra `serve` arguments).
set -euo pipefail
ROUNDS=$1; shift
N=${N:-300000}
printf "%-28s %12s %9s %14s\n" build "SET/s" "p99 ms" "CPU us/SET"
for _ in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        dir=$(mktemp -d)
        # shellcheck disable=SC2086
        "$bin" serve --port 6420 --data "$dir/s.db" ${SERVE_ARGS:-} >/dev/null 2>&1 &
        server=$!
        for _ in $(seq 100); do redis-cli -p 6420 ping >/dev/null 2>&1 && break; sleep 0.1; done
        before=$(awk '{print $1}' "/proc/$server/task/$server/schedstat")
        line=$(redis-benchmark -p 6420 -t set -n "$N" -c 50 -P 16 -r 1000000 --csv 2>/dev/null |
            awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $7); print $2, $7 }')
        after=$(awk '{print $1}' "/proc/$server/task/$server/schedstat")
        redis-cli -p 6420 shutdown >/dev/null 2>&1 || true
        wait "$server" || true
        rm -rf "$dir"
        read -r rps p99 <<<"$line"
        printf "%-28s %12s %9s %14s\n" "$(basename "$bin")" "$rps" "$p99" \
            "$(awk -v a="$before" -v b="$after" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1000 }')"
    done
done

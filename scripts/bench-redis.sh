#!/usr/bin/env bash
# redis-benchmark against `faultless serve` and a real redis-server, in the same run, then a
# cold run: a store many times larger than what is read, GET throughput and p99 with a
# non-blocking prefetch path and with `blocking`.
#
#   bash scripts/bench-redis.sh            # needs redis-server and redis-tools (apt-get)
#
# Environment: REQUESTS (default 500000), COLD_KEYS (default 2000000), COLD_VALUE (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-500000}
COLD_KEYS=${COLD_KEYS:-2000000}
COLD_VALUE=${COLD_VALUE:-1000}
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools
fi
cargo build --release -q
BIN=target/release/faultless
WORK=$(mktemp -d "$PWD/faultless-redis-bench.XXXX")
trap 'redis-cli -p 6400 shutdown nosave >/dev/null 2>&1 || true; redis-cli -p 6401 shutdown >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

wait_port() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }
bench() { # port test -> "rps p50 p99" from redis-benchmark's CSV output
    redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -c 50 -P 16 -r 1000000 --csv 2>/dev/null |
        awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }'
}

echo "== hot: redis-benchmark -t get,set -n $REQUESTS -c 50 -P 16 -r 1000000"
redis-server --port 6400 --save "" --appendonly no --dir "$WORK" --daemonize yes --logfile "$WORK/redis.log"
$BIN serve --port 6401 --data "$WORK/hot.db" > "$WORK/serve.log" &
wait_port 6400; wait_port 6401
printf "%-34s %12s %9s %9s\n" server/test "requests/s" "p50 ms" "p99 ms"
for t in set get; do
    read -r r1 p501 p991 < <(bench 6400 $t)
    read -r r2 p502 p992 < <(bench 6401 $t)
    printf "%-34s %12s %9s %9s\n" "redis-server (no persistence) $t" "$r1" "$p501" "$p991"
    printf "%-34s %12s %9s %9s\n" "faultless serve (durable) $t" "$r2" "$p502" "$p992"
    echo "ratio faultless/redis $t: $(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')"
done
redis-cli -p 6400 config set appendonly yes >/dev/null
redis-cli -p 6400 config set appendfsync always >/dev/null
sleep 1
read -r r3 p503 p993 < <(bench 6400 set)
printf "%-34s %12s %9s %9s\n" "redis-server (appendfsync always) set" "$r3" "$p503" "$p993"
redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
redis-cli -p 6400 shutdown nosave >/dev/null 2>&1 || true
wait

echo "== cold: $COLD_KEYS keys x $COLD_VALUE bytes, random GETs over all of them, pages dropped first"
awk -v n="$COLD_KEYS" -v v="$COLD_VALUE" 'BEGIN { val = sprintf("%*s", v, ""); gsub(/ /, "x", val); for (i = 0; i < n; i++) printf "key:%012d\t%s\n", i, val }' |
    $BIN store load "$WORK/cold.db" - 2>/dev/null
ls -l "$WORK/cold.db"
for backend in uring-read blocking; do
    python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$WORK/cold.db"
    [ "$(id -u)" = 0 ] && sync && echo 1 > /proc/sys/vm/drop_caches
    $BIN serve --port 6401 --data "$WORK/cold.db" --backend $backend > "$WORK/serve.log" &
    wait_port 6401
    read -r r p50 p99 < <(redis-benchmark -p 6401 -t get -n 100000 -c 50 -P 16 -r "$COLD_KEYS" --csv 2>/dev/null |
        awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }')
    faults=$(redis-cli -p 6401 info | tr -d '\r' | awk -F: '/executor_major_faults/ { print $2 }')
    printf "cold GET %-12s %10s requests/s  p50 %s ms  p99 %s ms  executor major faults %s\n" "$backend" "$r" "$p50" "$p99" "$faults"
    redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
    wait
done

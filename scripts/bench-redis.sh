#!/usr/bin/env bash
# redis-benchmark against `faultless serve` and a real redis-server, in the same run, then a
# cold run: a store many times larger than what is read, GET throughput and p99 with a
# non-blocking prefetch path and with `blocking`.
#
#   bash scripts/bench-redis.sh            # needs redis-server and redis-tools (apt-get)
#
# Sections (SECTIONS, default "hot durable cold pressure"):
#   hot       GET/SET against redis-server without persistence
#   durable   SET with every write durable before its reply: faultless --appendfsync always
#             against redis-server appendfsync always, and both with everysec
#   cold      GETs over a store dropped from the page cache: auto against blocking
#   pressure  the same store with only PRESSURE_CACHE of memory left for the page cache
#             (`faultless pressure`), ROUNDS rounds of 300,000 random GETs: reclaim takes
#             pages back between rounds; executor major faults per round, auto vs blocking
#
# Environment: REQUESTS (default 500000), COLD_KEYS (default 2000000), COLD_VALUE (1000),
# PRESSURE_CACHE (default 1536M), ROUNDS (default 5), RESIDENCIES (the --residency modes
# measured under pressure, default "auto"), COLD_DB (an existing server store to use for
# the cold and pressure sections instead of loading one; it is not deleted); BASELINE_BIN: another `faultless`
# build (an older commit's) to run side by side in the hot section, for before/after numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-500000}
COLD_KEYS=${COLD_KEYS:-2000000}
COLD_VALUE=${COLD_VALUE:-1000}
PRESSURE_CACHE=${PRESSURE_CACHE:-1536M}
ROUNDS=${ROUNDS:-5}
SECTIONS=${SECTIONS:-hot durable cold pressure}
RESIDENCIES=${RESIDENCIES:-auto}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools
fi
cargo build --release -q
BIN=target/release/faultless
WORK=$(mktemp -d "$PWD/faultless-redis-bench.XXXX")
COLD=${COLD_DB:-$WORK/cold.db}
trap 'redis-cli -p 6400 shutdown nosave >/dev/null 2>&1 || true; redis-cli -p 6401 shutdown >/dev/null 2>&1 || true; redis-cli -p 6402 shutdown >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

wait_port() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }
bench() { # port test -> "rps p50 p99" from redis-benchmark's CSV output
    redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -c 50 -P 16 -r 1000000 --csv 2>/dev/null |
        awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }'
}

row() { printf "%-40s %12s %9s %9s\n" "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

if want hot; then
echo "== hot: redis-benchmark -t get,set -n $REQUESTS -c 50 -P 16 -r 1000000"
redis-server --port 6400 --save "" --appendonly no --dir "$WORK" --daemonize yes --logfile "$WORK/redis.log"
$BIN serve --port 6401 --data "$WORK/hot.db" > "$WORK/serve.log" &
wait_port 6400; wait_port 6401
if [ -n "${BASELINE_BIN:-}" ]; then
    "$BASELINE_BIN" serve --port 6402 --data "$WORK/base.db" > "$WORK/base.log" &
    wait_port 6402
fi
printf "%-34s %12s %9s %9s\n" server/test "requests/s" "p50 ms" "p99 ms"
for t in set get; do
    read -r r1 p501 p991 < <(bench 6400 $t)
    read -r r2 p502 p992 < <(bench 6401 $t)
    printf "%-34s %12s %9s %9s\n" "redis-server (no persistence) $t" "$r1" "$p501" "$p991"
    printf "%-34s %12s %9s %9s\n" "faultless serve (durable) $t" "$r2" "$p502" "$p992"
    echo "ratio faultless/redis $t: $(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')"
    if [ -n "${BASELINE_BIN:-}" ]; then
        read -r r4 p504 p994 < <(bench 6402 $t)
        printf "%-34s %12s %9s %9s\n" "baseline build (durable) $t" "$r4" "$p504" "$p994"
        echo "ratio faultless/baseline $t: $(awk -v a="$r2" -v b="$r4" 'BEGIN { printf "%.2f", a / b }')"
    fi
done
[ -n "${BASELINE_BIN:-}" ] && { redis-cli -p 6402 shutdown >/dev/null 2>&1 || true; }
redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
redis-cli -p 6400 shutdown nosave >/dev/null 2>&1 || true
wait
fi

if want durable; then
echo "== durable: redis-benchmark -t set -n $REQUESTS -c 50 -P 16 -r 1000000, acknowledged = on disk (always) or within a second (everysec)"
for policy in always everysec; do
    rm -rf "$WORK/aof" "$WORK/dur.db"*
    mkdir -p "$WORK/aof"
    redis-server --port 6400 --save "" --appendonly yes --appendfsync $policy --dir "$WORK/aof" --daemonize yes --logfile "$WORK/redis.log"
    $BIN serve --port 6401 --data "$WORK/dur.db" --appendfsync $policy > "$WORK/serve.log" &
    wait_port 6400; wait_port 6401
    read -r r1 p501 p991 < <(bench 6400 set)
    read -r r2 p502 p992 < <(bench 6401 set)
    row "redis-server appendfsync $policy set" "$r1" "$p501" "$p991"
    row "faultless serve --appendfsync $policy set" "$r2" "$p502" "$p992"
    echo "ratio faultless/redis set ($policy): $(ratio "$r2" "$r1")"
    redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
    redis-cli -p 6400 shutdown nosave >/dev/null 2>&1 || true
    wait
done
fi

load_cold() { # loads $COLD_KEYS keys into $COLD once
[ -f "$COLD" ] && return
# Loaded through the server (its records carry a type header and are ordered by key hash,
# so the store's raw bulk loader cannot write them): MSETs of 100 keys through redis-cli --pipe.
$BIN serve --port 6401 --data "$COLD" > "$WORK/serve.log" &
wait_port 6401
python3 - "$COLD_KEYS" "$COLD_VALUE" <<'PY' | redis-cli -p 6401 --pipe | tail -1
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
val = b"x" * size
out = sys.stdout.buffer
for start in range(0, n, 100):
    keys = [b"key:%012d" % i for i in range(start, min(n, start + 100))]
    parts = [b"MSET"]
    for k in keys:
        parts += [k, val]
    out.write(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
PY
redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
wait
ls -l "$COLD"
}
drop_cache() {
    python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$1"
    if [ "$(id -u)" = 0 ]; then sync; echo 1 > /proc/sys/vm/drop_caches; fi
}
info_field() { redis-cli -p 6401 info "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }

if want cold; then
echo "== cold: $COLD_KEYS keys x $COLD_VALUE bytes, random GETs over all of them, pages dropped first"
load_cold
for backend in auto blocking; do
    drop_cache "$COLD"
    $BIN serve --port 6401 --data "$COLD" --backend $backend > "$WORK/serve.log" &
    wait_port 6401
    read -r r p50 p99 < <(redis-benchmark -p 6401 -t get -n 100000 -c 50 -P 16 -r "$COLD_KEYS" --csv 2>/dev/null |
        awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }')
    faults=$(redis-cli -p 6401 info | tr -d '\r' | awk -F: '/executor_major_faults/ { print $2 }')
    printf "cold GET %-12s %10s requests/s  p50 %s ms  p99 %s ms  executor major faults %s\n" "$backend" "$r" "$p50" "$p99" "$faults"
    redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
    wait
done
fi

if want pressure; then
echo "== pressure: $COLD_KEYS keys x $COLD_VALUE bytes, $PRESSURE_CACHE left for the page cache, $ROUNDS rounds of 300000 random GETs"
load_cold
for run in $RESIDENCIES blocking; do
    if [ "$run" = blocking ]; then backend=blocking; opts=(--backend blocking); else backend="auto/$run"; opts=(--residency "$run"); fi
    drop_cache "$COLD"
    $BIN pressure --page-cache "$PRESSURE_CACHE" -- $BIN serve --port 6401 --data "$COLD" "${opts[@]}" > "$WORK/serve.log" 2> "$WORK/pressure.log" &
    wait_port 6401
    before=$(info_field pages executor_major_faults)
    for round in $(seq "$ROUNDS"); do
        read -r r p50 p99 < <(redis-benchmark -p 6401 -t get -n 300000 -c 50 -P 16 -r "$COLD_KEYS" --csv 2>/dev/null |
            awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }')
        after=$(info_field pages executor_major_faults)
        printf "pressure GET %-14s round %s %10s requests/s  p50 %s ms  p99 %s ms  executor major faults %s (%.3f per 1,000 GETs)\n" \
            "$backend" "$round" "$r" "$p50" "$p99" "$((after - before))" "$(awk -v f="$((after - before))" 'BEGIN { print f * 1000 / 300000 }')"
        before=$after
    done
    echo "  residency: $(info_field pages residency) fallback: $(info_field pages residency_fallback) locked_bytes: $(info_field pages locked_bytes) unpinned: $(info_field pages pages_unpinned) scrub passes: $(info_field pages scrub_passes) reclaimed found: $(info_field pages pages_found_reclaimed) read-ahead lookups: $(info_field pages read_ahead_lookups)"
    redis-cli -p 6401 shutdown >/dev/null 2>&1 || true
    wait
    sed -n 1,3p "$WORK/pressure.log"
done
fi

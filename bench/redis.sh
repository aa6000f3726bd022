#!/usr/bin/env bash
# Redis GET through brubeck's fiber driver against redis-benchmark, on one
# redis-server started here (loopback, stopped by its pid), interleaved over
# ROUNDS rounds. Needs the Release build with -DBRUBECK_BENCH=ON.
#
#   bench/redis.sh [build dir (build)]      env: ROUNDS (3), CLIENTS (50), SECONDS (5)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-3}
clients=${CLIENTS:-50}
seconds=${SECONDS_PER_RUN:-5}
# shellcheck source=deploy/services.sh
source "$root/deploy/services.sh"
dir=$(mktemp -d /tmp/brubeck-bench-redis.XXXXXX)
port=$((20000 + RANDOM % 20000))
trap 'redis_stop "$dir"; rm -rf "$dir"' EXIT
redis_start "$dir" "$port"
requests=$((clients * 4000))
for ((r = 1; r <= rounds; r++)); do
  echo "round $r"
  redis-benchmark -h 127.0.0.1 -p "$port" -t get -n "$requests" -c "$clients" -q | tr '\r' '\n' |
    grep -E '^GET' | tail -1 | sed "s/^/  redis-benchmark -c $clients: /"
  # brubeck's fibers share one connection, so their commands travel pipelined:
  # compare with redis-benchmark pipelining as well.
  redis-benchmark -h 127.0.0.1 -p "$port" -t get -n "$((requests * 4))" -c "$clients" -P 16 -q |
    tr '\r' '\n' | grep -E '^GET' | tail -1 | sed "s/^/  redis-benchmark -c $clients -P 16: /"
  echo "  $("$build/bench/bench_redis_get" "$port" "$clients" "$seconds")"
done

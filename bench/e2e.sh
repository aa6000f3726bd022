#!/usr/bin/env bash
# End-to-end load through a real Mongrel2, on loopback: wrk against the
# minimal libzmq C handler (bench/baselines/m2_c_handler.c, the ceiling) and
# against build/examples/brubeck_demo, alternated R times behind the same
# Mongrel2, with one handler connected at a time. Prints each run's req/s and
# CPU use, and the median brubeck/baseline ratio (runs on these shared
# machines vary by +-30%: compare within one run, never across runs).
#
#   bench/e2e.sh
#
# Each window: a warm-up (E2E_WARMUP, not counted), then the measured wrk run.
# The order alternates: odd rounds run the C handler first, even rounds
# brubeck first, so neither always gets the box's later (or earlier) state.
# Writes everything it prints to E2E_OUT (bench/results/e2e.txt) and every
# wrk output to bench/results/e2e-wrk.txt (paths relative to the repository).
#
# Environment: E2E_DURATION (wrk -d, default 10s), E2E_WARMUP (2s), E2E_ROUNDS (3),
# E2E_THREADS (2), E2E_CONNECTIONS (64), E2E_PATH (/brubeck, both handlers),
# BRUBECK_SHARDS (demo --shards), BRUBECK_BUILD_DIR (build), M2_C_HANDLER and
# BRUBECK_DEMO (binaries), E2E_PROTOCOL (json), E2E_BASELINE_ONLY=1 (no demo),
# E2E_KEEP=1 (keep the work folder with Mongrel2's and the handlers' logs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/mongrel2.sh
source "$root/deploy/mongrel2.sh"

build=${BRUBECK_BUILD_DIR:-$root/build}
duration=${E2E_DURATION:-10s}
rounds=${E2E_ROUNDS:-3}
threads=${E2E_THREADS:-2}
connections=${E2E_CONNECTIONS:-64}
path=${E2E_PATH:-/brubeck}
c_handler=${M2_C_HANDLER:-$build/bench/m2_c_handler}
demo=${BRUBECK_DEMO:-$build/examples/brubeck_demo}
baseline_only=${E2E_BASELINE_ONLY:-0}
warmup=${E2E_WARMUP:-2s}
out_file=${E2E_OUT:-$root/bench/results/e2e.txt}

die() {
  echo "e2e: $*" >&2
  exit 1
}

for tool in wrk curl mongrel2 m2sh; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run deploy/install-deps"
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "E2E_ROUNDS must be a positive integer"

work=$(mktemp -d /tmp/brubeck-e2e.XXXXXX)
handler_pid=""
wrk_pid=""
cleanup() {
  if [[ -n $wrk_pid ]]; then
    m2_kill_wait "$wrk_pid" TERM 5 || true
  fi
  if [[ -n $handler_pid ]]; then
    m2_kill_wait "$handler_pid" TERM 10 || true
  fi
  m2_stop "$work/m2" || true
  if [[ ${E2E_KEEP:-0} == 1 ]]; then
    echo "e2e: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything printed from here on also goes to the raw output file (with this
# machine's paths made relative to the repository).
mkdir -p "$(dirname "$out_file")"
: >"$out_file"
exec > >(tee >(sed -u -e "s|$work/||g" -e "s|$root/||g" >>"$out_file"))

if [[ ! -x $c_handler ]]; then
  echo "e2e: $c_handler not built; compiling the C baseline into $work"
  c_handler="$work/m2_c_handler"
  # shellcheck disable=SC2046 # pkg-config prints several words
  cc -std=c11 -O2 -o "$c_handler" "$root/bench/baselines/m2_c_handler.c" \
    $(pkg-config --cflags --libs libzmq)
fi
if [[ ! -x $demo ]]; then
  if [[ $baseline_only == 1 ]]; then
    echo "e2e: E2E_BASELINE_ONLY=1: measuring the C baseline only"
  else
    die "no $demo: build it (cmake --build build --target brubeck_demo) or set E2E_BASELINE_ONLY=1"
  fi
fi

http_port=$(m2_free_port)
send_port=$(m2_free_port "$http_port")
recv_port=$(m2_free_port "$http_port" "$send_port")
m2_prepare "$work/m2" "$http_port" "$send_port" "$recv_port" "${E2E_PROTOCOL:-json}"
m2_start "$work/m2"
m2_pid=$M2_PID
send_spec="tcp://127.0.0.1:$send_port"
recv_spec="tcp://127.0.0.1:$recv_port"
url="http://127.0.0.1:${http_port}${path}"
clk_tck=$(getconf CLK_TCK)

# CPU ticks (user + system, all threads) a process has used so far.
cpu_ticks() {
  local stat rest
  local -a f
  read -r stat 2>/dev/null <"/proc/$1/stat" || {
    echo 0
    return
  }
  rest=${stat##*) }
  # Fields after the comm: state is field 3, utime 14, stime 15.
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}

# start_handler NAME COMMAND...: starts it (the only handler on send_spec) and
# waits until a GET through Mongrel2 answers 200.
start_handler() {
  local name=$1 code="" i
  shift
  "$@" </dev/null >>"$work/$name.log" 2>&1 &
  handler_pid=$!
  for ((i = 0; i < 150; i++)); do
    m2_alive "$handler_pid" || {
      tail -n 20 "$work/$name.log" >&2
      die "$name exited before answering"
    }
    # Each probe is bounded: Mongrel2 queues requests while no handler is
    # connected, and a reply published before the PUB socket connects is lost.
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 "$url" || true)
    [[ $code == 200 ]] && return 0
    sleep 0.1
  done
  tail -n 20 "$work/$name.log" >&2
  die "$name did not answer 200 on $url (last: ${code:-none})"
}

stop_handler() {
  m2_kill_wait "$handler_pid" TERM 10 || die "handler pid $handler_pid did not stop"
  handler_pid=""
  sleep 0.3 # let Mongrel2's PUSH socket drop the gone peer
}

# measure NAME ROUND: wrk against the running handler; prints one line and
# appends req/s to the NAME array.
declare -a rps_baseline=() rps_brubeck=()
measure() {
  local name=$1 round=$2 out="$work/wrk-$1-$2.txt" rps t0 t1 m2_0 m2_1 h_0 h_1 extra=""
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    wrk -t"$threads" -c"$connections" -d"$warmup" "$url" >/dev/null 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || die "wrk warm-up failed"
    wrk_pid=""
  fi
  m2_0=$(cpu_ticks "$m2_pid")
  h_0=$(cpu_ticks "$handler_pid")
  t0=$EPOCHREALTIME
  # In the background so that a SIGTERM to this script acts at once (the
  # trap stops wrk by its pid).
  wrk -t"$threads" -c"$connections" -d"$duration" "$url" >"$out" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || {
    cat "$out" >&2
    die "wrk failed"
  }
  wrk_pid=""
  t1=$EPOCHREALTIME
  m2_1=$(cpu_ticks "$m2_pid")
  h_1=$(cpu_ticks "$handler_pid")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  [[ -n $rps ]] || {
    cat "$out" >&2
    die "no Requests/sec in wrk's output"
  }
  if grep -q -e 'Non-2xx' -e 'Socket errors' "$out"; then
    extra="  !! $(grep -e 'Non-2xx' -e 'Socket errors' "$out" | tr -s ' ' | paste -sd ';' -)"
  fi
  awk -v n="$name" -v r="$round" -v rps="$rps" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
    -v m="$((m2_1 - m2_0))" -v h="$((h_1 - h_0))" -v x="$extra" 'BEGIN {
      s = t1 - t0
      printf "round %d  %-9s %10.0f req/s   cpu: mongrel2 %4.0f%%  handler %4.0f%%%s\n",
        r, n, rps, 100 * m / hz / s, 100 * h / hz / s, x
    }'
  if [[ $name == baseline ]]; then rps_baseline+=("$rps"); else rps_brubeck+=("$rps"); fi
}

median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

shards_args=()
if [[ -n ${BRUBECK_SHARDS:-} ]]; then
  shards_args=(--shards "$BRUBECK_SHARDS")
fi

echo "e2e: Mongrel2 pid $m2_pid on $url; wrk -t$threads -c$connections -d$duration;" \
  "$rounds round(s); $(nproc) cores${BRUBECK_SHARDS:+; brubeck shards $BRUBECK_SHARDS}"
run_baseline() {
  start_handler baseline "$c_handler" "$send_spec" "$recv_spec"
  measure baseline "$1"
  stop_handler
}
run_brubeck() {
  [[ -x $demo ]] || return 0
  start_handler brubeck "$demo" --send-spec "$send_spec" --recv-spec "$recv_spec" \
    "${shards_args[@]}"
  measure brubeck "$1"
  stop_handler
}
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then
    run_baseline "$round"
    run_brubeck "$round"
  else
    run_brubeck "$round"
    run_baseline "$round"
  fi
done

base_median=$(median "${rps_baseline[@]}")
echo "baseline (C handler) median: $base_median req/s"
if ((${#rps_brubeck[@]} > 0)); then
  brub_median=$(median "${rps_brubeck[@]}")
  ratios=()
  for ((i = 0; i < ${#rps_brubeck[@]}; i++)); do
    ratios+=("$(awk -v a="${rps_brubeck[i]}" -v b="${rps_baseline[i]}" \
      'BEGIN { printf "%.3f", a / b }')")
  done
  echo "brubeck median: $brub_median req/s"
  echo "brubeck/baseline: median of per-round ratios $(median "${ratios[@]}")" \
    "(rounds: ${ratios[*]}; ratio of medians $(awk -v a="$brub_median" -v b="$base_median" \
      'BEGIN { printf "%.3f", a / b }'))"
fi

# Every wrk output in full, beside the summary (E2E_OUT with -wrk.txt).
for f in "$work"/wrk-*.txt; do
  [[ -e $f ]] || continue
  echo "== $(basename "$f" .txt)"
  cat "$f"
done | sed -e "s|$work/||g" -e "s|$root/||g" >"${out_file%.txt}-wrk.txt"

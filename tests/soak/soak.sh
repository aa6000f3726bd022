#!/usr/bin/env bash
# Soak test (issue #6): the demo app (2 shards) behind a real Mongrel2 under
# MINUTES of mixed load, on loopback:
#   - wrk -t1 -c16 on /brubeck (moderate, steady);
#   - two loops of slow requests, /feed (2 s long poll) and /slow?ms=500
#     (inside its 1 s deadline), each expecting a 200;
#   - a loop of clients that give up mid-request (curl --max-time 0.5 on
#     /feed): Mongrel2 sends disconnect notices, the handler cancels fibers;
#   - malformed frames pushed into the handler through a second --send-spec
#     (tests/soak/inject_frames.py: 100 frames/s plus a 2,000-frame burst
#     every minute).
# Every SOAK_SAMPLE_S (10) seconds it samples the handler's RSS (VmRSS),
# threads, fds, CPU and log counts into a CSV. At the end it stops the
# handler with SIGTERM and prints: crash (alive at the end? exit code),
# wrk's non-2xx and socket errors, the slow loops' failures, and RSS after
# warm-up (first sample at or after SOAK_WARMUP_S = 60 s) against the last
# sample, with the growth in %.
#
#   tests/soak/soak.sh [MINUTES=10]
#
# Targets (exit 0 when all are met, 1 otherwise): no crash, exit 0 on
# SIGTERM, no lost accepted request (wrk: no non-2xx, no read/write/timeout
# socket errors; slow loops: every request 200), RSS growth <= 10%.
#
# Environment: BRUBECK_BUILD_DIR (build), SOAK_NO_BUILD=1 (skip the build),
# SOAK_OUT (folder for soak.csv, summary.txt, wrk.txt; default a fresh
# /tmp/brubeck-soak-out.XXXXXX, kept), SOAK_KEEP=1 (keep the work folder with
# Mongrel2's and the demo's logs), SOAK_SAMPLE_S (10), SOAK_WARMUP_S (60),
# SOAK_INJECT_RATE (100 frames/s), SOAK_INJECT_BURST (2000).
#
# Every process it starts is stopped by its pid in an EXIT trap; all waits
# are bounded.
# shellcheck disable=SC2016,SC2153 # awk programs in single quotes; M2_PID comes from mongrel2.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/mongrel2.sh
source "$root/deploy/mongrel2.sh"

minutes=${1:-10}
build=${BRUBECK_BUILD_DIR:-$root/build}
demo=$build/examples/brubeck_demo
sample_s=${SOAK_SAMPLE_S:-10}
warmup_s=${SOAK_WARMUP_S:-60}
inject_rate=${SOAK_INJECT_RATE:-100}
inject_burst=${SOAK_INJECT_BURST:-2000}
python=/usr/bin/python3 # Debian's, with python3-zmq

die() {
  echo "soak: $*" >&2
  exit 1
}

[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || die "MINUTES must be a number (got '$minutes')"
duration=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
((duration >= 10)) || die "MINUTES too small (at least 10 s of load)"
for tool in wrk curl mongrel2 m2sh awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run deploy/install-deps"
done
"$python" -c 'import zmq' 2>/dev/null || die "$python has no zmq module: apt-get install python3-zmq"

if [[ ${SOAK_NO_BUILD:-0} != 1 ]]; then
  echo "soak: building brubeck_demo in $build"
  nice cmake --build "$build" --target brubeck_demo -j1 >/dev/null ||
    die "build failed: cmake --build $build --target brubeck_demo"
fi
[[ -x $demo ]] || die "no $demo"

work=$(mktemp -d /tmp/brubeck-soak.XXXXXX)
out=${SOAK_OUT:-$(mktemp -d /tmp/brubeck-soak-out.XXXXXX)}
mkdir -p "$out"

demo_pid=""
wrk_pid=""
inject_pid=""
loop_pids=()
cleanup() {
  local p
  for p in "${loop_pids[@]}"; do
    m2_kill_wait "$p" TERM 5 || true
  done
  [[ -z $wrk_pid ]] || m2_kill_wait "$wrk_pid" TERM 5 || true
  [[ -z $inject_pid ]] || m2_kill_wait "$inject_pid" TERM 5 || true
  [[ -z $demo_pid ]] || m2_kill_wait "$demo_pid" TERM 10 || true
  m2_stop "$work/m2" || true
  if [[ ${SOAK_KEEP:-0} == 1 ]]; then
    echo "soak: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports in 20000-31999 (m2_free_port), away from anything usual.
http_port=$(m2_free_port)
send_port=$(m2_free_port "$http_port")
recv_port=$(m2_free_port "$http_port" "$send_port")
inject_port=$(m2_free_port "$http_port" "$send_port" "$recv_port")
m2_prepare "$work/m2" "$http_port" "$send_port" "$recv_port" json
m2_start "$work/m2"
m2_pid=$M2_PID
base="http://127.0.0.1:$http_port"

BRUBECK_DEMO_SQLITE="$work/notes.db" "$demo" \
  --send-spec "tcp://127.0.0.1:$send_port" --send-spec "tcp://127.0.0.1:$inject_port" \
  --recv-spec "tcp://127.0.0.1:$recv_port" --shards 2 --no-pin --grace-ms 5000 \
  </dev/null >"$work/demo.log" 2>&1 &
demo_pid=$!
ready=0
for ((i = 0; i < 150; i++)); do
  m2_alive "$demo_pid" || {
    tail -n 20 "$work/demo.log" >&2
    die "the demo exited before answering"
  }
  # Bounded probes: a reply published before the PUB socket connects is lost.
  if [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 "$base/brubeck" || true) == 200 ]]; then
    ready=1
    break
  fi
  sleep 0.1
done
((ready)) || die "the demo did not answer 200 on $base/brubeck"

clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local stat rest
  local -a f
  read -r stat 2>/dev/null <"/proc/$1/stat" || {
    echo 0
    return
  }
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}
status_field() { # status_field PID FIELD -> the number in /proc/PID/status
  awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status" 2>/dev/null || echo 0
}
slow_count() { # slow_count AWK_CONDITION: lines of the slow loops' logs that match
  cat "$out"/slow-*.log 2>/dev/null | awk "$1" | wc -l || true
}
count_lines() { # count_lines FILE [PATTERN]
  if [[ ! -e $1 ]]; then
    echo 0
  elif (($# > 1)); then
    grep -c -e "$2" "$1" || true
  else
    wc -l <"$1"
  fi
}

start_s=$EPOCHSECONDS
end_s=$((start_s + duration))
echo "soak: ${minutes} min of mixed load on $base; demo pid $demo_pid (2 shards)," \
  "mongrel2 pid $m2_pid; injecting into tcp://127.0.0.1:$inject_port; output in $out"

wrk -t1 -c16 -d"${duration}s" --timeout 5s --latency "$base/brubeck" >"$out/wrk.txt" 2>&1 &
wrk_pid=$!

# slow_loop LOG PATH: one request after another until the end, each expecting
# a 200; one line per request: epoch-seconds path http-code curl-exit seconds.
slow_loop() {
  local log=$1 path=$2 out rc
  while ((EPOCHSECONDS < end_s)); do
    rc=0
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -m 10 "$base$path") || rc=$?
    read -r code secs <<<"$out"
    printf '%s %s %s %s %s\n' "$EPOCHSECONDS" "$path" "${code:-000}" "$rc" "${secs:-0}" >>"$log"
  done
}
# Clients that hang up after 0.5 s of a 2 s long poll (curl exit 28).
disconnect_loop() {
  local log=$1 rc
  while ((EPOCHSECONDS < end_s)); do
    rc=0
    curl -s -o /dev/null --max-time 0.5 "$base/feed" || rc=$?
    printf '%s %s\n' "$EPOCHSECONDS" "$rc" >>"$log"
    sleep 0.1
  done
}
slow_loop "$out/slow-feed.log" /feed &
loop_pids+=($!)
slow_loop "$out/slow-slow.log" "/slow?ms=500" &
loop_pids+=($!)
disconnect_loop "$out/disconnect.log" &
loop_pids+=($!)
"$python" "$root/tests/soak/inject_frames.py" "tcp://127.0.0.1:$inject_port" "$duration" \
  "$work/inject.status" "$inject_rate" "$inject_burst" >"$work/inject.log" 2>&1 &
inject_pid=$!

csv=$out/soak.csv
echo "elapsed_s,rss_kb,threads,fds,cpu_s,log_lines,log_warnings,log_errors,slow_ok,slow_fail,disconnects,injected,loadavg1" >"$csv"
sample() {
  local elapsed=$(($1 - start_s)) rss threads fds cpu lines warns errs slow_ok slow_fail disc inj load
  rss=$(status_field "$demo_pid" VmRSS)
  threads=$(status_field "$demo_pid" Threads)
  fds=$( (find "/proc/$demo_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
  cpu=$(awk -v t="$(cpu_ticks "$demo_pid")" -v hz="$clk_tck" 'BEGIN { printf "%.1f", t / hz }')
  lines=$(count_lines "$work/demo.log")
  warns=$(count_lines "$work/demo.log" ' warning ')
  errs=$(count_lines "$work/demo.log" ' error \| critical ')
  slow_ok=$(slow_count '$3 == 200')
  slow_fail=$(slow_count '$3 != 200')
  disc=$(count_lines "$out/disconnect.log")
  inj=$(awk '{ print $1 }' "$work/inject.status" 2>/dev/null || echo 0)
  read -r load _ </proc/loadavg
  echo "$elapsed,$rss,$threads,$fds,$cpu,$lines,$warns,$errs,$slow_ok,$slow_fail,$disc,${inj:-0},$load" >>"$csv"
  printf 'soak: %4ss  rss %s kB  threads %s  fds %s  cpu %ss  log %s lines (%s warnings, %s errors)  slow %s ok / %s failed  disconnects %s  injected %s  load %s\n' \
    "$elapsed" "$rss" "$threads" "$fds" "$cpu" "$lines" "$warns" "$errs" "$slow_ok" "$slow_fail" "$disc" "${inj:-0}" "$load"
}

crashed=0
sample "$EPOCHSECONDS"
next=$((start_s + sample_s))
while ((EPOCHSECONDS < end_s)); do
  if ! m2_alive "$demo_pid"; then
    crashed=1
    echo "soak: the demo (pid $demo_pid) died at $((EPOCHSECONDS - start_s)) s" >&2
    break
  fi
  if ((EPOCHSECONDS >= next)); then
    sample "$EPOCHSECONDS"
    next=$((next + sample_s))
  fi
  sleep 0.5
done
((crashed)) || sample "$EPOCHSECONDS"

# The load ends on its own at end_s; wait for it (bounded: wrk's and curl's
# own timeouts), then stop the handler as an operator would.
for ((i = 0; i < 400; i++)); do
  busy=0
  for p in "$wrk_pid" "$inject_pid" "${loop_pids[@]}"; do
    if m2_alive "$p"; then busy=1; fi
  done
  ((busy)) || break
  sleep 0.05
done
wait "$wrk_pid" 2>/dev/null || true
wrk_pid=""
wait "$inject_pid" 2>/dev/null || true
inject_pid=""
for p in "${loop_pids[@]}"; do wait "$p" 2>/dev/null || true; done
loop_pids=()

alive_at_end=0
m2_alive "$demo_pid" && alive_at_end=1
exit_code=none
if ((alive_at_end)); then
  kill -TERM "$demo_pid"
  for ((i = 0; i < 200; i++)); do
    m2_alive "$demo_pid" || break
    sleep 0.05
  done
  if m2_alive "$demo_pid"; then
    exit_code="still running 10 s after SIGTERM"
    m2_kill_wait "$demo_pid" KILL 5 || true
  else
    rc=0
    wait "$demo_pid" || rc=$?
    exit_code=$rc
  fi
else
  rc=0
  wait "$demo_pid" || rc=$?
  exit_code="died with status $rc"
fi
demo_pid=""
cp "$work/demo.log" "$out/demo.log" 2>/dev/null || true

# ---------------------------------------------------------------- summary
wrk_requests=$(awk '/requests in/ { print $1 }' "$out/wrk.txt")
wrk_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out/wrk.txt")
wrk_non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out/wrk.txt")
wrk_non2xx=${wrk_non2xx:-0}
# "Socket errors: connect 0, read 0, write 0, timeout 0"
read -r sock_connect sock_read sock_write sock_timeout < <(
  awk -F'[ ,]+' '/Socket errors:/ { print $4, $6, $8, $10; found = 1 }
                 END { if (!found) print 0, 0, 0, 0 }' "$out/wrk.txt"
)
slow_total=$(slow_count 1)
slow_fail=$(slow_count '$3 != 200')
# /slow?ms=500 runs under a 1 s route deadline: a 504 is an answer (the
# deadline the route promises), not a lost request, but it means the shard
# or the whole host stalled for 0.5 s: reported, not counted as lost.
slow_504=$(slow_count '$2 ~ /^\/slow/ && $3 == 504')
slow_lost=$((slow_fail - slow_504))
slow_max=$(cat "$out"/slow-*.log 2>/dev/null | awk '{ k = $2; if ($5 > m[k]) m[k] = $5 }
  END { for (k in m) { printf "%s%s max %.2f s", sep, k, m[k]; sep = ", " } }' || true)
load_max=$(awk -F, 'NR > 1 && $13 > m { m = $13 } END { print m + 0 }' "$csv")
disc_total=$(count_lines "$out/disconnect.log")
disc_cut=$( (awk '$2 == 28' "$out/disconnect.log" 2>/dev/null || true) | wc -l)
injected=$(awk '{ print $1 }' "$work/inject.status" 2>/dev/null || echo 0)
inject_blocked=$(awk '{ print $2 }' "$work/inject.status" 2>/dev/null || echo 0)
grace_left=$(count_lines "$out/demo.log" 'still running after the grace period')
# RSS: the first sample at or after the warm-up, and the last sample.
read -r rss_warm_t rss_warm rss_last_t rss_last < <(
  awk -F, -v w="$warmup_s" 'NR > 1 && $2 > 0 {
      if (!have && $1 >= w) { wt = $1; wv = $2; have = 1 }
      lt = $1; lv = $2
    }
    END { if (!have) { wt = lt; wv = lv }; print wt + 0, wv + 0, lt + 0, lv + 0 }' "$csv"
)
growth=$(awk -v a="$rss_warm" -v b="$rss_last" 'BEGIN { if (a > 0) printf "%.1f", 100 * (b - a) / a; else print "nan" }')
rss_max=$(awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m + 0 }' "$csv")

lost=$((wrk_non2xx + sock_read + sock_write + sock_timeout + slow_lost))
verdict=PASS
reasons=()
if ((crashed || !alive_at_end)); then
  verdict=FAIL
  reasons+=("crash")
fi
if [[ $exit_code != 0 ]]; then
  verdict=FAIL
  reasons+=("exit on SIGTERM: $exit_code")
fi
if ((lost > 0)); then
  verdict=FAIL
  reasons+=("$lost failed requests")
fi
if ((grace_left > 0)); then
  verdict=FAIL
  reasons+=("requests still running after the grace period")
fi
if ! awk -v g="$growth" 'BEGIN { exit !(g != "nan" && g <= 10) }'; then
  verdict=FAIL
  reasons+=("RSS growth ${growth}% > 10%")
fi

{
  echo "soak: ${minutes} min ($duration s), demo with 2 shards, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "crash:            $( ((crashed || !alive_at_end)) && echo yes || echo no) (alive at the end: $( ((alive_at_end)) && echo yes || echo no)); exit code on SIGTERM: $exit_code"
  echo "wrk /brubeck:     $wrk_requests requests, $wrk_rps req/s; non-2xx $wrk_non2xx; socket errors connect $sock_connect, read $sock_read, write $sock_write, timeout $sock_timeout"
  echo "slow requests:    $slow_total (/feed and /slow?ms=500), $slow_fail not 200 ($slow_504 of them a deadline 504 on /slow); $slow_max"
  echo "disconnects:      $disc_total clients gave up after 0.5 s ($disc_cut cut by --max-time)"
  echo "malformed frames: $injected injected ($inject_blocked times the socket was full)"
  echo "log:              $(count_lines "$out/demo.log") lines, $(count_lines "$out/demo.log" ' warning ') warnings, $(count_lines "$out/demo.log" ' error \| critical ') errors"
  echo "RSS:              ${rss_warm} kB at ${rss_warm_t} s (after warm-up) -> ${rss_last} kB at ${rss_last_t} s: ${growth}% (max ${rss_max} kB)"
  echo "host load:        1-minute load average up to $load_max on $(nproc) cores (other work on the machine included)"
  echo "lost requests:    $lost (wrk non-2xx and read/write/timeout errors; slow requests without a 200 or deadline 504)"
  echo "verdict:          $verdict${reasons[*]:+ (${reasons[*]})}"
} | tee "$out/summary.txt"

[[ $verdict == PASS ]]

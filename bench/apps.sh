#!/usr/bin/env bash
# The application layer in process (issue #13): what building one JSON reply
# costs with each library against the string concatenation it replaces
# (bench/json_build.cpp), and the render time of a template page
# (bench/templates.cpp). Google Benchmark, REPETITIONS repetitions in a
# random interleaving (the box's speed drifts; each benchmark then sees the
# same drift), medians of CPU time. Writes RESULTS_DIR/json_build.txt, templates.txt (the raw
# output) and apps.md (the tables); with the default RESULTS_DIR it also
# rewrites the block of bench/RESULTS.md between the "bench/apps.sh" markers,
# so no figure there is typed by hand. bench/run calls it.
#
# Then through Mongrel2 with wrk (one Mongrel2, one demo process with one
# shard, on loopback): the templated page (/mustache) and an AutoAPI list of
# 100 todos from SQLite (/todo/?limit=100), each against GET /brubeck in the
# same round; ROUNDS rounds of interleaved windows (the order reverses every
# round), the ratio taken within each round, the median [range] reported.
#
#   bench/apps.sh        env: BUILD_DIR (build), RESULTS_DIR (bench/results),
#                        REPETITIONS (5), SKIP_BUILD=1, ROUNDS (3), DURATION (5 s),
#                        WARMUP (1 s), CONNECTIONS (wrk -c, 32), THREADS (wrk -t, 2)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
results=${RESULTS_DIR:-$root/bench/results}
repetitions=${REPETITIONS:-5}
rounds=${ROUNDS:-3}
duration=${DURATION:-5}
warmup=${WARMUP:-1}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
say() { echo "bench/apps.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}
[[ $rounds =~ ^[1-9][0-9]*$ && $rounds -le 50 ]] || die "ROUNDS must be 1..50"
[[ $duration =~ ^[1-9][0-9]*$ && $duration -le 600 ]] || die "DURATION must be 1..600"
[[ $warmup =~ ^[0-9]+$ && $warmup -le 60 ]] || die "WARMUP must be 0..60"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cmake -S "$root" -B "$build" >/dev/null
  nice -n 10 cmake --build "$build" --parallel 1 --target bench_json_build bench_templates \
    brubeck_demo
fi
mkdir -p "$results"
for name in json_build templates; do
  say "bench_$name"
  BRUBECK_SOURCE_DIR=$root "$build/bench/bench_$name" --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true 2>&1 |
    sed -e "s|$root/||g" >"$results/$name.txt"
done

# medians FILE: "name ns" per benchmark, from the *_median lines (CPU time).
medians() {
  awk '$1 ~ /_median$/ {
    name = $1; sub(/_median$/, "", name)
    t = $4; unit = $5
    if (unit == "us") t *= 1000; else if (unit == "ms") t *= 1000000
    printf "%s %.0f\n", name, t
  }' "$1"
}
# table FILE BASELINE: markdown rows "| benchmark | µs | ratio to BASELINE |",
# cheapest first.
table() {
  medians "$1" | awk -v base="$2" '
    { name[NR] = $1; ns[NR] = $2; if ($1 == base) b = $2 }
    END {
      for (i = 1; i <= NR; i++)
        printf "| `%s` | %.1f | %s |\n", name[i], ns[i] / 1000,
          (b > 0 ? sprintf("%.2f×", ns[i] / b) : "–")
    }' | sort -t "|" -k3,3bg
}
# --- through Mongrel2 ---------------------------------------------------------
# shellcheck source=deploy/mongrel2.sh
source "$root/deploy/mongrel2.sh"
work=$(mktemp -d /tmp/brubeck-bench-apps.XXXXXX)
demo_pid=""
client_pid=""
cleanup() {
  [[ -z $client_pid ]] || m2_kill_wait "$client_pid" TERM 5 || true
  [[ -z $demo_pid ]] || m2_kill_wait "$demo_pid" TERM 10 || true
  m2_stop "$work/m2" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

http_port=$(m2_free_port)
send_port=$(m2_free_port "$http_port")
recv_port=$(m2_free_port "$http_port" "$send_port")
m2_prepare "$work/m2" "$http_port" "$send_port" "$recv_port" json || die "m2_prepare failed"
m2_start "$work/m2" || die "mongrel2 did not start"
base="http://127.0.0.1:$http_port"
BRUBECK_DEMO_SQLITE=$work/demo.db "$build/examples/brubeck_demo" \
  --send-spec "tcp://127.0.0.1:$send_port" --recv-spec "tcp://127.0.0.1:$recv_port" \
  --shards 1 --templates "$root/examples/templates" </dev/null >"$work/demo.log" 2>&1 &
demo_pid=$!
code=""
for ((i = 0; i < 150; i++)); do
  m2_alive "$demo_pid" || die "the demo exited: $(tail -n 3 "$work/demo.log")"
  # Bounded probes: a reply published before the PUB socket has Mongrel2's
  # subscription is lost.
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 "$base/brubeck?name=x" || true)
  [[ $code == 200 ]] && break
  sleep 0.1
done
[[ $code == 200 ]] || die "the demo did not answer through Mongrel2 ($work/demo.log)"
# 100 todos in one request (the AutoAPI creates an array all or none).
todos=$(awk 'BEGIN { printf "["; for (i = 1; i <= 100; i++)
  printf "%s{\"text\":\"todo number %d\",\"done\":%s}", (i > 1 ? "," : ""), i, (i % 3 ? "false" : "true")
  printf "]" }')
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H 'Content-Type: application/json' \
  --data-binary "$todos" "$base/todo/")
[[ $code == 201 ]] || die "creating 100 todos answered $code"
declare -A url=([brubeck]="/brubeck?name=x" [page]="/mustache?name=x&tag=cool&tag=jazz"
  [todo100]="/todo/?limit=100")
n=$(curl -s -m 5 "$base${url[todo100]}" | grep -o '"text"' | wc -l)
((n == 100)) || die "${url[todo100]} lists $n todos, not 100"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$base${url[page]}")
[[ $code == 200 ]] || die "${url[page]} answered $code"

raw=$results/apps_m2.tsv
printf 'round\tsetup\trps\tp99_us\terrors\n' >"$raw"
: >"$results/apps_m2.log"
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1e6 : -1; printf "%.0f", (f < 0 ? -1 : n * f) }'
}
window() {
  local setup=$1 round=$2 out=$work/wrk.txt rps p99 errors
  if ((warmup > 0)); then
    wrk -t"$threads" -c"$connections" -d"${warmup}s" "$base${url[$setup]}" >/dev/null 2>&1 &
    client_pid=$!
    wait "$client_pid" || die "wrk warm-up failed on ${url[$setup]}"
  fi
  wrk --latency -t"$threads" -c"$connections" -d"${duration}s" "$base${url[$setup]}" >"$out" 2>&1 &
  client_pid=$!
  wait "$client_pid" || die "wrk failed on ${url[$setup]}"
  client_pid=""
  { echo "== round $round $setup ${url[$setup]}"; cat "$out"; } >>"$results/apps_m2.log"
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(to_us "$(awk '$1 == "99%" {print $2; exit}' "$out")")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {
      for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0 } END {print n + 0}' "$out")
  [[ -n $rps ]] || die "no Requests/sec from wrk on ${url[$setup]}"
  printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$setup" "$rps" "$p99" "$errors" >>"$raw"
  say "round $round $setup: $rps req/s, p99 $p99 us, errors $errors"
}
order=(brubeck page todo100)
for ((round = 1; round <= rounds; round++)); do
  for ((k = 0; k < ${#order[@]}; k++)); do
    if ((round % 2)); then s=${order[k]}; else s=${order[${#order[@]} - 1 - k]}; fi
    window "$s" "$round"
  done
done
m2_kill_wait "$demo_pid" TERM 10 || true
demo_pid=""

# m2_rows: one markdown row per setup: median req/s and p99 over the rounds,
# and the median [range] of its per-round ratio to brubeck.
m2_rows() {
  awk -F'\t' '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 { rps[$2, $1] = $3; p99[$2, $1] = $4; err[$2] += $5; if ($1 > rounds) rounds = $1 }
    END {
      split("brubeck page todo100", names, " ")
      for (k = 1; k <= 3; k++) {
        s = names[k]; n = 0; m = 0; q = 0
        for (r = 1; r <= rounds; r++) {
          if (!((s, r) in rps)) continue
          v[++n] = rps[s, r]; w[++q] = p99[s, r]
          if (rps["brubeck", r] > 0) x[++m] = rps[s, r] / rps["brubeck", r]
        }
        rv = median(v, n); pv = median(w, q); xm = median(x, m)
        ratio = (s == "brubeck") ? "1" : (m == 1 ? sprintf("%.2f×", xm) : sprintf("%.2f× [%.2f–%.2f]", xm, x[1], x[m]))
        printf "| %s | %.0f | %.0f | %s | %d |\n", s, rv, pv, ratio, err[s]
        split("", v); split("", w); split("", x)
      }
    }' "$raw"
}

run_date=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || true)
{
  echo "Run $run_date, commit ${commit:-not recorded}: medians of $repetitions repetitions"
  echo "(CPU time), written by \`bench/apps.sh\` from \`bench/results/json_build.txt\` and"
  echo "\`templates.txt\`."
  echo
  echo "One JSON reply: an object with a list of 100 {id, text, done} items and a count,"
  echo "from the items in memory to the reply's text (\`bench/json_build.cpp\`):"
  echo
  echo "| benchmark | µs per reply | ratio to the concatenation |"
  echo "|---|---|---|"
  table "$results/json_build.txt" BM_concatenation
  echo
  echo "Template render time (\`bench/templates.cpp\`): the demo's /mustache page, and"
  echo "a page listing the same 100 items through a partial per item:"
  echo
  echo "| benchmark | µs per render | ratio to the demo page |"
  echo "|---|---|---|"
  table "$results/templates.txt" BM_render_demo_page
  echo
  echo "Through Mongrel2 (wrk -t$threads -c$connections, $rounds round(s) of ${duration} s windows,"
  echo "one demo process with one shard; \`bench/results/apps_m2.tsv\`): the templated page"
  echo "\`${url[page]}\` and an AutoAPI list of 100 todos from SQLite \`${url[todo100]}\`,"
  echo "each against \`${url[brubeck]}\` in the same round:"
  echo
  echo "| setup | req/s (median) | p99 µs (median) | req/s × /brubeck, median [range] | errors |"
  echo "|---|---|---|---|---|"
  m2_rows
} >"$results/apps.md"
say "wrote $results/apps.md"

results_md=$root/bench/RESULTS.md
begin_mark='<!-- bench/apps.sh: begin (generated from bench/results/apps.md; do not edit by hand) -->'
end_mark='<!-- bench/apps.sh: end -->'
if [[ $results -ef $root/bench/results && -f $results_md ]] &&
  grep -qxF "$begin_mark" "$results_md" && grep -qxF "$end_mark" "$results_md"; then
  block=$(mktemp)
  { echo "$begin_mark"; echo; cat "$results/apps.md"; echo; echo "$end_mark"; } >"$block"
  awk -v b="$begin_mark" -v e="$end_mark" -v f="$block" '
    $0 == b { while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip' "$results_md" >"$block.md"
  cat "$block.md" >"$results_md"
  rm -f "$block" "$block.md"
  say "rewrote the bench/apps.sh block of $results_md"
fi

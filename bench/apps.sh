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
#   bench/apps.sh        env: BUILD_DIR (build), RESULTS_DIR (bench/results),
#                        REPETITIONS (5), SKIP_BUILD=1
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
results=${RESULTS_DIR:-$root/bench/results}
repetitions=${REPETITIONS:-5}
say() { echo "bench/apps.sh: $*" >&2; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cmake -S "$root" -B "$build" >/dev/null
  nice -n 10 cmake --build "$build" --parallel 1 --target bench_json_build bench_templates
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

#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 in their own tree, replays every
# saved regression input, then fuzzes each target for a while over a scratch
# copy of its seed corpus (the repo's corpus is never written to).
#
#   tests/fuzz/run.sh [seconds_per_target=20] [build_dir=/tmp/brubeck-fuzz-build]
#
# Environment: FUZZ_TARGETS="fuzz_query fuzz_cookies" runs only those;
# FUZZ_JOBS=N builds with N jobs (default 1); FUZZ_KEEP=1 keeps the scratch
# corpora and logs. Exits non-zero if a regression input or a fuzzing run
# crashes; the crashing input is left in BUILD_DIR/artifacts/ and its path
# printed. Needs no network.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
BUILD_DIR="${2:-/tmp/brubeck-fuzz-build}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JOBS="${FUZZ_JOBS:-1}"
ALL_TARGETS=(fuzz_frame_json fuzz_frame_tnetstring fuzz_query fuzz_multipart fuzz_cookies
  fuzz_signed_cookie fuzz_routes fuzz_route_patterns)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"

if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [seconds_per_target] [build_dir]" >&2
  exit 2
fi
for tool in clang-14 clang++-14 cmake; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (deploy/install-deps)" >&2; exit 2; }
done

start=$(date +%s)
echo "== building fuzz targets in $BUILD_DIR (clang-14, -j$JOBS)"
mkdir -p "$BUILD_DIR"
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$HERE" -B "$BUILD_DIR" >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log" >&2; exit 1; }
fi
nice cmake --build "$BUILD_DIR" -j "$JOBS" >"$BUILD_DIR/build.log" 2>&1 ||
  { tail -n 60 "$BUILD_DIR/build.log" >&2; exit 1; }
echo "   built in $(($(date +%s) - start)) s"

ARTIFACTS="$BUILD_DIR/artifacts"
mkdir -p "$ARTIFACTS"
SCRATCH="$(mktemp -d /tmp/brubeck-fuzz-run.XXXXXX)"
if [[ "${FUZZ_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$SCRATCH"' EXIT; fi

# ASan/UBSan: stop at the first report. A 64 MiB quarantine instead of 256:
# fuzz_route_patterns compiles dozens of RE2s per input and its RSS creeps up
# with the default one (1 GiB after 100k runs), towards -rss_limit_mb.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()

echo "== replaying regression inputs"
for t in "${TARGETS[@]}"; do
  dir="$HERE/regressions/$t"
  [[ -d "$dir" ]] || continue
  mapfile -t files < <(find "$dir" -type f ! -name '*.md' | sort)
  ((${#files[@]})) || continue
  if nice "$BUILD_DIR/$t" "${files[@]}" >"$SCRATCH/$t.replay.log" 2>&1; then
    echo "   $t: ${#files[@]} input(s) ok"
  else
    echo "   $t: REGRESSION (log below)"
    tail -n 40 "$SCRATCH/$t.replay.log"
    failed+=("$t (regression)")
  fi
done

echo "== fuzzing ${#TARGETS[@]} target(s), ${SECONDS_PER_TARGET} s each"
for t in "${TARGETS[@]}"; do
  corpus="$SCRATCH/corpus/$t"
  mkdir -p "$corpus"
  if [[ -d "$HERE/corpus/$t" ]]; then cp "$HERE/corpus/$t"/* "$corpus"/; fi
  log="$SCRATCH/$t.log"
  status=0
  nice "$BUILD_DIR/$t" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$t-" >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  if ((status == 0)); then
    printf '   %-22s ok     execs %9s (%s/s)  cov %5s  ft %6s  corpus %4s\n' "$t" "${execs:-?}" \
      "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  else
    artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -n 1 | cut -d' ' -f5 || true)
    printf '   %-22s CRASH  execs %9s  exit %d  input %s\n' "$t" "${execs:-?}" "$status" \
      "${artifact:-?}"
    grep -E 'ERROR:|SUMMARY:|runtime error|#[0-9]+ 0x' "$log" | head -n 20 | sed 's/^/      /'
    cp "$log" "$ARTIFACTS/$t.log"
    failed+=("$t")
  fi
done

echo "== done in $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]} (logs and inputs in $ARTIFACTS)" >&2
  exit 1
fi

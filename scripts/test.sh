#!/bin/sh
# test.sh - install what is missing, build, and run PPDB's whole suite.
#
#   1. the normal build (gcc, warnings are errors): every test but `slow`;
#   2. the sanitizer build (clang, ASan + UBSan, libFuzzer): `unit`,
#      `integration`, `sim` (small sizes) and `fuzz` (PPDB_FUZZ_SECONDS each).
#
# Both suites always run; the script fails if either fails. The last line is
# the combined count over both runs. Set PPDB_TEST_ONLY=normal|asan to run
# one build, PPDB_CTEST_ARGS to pass extra ctest arguments (e.g. -R engine).
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${PPDB_JOBS:-2}

scripts/install-deps.sh || exit 1

status=0
passed=0 failed=0 skipped=0

count_junit() { # file -> adds to the totals
  t=$(sed -n 's/^[[:space:]]*tests="\([0-9]*\)".*/\1/p' "$1" | head -n1)
  f=$(sed -n 's/^[[:space:]]*failures="\([0-9]*\)".*/\1/p' "$1" | head -n1)
  s=$(sed -n 's/^[[:space:]]*skipped="\([0-9]*\)".*/\1/p' "$1" | head -n1)
  d=$(sed -n 's/^[[:space:]]*disabled="\([0-9]*\)".*/\1/p' "$1" | head -n1)
  : "${t:=0}" "${f:=0}" "${s:=0}" "${d:=0}"
  passed=$((passed + t - f - s - d))
  failed=$((failed + f))
  skipped=$((skipped + s + d))
}

run_suite() { # preset builddir label-args...
  preset=$1 dir=$2
  shift 2
  echo "==> configure and build: $preset"
  if ! cmake --preset "$preset" >"$root/$dir.configure.log" 2>&1; then
    cat "$root/$dir.configure.log"; echo "configure failed: $preset"; status=1; failed=$((failed + 1)); return
  fi
  if ! cmake --build "$dir" -j "$jobs"; then
    echo "build failed: $preset"; status=1; failed=$((failed + 1)); return
  fi
  echo "==> test: $preset"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure --output-junit "$root/$dir/junit.xml" "$@" ${PPDB_CTEST_ARGS:-}) || status=1
  if [ -f "$dir/junit.xml" ]; then count_junit "$dir/junit.xml"; else failed=$((failed + 1)); fi
}

case "${PPDB_TEST_ONLY:-all}" in
  normal) run_suite ci build -LE slow ;;
  asan) run_suite asan-ci build-asan -L 'unit|integration|sim|fuzz' -LE slow ;;
  *)
    run_suite ci build -LE slow
    run_suite asan-ci build-asan -L 'unit|integration|sim|fuzz' -LE slow
    ;;
esac

echo "all suites: $passed passed, $failed failed, $skipped skipped"
exit $status

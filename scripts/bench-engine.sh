#!/bin/sh
# bench-engine.sh - run `ppdb-bench engine` (PPDB's engine against LevelDB,
# RocksDB and LMDB; docs/benchmarks.md) with compression on and off, and
# write the tables with the machine's description and the exact commands.
#
# Installs the packages it needs (scripts/install-deps.sh), exports the
# committed tree (git archive HEAD, so the figures belong to one commit and
# not to files being edited) and builds it in Release in a tree of its own. Extra arguments go to
# ppdb-bench (e.g. --num=10000000, --engines=ppdb,leveldb).
#
# Environment: BUILD_DIR (build tree, default build-bench-release),
# BENCH_DIR (database directory on a real disk, default /var/tmp/ppdb-bench),
# NUM (default 1000000), OUT (report file, default $BUILD_DIR/bench-engine.md).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench-release}
DIR=${BENCH_DIR:-/var/tmp/ppdb-bench}
NUM=${NUM:-1000000}
OUT=${OUT:-$BUILD/bench-engine.md}

"$ROOT/scripts/install-deps.sh"
mkdir -p "$BUILD"
rm -rf "$BUILD/src"
mkdir "$BUILD/src"
git -C "$ROOT" archive HEAD | tar -x -C "$BUILD/src"
cmake -S "$BUILD/src" -B "$BUILD/obj" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPPDB_BENCH_PEERS=ON >/dev/null
cmake --build "$BUILD/obj" --target ppdb-bench -j2
BIN="$BUILD/obj/bench/ppdb-bench"
mkdir -p "$DIR"

{
  echo "## ppdb-bench engine, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(free -g | awk '/^Mem:/ {print $2}') GiB memory, kernel $(uname -r),"
  echo "database directory $DIR on $(df -T "$DIR" | awk 'NR==2 {print $2}'),"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
} >"$OUT"

for comp in on off; do
  cmd="ppdb-bench engine --num=$NUM --compression=$comp --dir=$DIR --json $*"
  echo "running: $cmd" >&2
  # shellcheck disable=SC2086
  "$BIN" engine --num="$NUM" --compression="$comp" --dir="$DIR" --json "$@" \
    >"$BUILD/bench-engine-$comp.jsonl" 2>"$BUILD/bench-engine-$comp.txt" || true
  {
    echo "### compression $comp"
    echo
    echo "Command: \`$cmd\`"
    cat "$BUILD/bench-engine-$comp.txt"
    echo
  } >>"$OUT"
done
echo "report: $OUT; JSON lines: $BUILD/bench-engine-on.jsonl, $BUILD/bench-engine-off.jsonl" >&2

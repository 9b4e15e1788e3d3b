#!/usr/bin/env bash
# test_engine_install.sh BUILD_DIR EXAMPLE_C CC [EXTRA_CFLAGS]
#
# Installs the engine's component (library, headers, ppdb-engine.pc) with
# `cmake --install` into a fresh temporary prefix, then builds the example
# program from the installed files only - `$CC example.c $(pkg-config
# --cflags --libs ppdb-engine)`, the source copied out of the tree so no
# project header can leak in - runs it on a fresh database, and checks the
# library's SONAME and that it exports only ppdb_* symbols.
set -euo pipefail
build=$1 example=$2 cc=$3 extra=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" --component ppdb-engine >"$tmp/install.log"
pc=$(find "$tmp/prefix" -name ppdb-engine.pc | head -n 1)
[ -n "$pc" ] || { echo "ppdb-engine.pc not installed"; cat "$tmp/install.log"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir ppdb-engine)
[ -f "$(pkg-config --variable=includedir ppdb-engine)/ppdb/ppdb_engine.h" ] ||
    { echo "ppdb_engine.h not under the installed includedir"; exit 1; }

cp "$example" "$tmp/engine_example.c"
# shellcheck disable=SC2046,SC2086
$cc $extra -o "$tmp/engine_example" "$tmp/engine_example.c" $(pkg-config --cflags --libs ppdb-engine)
LD_LIBRARY_PATH=$libdir "$tmp/engine_example" "$tmp/db" | tee "$tmp/out.txt"
grep -qx ok "$tmp/out.txt"
# Reopening the database it wrote works too.
LD_LIBRARY_PATH=$libdir "$tmp/engine_example" "$tmp/db" >/dev/null

so=$(ls "$libdir"/libppdb_engine.so.*.*.* | head -n 1)
if command -v readelf >/dev/null; then
    readelf -d "$so" | grep -q 'SONAME.*libppdb_engine\.so\.[0-9]' ||
        { echo "no SONAME in $so"; exit 1; }
fi
if command -v nm >/dev/null; then
    bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^ppdb_/ {print $3}' |
          grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' | head -n 5 || true)
    [ -z "$bad" ] || { echo "exports non-ppdb symbols: $bad"; exit 1; }
fi
echo "install test ok (prefix $tmp/prefix)"

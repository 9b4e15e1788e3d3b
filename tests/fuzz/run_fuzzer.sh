#!/bin/sh
# run_fuzzer.sh BINARY CORPUS_DIR WORK_DIR SECONDS
# Runs a libFuzzer target for SECONDS over a scratch copy of its seed corpus
# (the checked-in corpus is never modified). Fails on any crash, leak,
# sanitizer report or timeout; the crashing input is left in WORK_DIR.
set -eu
bin=$1 corpus=$2 work=$3 secs=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$corpus" ]; then
  cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
fi
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"

#!/bin/sh
# test_peer_mesh.sh PPDB_PEER - membership between real processes on loopback.
#
#  1. five nodes joined by seeds converge: each sees five alive members;
#  2. kill -9 of one is seen as dead by all four others;
#  3. restarted with the same data directory it rejoins with the same id
#     and a higher incarnation, alive at every node;
#  4. a node with a different cluster key is never admitted, and the CLI
#     with a wrong key is refused with exit code 4.
# Every node is started by this script and killed by PID on exit, pass or
# fail. Every wait is bounded.
set -u
bin=$1
dir=$(mktemp -d /tmp/ppdb-mesh-test.XXXXXX)
base=$((20000 + $$ % 20000))
pids=""
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
cleanup() {
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$bin" keygen --out "$dir/k1" 2>/dev/null || fail "keygen"
"$bin" keygen --out "$dir/k2" 2>/dev/null || fail "keygen"

addr() { echo "127.0.0.1:$((base + $1))"; }
start() { # i keyfile [seed]
  set -- "$1" "$2" "${3:-}"
  extra=""
  [ -n "$3" ] && extra="--seed $3"
  # shellcheck disable=SC2086
  "$bin" run --data-dir "$dir/n$1" --listen "$(addr "$1")" --cluster-key-file "$2" \
    --mdns off --log-level info $extra >>"$dir/n$1.log" 2>&1 &
  eval "pid$1=$!"
  pids="$pids $!"
}
members() { # i [keyfile] -> JSON
  "$bin" members --json --node "$(addr "$1")" --cluster-key-file "${2:-$dir/k1}" --timeout-ms 2000
}
count() { # i state -> number of members in that state
  members "$1" 2>/dev/null | grep -o "\"state\":\"$2\"" | wc -l
}
wait_for() { # seconds description command...
  secs=$1 what=$2
  shift 2
  t0=$(date +%s)
  while ! "$@"; do
    [ $(($(date +%s) - t0)) -ge "$secs" ] && fail "$what (after ${secs}s)"
    sleep 0.2
  done
  echo "ok: $what ($(($(date +%s) - t0))s)"
}
all_see() { # n state nodes...
  n=$1 state=$2
  shift 2
  for i in "$@"; do [ "$(count "$i" "$state")" -eq "$n" ] || return 1; done
}

start 1 "$dir/k1"
for i in 2 3 4 5; do start "$i" "$dir/k1" "$(addr 1)"; done
wait_for 20 "5 nodes converge" all_see 5 alive 1 2 3 4 5

id3=$("$bin" id --data-dir "$dir/n3") || fail "id"
inc3=$(members 1 | sed -n "s/.*\"id\":\"$id3\"[^}]*\"incarnation\":\([0-9]*\).*/\1/p")
[ -n "$inc3" ] || fail "node 3 not listed by node 1"
kill -9 "$pid3"
wait "$pid3" 2>/dev/null
wait_for 30 "kill -9 of node 3 seen dead by the other four" all_see 1 dead 1 2 4 5

start 3 "$dir/k1" "$(addr 1)"
wait_for 20 "node 3 rejoins alive everywhere" all_see 5 alive 1 2 3 4 5
[ "$("$bin" id --data-dir "$dir/n3")" = "$id3" ] || fail "node 3 changed id"
inc3b=$(members 1 | sed -n "s/.*\"id\":\"$id3\"[^}]*\"incarnation\":\([0-9]*\).*/\1/p")
[ "$inc3b" -gt "$inc3" ] || fail "incarnation did not grow ($inc3 -> $inc3b)"
echo "ok: same id $id3, incarnation $inc3 -> $inc3b"

start 6 "$dir/k2" "$(addr 1)"
sleep 5
for i in 1 2 3 4 5; do
  [ "$(count "$i" alive)" -eq 5 ] || fail "node $i admitted the wrong-key node"
  members "$i" | grep -q "$(addr 6)" && fail "node $i lists the wrong-key node"
done
echo "ok: wrong-key node never admitted"
"$bin" members --node "$(addr 1)" --cluster-key-file "$dir/k2" --timeout-ms 2000 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 4 ] || fail "CLI with the wrong key exited $rc, expected 4"
echo "ok: CLI with the wrong key refused (exit 4)"
echo "test_peer_mesh: all checks passed"

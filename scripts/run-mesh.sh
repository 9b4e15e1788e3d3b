#!/bin/sh
# run-mesh.sh - install what is missing, build, and start a local PPDB mesh:
# three nodes on loopback sharing a fresh cluster key, joined by seeds (mDNS
# off: nothing multicasts). Prints the members as node 1 sees them and each
# node's status, then keeps the mesh running until Ctrl-C, when every node
# leaves gracefully.
#
#   scripts/run-mesh.sh            run until Ctrl-C
#   scripts/run-mesh.sh --once     print, then stop the mesh and exit
#
# Environment: PPDB_MESH_NODES (default 3), PPDB_MESH_PORT (first port,
# default 7401), PPDB_MESH_DIR (data directories; default a new temp dir).
set -eu
cd "$(dirname "$0")/.."
once=0
[ "${1:-}" = "--once" ] && once=1
nodes=${PPDB_MESH_NODES:-3}
port=${PPDB_MESH_PORT:-7401}

scripts/install-deps.sh
echo "run-mesh: building ppdb-peer (first time: a minute or two)"
cmake --preset default >/dev/null
cmake --build build --target ppdb-peer -j 2 >/dev/null
bin=$(pwd)/build/ppdb-peer

dir=${PPDB_MESH_DIR:-$(mktemp -d /tmp/ppdb-mesh.XXXXXX)}
mkdir -p "$dir"
pids=""
cleanup() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" keygen --out "$dir/cluster.key" 2>/dev/null

seed=127.0.0.1:$port
i=1
while [ "$i" -le "$nodes" ]; do
  addr=127.0.0.1:$((port + i - 1))
  set -- run --data-dir "$dir/node$i" --listen "$addr" --cluster-key-file "$dir/cluster.key" \
    --mdns off --log-level warn
  [ "$i" -gt 1 ] && set -- "$@" --seed "$seed"
  "$bin" "$@" >"$dir/node$i.log" 2>&1 &
  pids="$pids $!"
  i=$((i + 1))
done

q() { "$bin" "$@" --node "$seed" --cluster-key-file "$dir/cluster.key"; }
# Wait (bounded) until node 1 sees every node alive.
tries=0
until [ "$(q status --json 2>/dev/null | sed -n 's/.*"alive":\([0-9]*\).*/\1/p')" = "$nodes" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ]; then
    echo "run-mesh: the mesh did not converge in 20 s; logs in $dir" >&2
    exit 1
  fi
  sleep 0.2
done

echo "== members, as 127.0.0.1:$port sees them"
q members
i=1
while [ "$i" -le "$nodes" ]; do
  echo
  echo "== status of 127.0.0.1:$((port + i - 1))"
  "$bin" status --node "127.0.0.1:$((port + i - 1))" --cluster-key-file "$dir/cluster.key"
  i=$((i + 1))
done
echo
echo "data and logs: $dir"
if [ "$once" = 1 ]; then
  exit 0
fi
echo "mesh running; query it with: $bin members --node $seed --cluster-key-file $dir/cluster.key"
echo "Ctrl-C stops every node (graceful leave)."
wait

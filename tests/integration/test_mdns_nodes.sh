#!/usr/bin/env bash
# test_mdns_nodes.sh PPDB_PEER - node level: `ppdb-peer run` with no seeds.
#
# Three nodes of one mesh start together, each in its own namespace of the
# LAN harness (tests/lan/lan.sh), with --mdns on and no --seed; a fourth runs
# with another cluster key. Each of the three must list the other two as
# alive (`ppdb-peer members --json`), and none may ever list the fourth.
# Repeated ROUNDS times with fresh keys and data directories; the time from
# a node's start to being seen alive by both others is printed (p50, p95,
# max; polling adds up to one poll period) and p95 must be <= LIMIT_MS.
set -u
PEER=$(realpath "${1:?usage: test_mdns_nodes.sh PPDB_PEER}")
ROUNDS=${PPDB_MDNS_ROUNDS:-5}
LIMIT_MS=${PPDB_MDNS_NODE_LIMIT_MS:-1500}
. "$(dirname "$0")/../lan/lan.sh"
lan_require
lan_up 4 || { echo "FAIL: lan_up" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; for f in "$LAN_DIR"/*.log; do echo "== $f" >&2; tail -20 "$f" >&2; done; exit 1; }
now_ms() { date +%s%3N; }
node_id() { sed -n 's/^ppdb-peer: node \([0-9a-f]\{40\}\) .*/\1/p' "$1"; }
alive_ids() { # I KEY -> ids listed alive by node I
    lan_exec "$1" env PPDB_CLUSTER_KEY="$2" "$PEER" members --json --node "$(lan_addr "$1"):7400" \
        --timeout-ms 500 2>/dev/null | grep -o '"id":"[0-9a-f]\{40\}","addr":[^}]*"state":"alive"' |
        cut -d'"' -f4
}

for r in $(seq 1 "$ROUNDS"); do
    KEY_A=$(head -c32 /dev/urandom | base64)
    KEY_B=$(head -c32 /dev/urandom | base64)
    pids=()
    for i in 1 2 3 4; do
        key=$KEY_A; [ $i = 4 ] && key=$KEY_B
        eval "start$i=$(now_ms)"
        lan_spawn $i "$LAN_DIR/r$r.n$i.log" env PPDB_CLUSTER_KEY="$key" "$PEER" run \
            --listen "$(lan_addr $i):7400" --data-dir "$LAN_DIR/r$r.d$i" --mdns on
        pids+=($LAN_LAST)
    done
    for i in 1 2 3 4; do
        n=0; until [ -n "$(node_id "$LAN_DIR/r$r.n$i.log")" ]; do
            n=$((n + 1)); [ $n -lt 100 ] || fail "round $r: node $i did not start"; sleep 0.05; done
        eval "id$i=$(node_id "$LAN_DIR/r$r.n$i.log")"
    done
    declare -A seen=()
    deadline=$(($(now_ms) + 15000))
    while [ ${#seen[@]} -lt 6 ]; do
        [ "$(now_ms)" -lt $deadline ] || fail "round $r: not converged (${!seen[*]})"
        for i in 1 2 3; do
            ids=$(alive_ids $i "$KEY_A")
            t=$(now_ms)
            echo "$ids" | grep -q "$id4" && fail "round $r: node $i admitted the foreign node"
            for j in 1 2 3; do
                [ $i = $j ] && continue
                [ -n "${seen[$i.$j]:-}" ] && continue
                echo "$ids" | grep -q "$(eval echo \$id$j)" && seen[$i.$j]=$t
            done
        done
        sleep 0.05
    done
    for j in 1 2 3; do
        last=0
        for i in 1 2 3; do [ $i = $j ] && continue; [ "${seen[$i.$j]}" -gt $last ] && last=${seen[$i.$j]}; done
        echo $((last - $(eval echo \$start$j))) >>"$LAN_DIR/samples"
    done
    for i in 1 2 3; do
        [ "$(alive_ids $i "$KEY_A" | grep -c "$id4")" = 0 ] || fail "round $r: foreign node admitted"
    done
    unset seen
    for p in "${pids[@]}"; do lan_kill "$p"; done
done
sort -n "$LAN_DIR/samples" | awk -v lim="$LIMIT_MS" '{ v[NR] = $1 } END {
    p50 = v[int((NR - 1) * 0.5) + 1]; i95 = int((NR - 1) * 0.95 + 0.999) + 1; if (i95 > NR) i95 = NR
    printf "nodes: n=%d start->seen-alive-by-all ms p50=%d p95=%d max=%d\n", NR, p50, v[i95], v[NR]
    exit (v[i95] <= lim ? 0 : 1) }' || fail "p95 above ${LIMIT_MS} ms"
echo PASS

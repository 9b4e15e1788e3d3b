#!/usr/bin/env bash
# test_mdns_discovery.sh PROBE - discovery level, on a namespaced LAN.
#
# Three probes (tests/integration/mdns_probe.c) of one mesh and a fourth of
# another mesh (another cluster key) start together in four namespaces, each
# with its own avahi-daemon. Every probe of the mesh must find the other two
# with their TXT (node id, version, key fingerprint) and address:port, and
# never the fourth; the fourth finds nobody; each of the three resolved the
# fourth's service and dropped it (stats filtered >= 1). Repeated over
# ROUNDS starts; the time from a probe's announce to being found by all the
# others is printed (p50, p95, max) and p95 must stay under LIMIT_MS. A last
# round gives all four the same service name: the names collide and are
# renamed, each host at most twice (per-host suffixes, no lockstep), and
# discovery still completes.
set -u
PROBE=$(realpath "${1:?usage: test_mdns_discovery.sh PROBE}")
ROUNDS=${PPDB_MDNS_ROUNDS:-5}
LIMIT_MS=${PPDB_MDNS_LIMIT_MS:-1500}
. "$(dirname "$0")/../lan/lan.sh"
lan_require
lan_up 4 || { echo "FAIL: lan_up" >&2; exit 1; }

CUR=0 # the round under way: a failure shows only its probes' output
fail() { echo "FAIL: $*" >&2; for f in "$LAN_DIR"/r$CUR.*.out; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
node_id() { printf "%02x%038d" "$1" "$2"; } # round, node -> 40 hex digits
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | head -1; }

# run_round R NAME_MODE: starts 4 probes, waits, checks; appends samples.
run_round() {
    local r=$1 same=$2 i name pids=()
    CUR=$r
    # Fresh keys each round: the records of the previous round's probes
    # linger in the daemons' caches, and belong to other meshes now.
    local KEY_A KEY_B
    KEY_A=$(head -c32 /dev/urandom | base64)
    KEY_B=$(head -c32 /dev/urandom | base64)
    for i in 1 2 3 4; do
        name="r${r}n$i"; [ "$same" = same ] && name=ppdb
        local key=$KEY_A expect=2
        [ $i = 4 ] && { key=$KEY_B; expect=0; }
        lan_spawn $i "$LAN_DIR/r$r.$i.out" "$PROBE" --id "$(node_id $r $i)" --key "$key" \
            --port $((7000 + i)) --name "$name" --expect $expect --linger-ms 2500 --run-ms 15000
        pids+=($LAN_LAST)
    done
    for i in 0 1 2; do wait "${pids[$i]}" || fail "round $r: probe $((i + 1)) exited $?"; done
    lan_kill "${pids[3]}"
    for i in 1 2 3 4; do grep -q '^exit ' "$LAN_DIR/r$r.$i.out" || fail "round $r: probe $i did not finish"; done
    grep -q '^found' "$LAN_DIR/r$r.4.out" && fail "round $r: the foreign probe found a peer"
    for i in 1 2 3; do
        local out="$LAN_DIR/r$r.$i.out"
        grep -q "$(node_id $r 4)" "$out" && fail "round $r: probe $i saw the foreign probe"
        [ "$(grep '^stats' "$out" | field filtered)" -ge 1 ] || fail "round $r: probe $i filtered nothing"
        local ann; ann=$(grep '^announce' "$out" | field wall_ms)
        local last=0 j
        for j in 1 2 3; do
            [ $j = $i ] && continue
            local line; line=$(grep "^found id=$(node_id $r $i) " "$LAN_DIR/r$r.$j.out") ||
                fail "round $r: probe $j never found probe $i"
            [ "$(echo "$line" | field addr)" = "$(lan_addr $i):$((7000 + i))" ] || fail "round $r: bad addr: $line"
            [ "$(echo "$line" | field v)" = 1 ] || fail "round $r: bad version: $line"
            local t; t=$(echo "$line" | field wall_ms)
            [ "$t" -gt "$last" ] && last=$t
        done
        echo "$((last - ann))" >>"$LAN_DIR/samples.$same"
    done
}

report() { # FILE LABEL -> prints "p50 p95 max" of the samples
    sort -n "$1" | awk -v label="$2" '{ v[NR] = $1 } END {
        p50 = v[int((NR - 1) * 0.50) + 1]; p95 = v[int((NR - 1) * 0.95 + 0.999) + 1]
        if (p95 == "") p95 = v[NR]
        printf "%s: n=%d announce->found-by-all ms p50=%d p95=%d max=%d\n", label, NR, p50, p95, v[NR]
        print p95 > "/dev/stderr" }' 2>"$1.p95"
}

for r in $(seq 1 "$ROUNDS"); do run_round "$r" distinct; done
run_round $((ROUNDS + 1)) same
collisions=0
for i in 1 2 3 4; do
    c=$(grep '^stats' "$LAN_DIR/r$((ROUNDS + 1)).$i.out" | field collisions)
    # Each host's new name is its own: one rename parts it from the others
    # (two if it met a second collision on the way); a lockstep of
    # identical renames would show here as many.
    [ "$c" -le 2 ] || fail "same-name round: probe $i renamed $c times"
    [ $i = 4 ] || collisions=$((collisions + c))
done
[ $collisions -ge 2 ] || fail "same-name round: expected >= 2 renames, saw $collisions"
report "$LAN_DIR/samples.distinct" "distinct names ($ROUNDS starts x 3 probes)"
report "$LAN_DIR/samples.same" "same name, renamed after collisions ($collisions renames)"
p95=$(cat "$LAN_DIR/samples.distinct.p95")
[ "$p95" -le "$LIMIT_MS" ] || fail "p95 ${p95} ms > ${LIMIT_MS} ms"
echo "PASS"

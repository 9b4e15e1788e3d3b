#!/bin/sh
# test_simtool_determinism.sh - ppdb-sim replays a run bit for bit: the
# faults scenario (every part of the model: tails, loss, duplication,
# reordering, bandwidth, skew, drift, pause, crash, restart, partitions,
# churn) run twice with one seed gives one trace_hash, and another seed a
# different one. Also checks the report files: JSON keys, CSV columns and
# one row per simulated second, an SVG, and that a failing check exits 1
# printing the seed and a replay command.
# Usage: test_simtool_determinism.sh PPDB_SIM SCENARIO [NODES]
set -eu
sim=$1
scn=$2
nodes=${3:-200}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
seed=${PPDB_SEED:-11}
echo "seed=$seed (rerun: PPDB_SEED=$seed $0 $*)"

run() { # out-prefix seed
    "$sim" "$scn" --nodes "$nodes" --seed "$2" --quiet --json "$dir/$1.json" \
        --csv "$dir/$1.csv" --svg "$dir/$1.svg"
}
hash_of() { sed -n 's/.*"trace_hash":"\([0-9a-f]*\)".*/\1/p' "$1"; }

run a "$seed"
run b "$seed"
run c "$((seed + 1))"
ha=$(hash_of "$dir/a.json"); hb=$(hash_of "$dir/b.json"); hc=$(hash_of "$dir/c.json")
echo "trace_hash: seed $seed: $ha $hb; seed $((seed + 1)): $hc"
[ -n "$ha" ] || { echo "FAIL: no trace_hash in the JSON report"; exit 1; }
[ "$ha" = "$hb" ] || { echo "FAIL: same seed, different runs; replay: $sim $scn --nodes $nodes --seed $seed"; exit 1; }
[ "$ha" != "$hc" ] || { echo "FAIL: another seed gave the same trace"; exit 1; }
cmp -s "$dir/a.csv" "$dir/b.csv" || { echo "FAIL: same seed, different time series"; exit 1; }

for key in nodes seed sim_s wall_s trace_hash converged_s detect_p50_s detect_p99_s \
    false_suspect false_dead msgs_per_node_s bytes_per_node_s peak_rss_bytes \
    bytes_per_member_entry; do
    grep -q "\"$key\":" "$dir/a.json" || { echo "FAIL: JSON lacks $key"; exit 1; }
done
head -1 "$dir/a.csv" | grep -qx 't_s,live,convergence,suspects,dead,msgs,bytes' ||
    { echo "FAIL: CSV header"; exit 1; }
rows=$(($(wc -l < "$dir/a.csv") - 1))
secs=$(sed -n 's/.*"sim_s":\([0-9]*\).*/\1/p' "$dir/a.json")
[ "$rows" -eq "$secs" ] || { echo "FAIL: $rows CSV rows for $secs simulated seconds"; exit 1; }
grep -q '<polyline' "$dir/a.svg" || { echo "FAIL: SVG has no curve"; exit 1; }

# the second run of `runs 2` replays alone with its own seed (no state
# leaks from one run into the next, libsodium's hook included)
"$sim" --nodes 30 --duration 10s --seed "$seed" --runs 2 --quiet --json "$dir/r2.json"
"$sim" --nodes 30 --duration 10s --seed "$((seed + 1))" --quiet --json "$dir/r1.json"
h2=$(sed -n '2s/.*"trace_hash":"\([0-9a-f]*\)".*/\1/p' "$dir/r2.json")
h1=$(hash_of "$dir/r1.json")
echo "runs 2, second run: $h2; alone: $h1"
[ -n "$h1" ] && [ "$h1" = "$h2" ] || { echo "FAIL: a run depends on the run before it"; exit 1; }

# a check that cannot hold: exit 1, the seed and a replay command
set +e
"$sim" --nodes 20 --duration 5s --seed 77 --quiet --check nodes '>' 1000 2> "$dir/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "FAIL: failing check exited $rc"; cat "$dir/err"; exit 1; }
grep -q 'CHECK FAILED.*seed=77' "$dir/err" && grep -q 'replay: .*--seed 77 --runs 1' "$dir/err" ||
    { echo "FAIL: no seed/replay line"; cat "$dir/err"; exit 1; }
echo "test_simtool_determinism: ok"

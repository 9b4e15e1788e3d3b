#!/usr/bin/env bash
# test_mdns_restart.sh PROBE - the Avahi daemon of one namespace restarts.
#
# Three probes of one mesh find each other; then node 1's avahi-daemon is
# stopped and started again while its probe keeps running. Probe 1 must go
# to state "waiting" and back to "running" (its Avahi client recreated),
# publish again and deliver its peers again; probes 2 and 3 must see node 1
# go (the daemon's goodbye) and find it again. Prints the time from the
# daemon's restart to node 1 being found again by both others.
set -u
PROBE=$(realpath "${1:?usage: test_mdns_restart.sh PROBE}")
. "$(dirname "$0")/../lan/lan.sh"
lan_require
lan_up 3 || { echo "FAIL: lan_up" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; for f in "$LAN_DIR"/p*.out; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | head -1; }
wait_for() { # FILE PATTERN TIMEOUT_S
    local n=0
    until grep -q "$2" "$1"; do
        n=$((n + 1)); [ $n -le $(($3 * 20)) ] || return 1
        sleep 0.05
    done
}
now_ms() { date +%s%3N; }

KEY=$(head -c32 /dev/urandom | base64)
id() { printf "%040d" "$1"; }
for i in 1 2 3; do
    lan_spawn $i "$LAN_DIR/p$i.out" "$PROBE" --id "$(id $i)" --key "$KEY" --port $((7100 + i)) \
        --name "restart$i" --expect 2 --run-ms 30000
    eval "pid$i=$LAN_LAST"
done
for i in 1 2 3; do wait_for "$LAN_DIR/p$i.out" '^complete' 10 || fail "probe $i did not find its peers"; done

lan_avahi_stop 1
wait_for "$LAN_DIR/p1.out" '^state waiting' 5 || fail "probe 1 did not notice the daemon leaving"
for i in 2 3; do wait_for "$LAN_DIR/p$i.out" "^lost id=$(id 1)" 5 || fail "probe $i did not see node 1 go"; done
t0=$(now_ms)
lan_avahi_start 1 || fail "avahi restart"
for i in 2 3; do wait_for "$LAN_DIR/p$i.out" "^refound id=$(id 1)" 10 || fail "probe $i did not find node 1 again"; done
wait_for "$LAN_DIR/p1.out" "^update id=$(id 2)" 10 || fail "probe 1 did not deliver node 2 again"
wait_for "$LAN_DIR/p1.out" "^update id=$(id 3)" 10 || fail "probe 1 did not deliver node 3 again"
last=0
for i in 2 3; do
    t=$(grep "^refound id=$(id 1)" "$LAN_DIR/p$i.out" | field wall_ms)
    [ "$t" -gt "$last" ] && last=$t
done
for i in 1 2 3; do lan_kill "$(eval echo \$pid$i)"; done
grep -c '^state running' "$LAN_DIR/p1.out" | grep -qx 2 || fail "probe 1: expected running twice"
[ "$(grep '^stats' "$LAN_DIR/p1.out" | field published)" -ge 2 ] || fail "probe 1 did not publish again"
[ "$(grep -c 'level=warn' "$LAN_DIR/p1.out")" -le 1 ] || fail "probe 1 logged more than one warning"
for i in 1 2 3; do grep -q '^exit ' "$LAN_DIR/p$i.out" || fail "probe $i did not exit cleanly"; done
echo "daemon restart -> node 1 found again by all: $((last - t0)) ms (restarts: $(grep '^stats' "$LAN_DIR/p1.out" | field restarts))"
echo "PASS"

#!/usr/bin/env bash
# test_mdns_nodaemon.sh PROBE - discovery without a daemon.
#
# Node 3 has no D-Bus at all: announce and browse answer EUNAVAIL, the state
# is "unavailable", and exactly one warning is logged. Node 2 has a bus but
# no avahi-daemon: the state is "waiting" with exactly one warning and no
# further log lines while it waits; when a daemon is started there later,
# the probe connects, publishes and finds node 1 (and node 1 finds it),
# without being restarted. Nothing crashes; every probe exits cleanly.
set -u
PROBE=$(realpath "${1:?usage: test_mdns_nodaemon.sh PROBE}")
. "$(dirname "$0")/../lan/lan.sh"
lan_require
lan_up 3 --no-avahi 2 --no-dbus 3 || { echo "FAIL: lan_up" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; for f in "$LAN_DIR"/p*.out; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
wait_for() { # FILE PATTERN TIMEOUT_S
    local n=0
    until grep -q "$2" "$1"; do
        n=$((n + 1)); [ $n -le $(($3 * 20)) ] || return 1
        sleep 0.05
    done
}
KEY=$(head -c32 /dev/urandom | base64)
id() { printf "%040d" "$1"; }
lan_spawn 1 "$LAN_DIR/p1.out" "$PROBE" --id "$(id 1)" --key "$KEY" --port 7201 --expect 1 --linger-ms 3000 --run-ms 20000
pid1=$LAN_LAST
lan_spawn 2 "$LAN_DIR/p2.out" "$PROBE" --id "$(id 2)" --key "$KEY" --port 7202 --expect 1 --linger-ms 3000 --run-ms 20000
pid2=$LAN_LAST
lan_spawn 3 "$LAN_DIR/p3.out" "$PROBE" --id "$(id 3)" --key "$KEY" --port 7203 --run-ms 3000
pid3=$LAN_LAST

wait "$pid3" || fail "probe 3 exited $?"
p3="$LAN_DIR/p3.out"
grep -qx 'browse rc=EUNAVAIL' "$p3" || fail "probe 3: browse should be EUNAVAIL"
grep -q '^announce rc=EUNAVAIL' "$p3" || fail "probe 3: announce should be EUNAVAIL"
[ "$(grep -c '^state ' "$p3")" = 1 ] && grep -q '^state unavailable' "$p3" || fail "probe 3: state"
[ "$(grep -c 'level=warn' "$p3")" = 1 ] || fail "probe 3: expected exactly one warning"
[ "$(grep -c 'level=' "$p3")" = 1 ] || fail "probe 3: log lines beyond the warning"

p2="$LAN_DIR/p2.out"
wait_for "$p2" '^state waiting' 5 || fail "probe 2: not waiting"
sleep 2
[ "$(grep -c 'level=' "$p2")" = 1 ] || fail "probe 2: log spam while waiting"
grep -q 'level=warn.*avahi daemon not running' "$p2" || fail "probe 2: the warning"
grep -q '^found' "$LAN_DIR/p1.out" && fail "probe 1 found a node with no daemon"
lan_avahi_start 2 || fail "avahi start"
wait "$pid2" || fail "probe 2 did not find node 1 once its daemon came ($?)"
wait "$pid1" || fail "probe 1 did not find node 2 ($?)"
[ "$(grep -c 'level=warn' "$p2")" = 1 ] || fail "probe 2: more than one warning"
grep -q '^state running' "$p2" || fail "probe 2: never running"
for f in "$LAN_DIR"/p*.out; do echo "== $f"; cat "$f"; done
echo "PASS"

# lan.sh - a real LAN of network namespaces for integration tests.
#
# Source it from a bash test script. It builds, entirely inside namespaces
# the test creates (nothing touches the host's interfaces, nothing
# multicasts outside them):
#
#   switch namespace  "<tag>sw"  with bridge br0 (multicast snooping off)
#   node namespaces   "<tag>n1".."<tag>nN", each with eth0 (a veth whose
#                     other end is a port of br0) at 10.77.0.(10+i)/24
#
# Each node also gets a private mount namespace (tmpfs on /run) held open by
# a `sleep` process, with its own dbus-daemon (system bus at
# /run/dbus/system_bus_socket) and, unless told otherwise, its own
# avahi-daemon restricted to eth0, IPv4 only. Programs run with lan_exec /
# lan_spawn join both the network and the mount namespace of their node, so
# avahi-client finds that node's bus.
#
# Interface (all functions return non-zero on failure):
#   lan_require            exit 77 (SKIP) unless root with ip, unshare,
#                          nsenter, dbus-daemon and avahi-daemon available
#   lan_up N [opts]        build the LAN; opts: --no-avahi I (node I has a bus
#                          but no avahi-daemon), --no-dbus I (neither). Sets
#                          `trap lan_down EXIT`.
#   lan_addr I             prints node I's address (10.77.0.(10+I))
#   lan_exec I CMD...      runs CMD in node I, in the foreground
#   lan_spawn I OUT CMD... runs CMD in node I in the background, stdout and
#                          stderr to OUT; records the PID and leaves it in
#                          LAN_LAST (do not call it in $(...): the process
#                          must stay a child of the test shell)
#   lan_avahi_stop I / lan_avahi_start I   stop (TERM, waited) / start node I's daemon
#   lan_dbus_start I       start node I's dbus-daemon (after --no-dbus)
#   lan_kill PID           TERM a spawned PID, KILL it after 3 s, reap it
#   lan_down               kill every recorded PID, delete the namespaces
#                          and the temp dir (idempotent; runs on EXIT)
# Variables: LAN_DIR (temp dir: configs and daemon logs), LAN_N.
# Teardown goes by recorded PID only, never by process name.

LAN_SUBNET=10.77.0
LAN_PIDS=()
LAN_LAST=
LAN_N=0
LAN_DIR=
LAN_TAG=

lan_require() {
    if [ "$(id -u)" != 0 ]; then echo "SKIP: not root" >&2; exit 77; fi
    for t in ip unshare nsenter dbus-daemon avahi-daemon; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t missing" >&2; exit 77; }
    done
    local probe="ppdbprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then echo "SKIP: ip netns unavailable" >&2; exit 77; fi
    ip netns del "$probe"
}

lan_addr() { echo "$LAN_SUBNET.$((10 + $1))"; }

lan_holder() { cat "$LAN_DIR/n$1.holder"; }

lan_exec() {
    local i=$1; shift
    nsenter -t "$(lan_holder "$i")" -m -n "$@"
}

lan_spawn() {
    local i=$1 out=$2; shift 2
    nsenter -t "$(lan_holder "$i")" -m -n "$@" >"$out" 2>&1 &
    LAN_LAST=$!
    LAN_PIDS+=($!)
}

lan_kill() {
    local pid=$1 n=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

lan_write_configs() {
    local i=$1
    cat >"$LAN_DIR/dbus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
CONF
    cat >"$LAN_DIR/avahi-n$i.conf" <<CONF
[server]
host-name=ppdb-lan-$i
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
[wide-area]
enable-wide-area=no
[publish]
publish-workstation=no
publish-hinfo=no
publish-addresses=yes
[reflector]
enable-reflector=no
[rlimits]
CONF
}

lan_dbus_start() {
    local i=$1
    lan_spawn "$i" "$LAN_DIR/dbus-n$i.log" \
        dbus-daemon --config-file="$LAN_DIR/dbus.conf" --nofork --nopidfile
    echo "$LAN_LAST" >"$LAN_DIR/n$i.dbus"
    local n=0
    until lan_exec "$i" test -S /run/dbus/system_bus_socket; do
        n=$((n + 1)); [ $n -lt 100 ] || { echo "lan: dbus $i did not start" >&2; return 1; }
        sleep 0.05
    done
}

lan_avahi_start() {
    local i=$1 log="$LAN_DIR/avahi-n$i.log"
    : >"$log"
    lan_spawn "$i" "$log" avahi-daemon --file="$LAN_DIR/avahi-n$i.conf" --no-chroot \
        --no-drop-root --no-rlimits
    echo "$LAN_LAST" >"$LAN_DIR/n$i.avahi"
    local n=0
    until grep -q "Server startup complete" "$log"; do
        n=$((n + 1)); [ $n -lt 200 ] || { echo "lan: avahi $i did not start" >&2; cat "$log" >&2; return 1; }
        sleep 0.05
    done
}

lan_avahi_stop() {
    local i=$1
    [ -s "$LAN_DIR/n$i.avahi" ] || return 0
    lan_kill "$(cat "$LAN_DIR/n$i.avahi")"
    : >"$LAN_DIR/n$i.avahi"
}

lan_node_up() {
    local i=$1 ns="${LAN_TAG}n$1" sw="${LAN_TAG}sw"
    ip netns add "$ns" || return 1
    ip -n "$sw" link add "v$i" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$sw" link set "v$i" master br0 up || return 1
    ip -n "$ns" link set lo up || return 1
    ip -n "$ns" addr add "$(lan_addr "$i")/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up multicast on || return 1
    # The holder: a private mount namespace with its own /run, kept open.
    ip netns exec "$ns" unshare -m --propagation private sh -c \
        'mount -t tmpfs tmpfs /run && mkdir -p /run/dbus /run/avahi-daemon && exec sleep 100000' &
    LAN_PIDS+=($!)
    echo $! >"$LAN_DIR/n$i.holder"
    local n=0
    until nsenter -t "$!" -m test -d /run/avahi-daemon 2>/dev/null; do
        n=$((n + 1)); [ $n -lt 100 ] || { echo "lan: holder $i did not start" >&2; return 1; }
        sleep 0.05
    done
}

lan_up() {
    local n=$1; shift
    local no_avahi=" " no_dbus=" "
    while [ $# -gt 0 ]; do
        case $1 in
        --no-avahi) no_avahi="$no_avahi$2 "; shift 2 ;;
        --no-dbus) no_dbus="$no_dbus$2 "; shift 2 ;;
        *) echo "lan_up: bad option $1" >&2; return 1 ;;
        esac
    done
    LAN_N=$n
    LAN_TAG="ppdb$$"
    LAN_DIR=$(mktemp -d /tmp/ppdb-lan.XXXXXX)
    trap lan_down EXIT
    trap 'exit 1' INT TERM
    local sw="${LAN_TAG}sw"
    ip netns add "$sw" || return 1
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge mcast_snooping 0 || return 1
    ip -n "$sw" link set br0 up || return 1
    for i in $(seq 1 "$n"); do
        lan_node_up "$i" || return 1
        lan_write_configs "$i"
    done
    for i in $(seq 1 "$n"); do
        case "$no_dbus" in *" $i "*) continue ;; esac
        lan_dbus_start "$i" || return 1
    done
    for i in $(seq 1 "$n"); do
        case "$no_dbus$no_avahi" in *" $i "*) continue ;; esac
        lan_avahi_start "$i" || return 1
    done
}

lan_down() {
    [ -n "$LAN_TAG" ] || return 0
    local pid
    for pid in "${LAN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in "${LAN_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    LAN_PIDS=()
    for i in $(seq 1 "$LAN_N"); do ip netns del "${LAN_TAG}n$i" 2>/dev/null; done
    ip netns del "${LAN_TAG}sw" 2>/dev/null
    [ -n "$LAN_DIR" ] && rm -rf "$LAN_DIR"
    LAN_TAG=
}

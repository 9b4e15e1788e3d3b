#!/bin/sh
# install-deps.sh - install every Debian 12 package PPDB's build, tests,
# fuzzers and benchmarks need. Idempotent and non-interactive: it does
# nothing when all are present, and runs `apt-get update` only when
# something is missing. Needs root (or sudo) only in that case.
#
# Daemons that come with these packages (avahi-daemon, redis-server,
# memcached) must never start outside the network namespaces a test makes:
# a policy-rc.d that refuses service starts is in place during the install.
set -eu

PACKAGES="
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev llvm
  libuv1-dev libsodium-dev libmsgpack-dev libavahi-client-dev
  liblz4-dev libzstd-dev libsnappy-dev
  libleveldb-dev librocksdb-dev liblmdb-dev
  avahi-daemon avahi-utils dbus-daemon iproute2 procps util-linux psmisc
  redis-server redis-tools memcached
  gnuplot-nox python3
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi

echo "install-deps: installing:$missing"
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
echo "install-deps: done"

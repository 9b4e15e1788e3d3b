#!/bin/sh
# Fails if protocol code (peer/, dht/) reaches the OS for time, randomness or
# sockets directly instead of through the env seam (src/ppdb_env.h): any
# libuv call, libsodium's own generator (randombytes_*, crypto_*_keypair,
# which draw from it; use the *_seed_keypair forms with env randomness).
# Comment lines are ignored. Usage: check_protocol_os_calls.sh SOURCE_DIR
set -eu
root=$1
pattern='\b(time|gettimeofday|clock_gettime|clock|rand|random|srand|srandom|arc4random|getrandom|randombytes_buf|randombytes_random|randombytes_uniform|socket|bind|connect|sendto|sendmsg|send|recvfrom|recvmsg|recv|select|poll|epoll_wait|uv_[a-z_]+|nanosleep|usleep|sleep|getentropy|timespec_get|ftime|arc4random_buf|arc4random_uniform|randombytes_stir|randombytes_close|crypto_(box|kx|sign|box_curve25519xchacha20poly1305)_keypair|crypto_[a-z0-9_]*_keygen|sendmmsg|recvmmsg)[[:space:]]*\('
files=$(find "$root/peer" "$root/dht" -name '*.c' -o -name '*.h' 2>/dev/null | sort)
[ -n "$files" ] || { echo "no protocol sources found under $root"; exit 1; }
hits=$(grep -nHE "$pattern" $files | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|\*|/\*)' || true)
if [ -n "$hits" ]; then
  echo "protocol code calls the OS directly (use the env seam):"
  echo "$hits"
  exit 1
fi
echo "checked $(echo "$files" | wc -l) protocol sources: no direct OS calls"

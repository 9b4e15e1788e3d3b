#!/bin/sh
# Fails if protocol code (peer/, dht/) reaches the OS for time, randomness or
# sockets directly instead of through the env seam (src/ppdb_env.h).
# Comment lines are ignored. Usage: check_protocol_os_calls.sh SOURCE_DIR
set -eu
root=$1
pattern='\b(time|gettimeofday|clock_gettime|clock|rand|random|srand|srandom|arc4random|getrandom|randombytes_buf|randombytes_random|randombytes_uniform|socket|bind|connect|sendto|sendmsg|send|recvfrom|recvmsg|recv|select|poll|epoll_wait|uv_now|uv_hrtime|uv_udp_send|uv_tcp_connect|nanosleep|usleep|sleep)[[:space:]]*\('
files=$(find "$root/peer" "$root/dht" -name '*.c' -o -name '*.h' 2>/dev/null | sort)
[ -n "$files" ] || { echo "no protocol sources found under $root"; exit 1; }
hits=$(grep -nHE "$pattern" $files | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|\*|/\*)' || true)
if [ -n "$hits" ]; then
  echo "protocol code calls the OS directly (use the env seam):"
  echo "$hits"
  exit 1
fi
echo "checked $(echo "$files" | wc -l) protocol sources: no direct OS calls"

# ppdb_wire: node identity, cluster keys and keyring, the msgpack envelope
# and message registry, sealed datagrams with replay protection.
add_library(ppdb_wire STATIC
  ${CMAKE_CURRENT_LIST_DIR}/identity.c
  ${CMAKE_CURRENT_LIST_DIR}/keyfile.c
  ${CMAKE_CURRENT_LIST_DIR}/keyring.c
  ${CMAKE_CURRENT_LIST_DIR}/envelope.c
  ${CMAKE_CURRENT_LIST_DIR}/replay.c
  ${CMAKE_CURRENT_LIST_DIR}/dgram.c)
target_link_libraries(ppdb_wire PUBLIC ppdb_base ppdb_mp ppdb_env PkgConfig::SODIUM)

# bench_dgram: seal/open cost and loopback datagram throughput (docs/formats/wire.md).
add_executable(bench_dgram ${PROJECT_SOURCE_DIR}/bench/bench_dgram.c)
target_link_libraries(bench_dgram PRIVATE ppdb_wire ppdb_env)

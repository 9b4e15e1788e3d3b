# ppdb_stream: the Noise handshake, sealed frames and request/response over
# the env's byte streams (src/ppdb_stream.h, docs/formats/wire.md, "Streams").
add_library(ppdb_stream STATIC
  ${CMAKE_CURRENT_LIST_DIR}/noise.c
  ${CMAKE_CURRENT_LIST_DIR}/hs.c
  ${CMAKE_CURRENT_LIST_DIR}/frame.c
  ${CMAKE_CURRENT_LIST_DIR}/stream.c
  ${CMAKE_CURRENT_LIST_DIR}/rpc.c)
target_link_libraries(ppdb_stream PUBLIC ppdb_wire ppdb_env ppdb_mp ppdb_base PkgConfig::SODIUM)

# Stream throughput between two processes (bench/bench_stream.c); not a test.
if(EXISTS ${PROJECT_SOURCE_DIR}/bench/bench_stream.c)
  add_executable(bench_stream ${PROJECT_SOURCE_DIR}/bench/bench_stream.c)
  target_link_libraries(bench_stream PRIVATE ppdb_stream)
endif()

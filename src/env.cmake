# ppdb_env: addresses, the timer heap, and the libuv implementation of the env seam
# (with LAN discovery through avahi-client on the same loop).
add_library(ppdb_env STATIC
  ${CMAKE_CURRENT_LIST_DIR}/addr.c
  ${CMAKE_CURRENT_LIST_DIR}/timer_heap.c
  ${CMAKE_CURRENT_LIST_DIR}/env_uv.c
  ${CMAKE_CURRENT_LIST_DIR}/service.c
  ${CMAKE_CURRENT_LIST_DIR}/discovery_avahi.c)
target_link_libraries(ppdb_env PUBLIC ppdb_base PkgConfig::LIBUV PkgConfig::SODIUM
                      PkgConfig::AVAHI)

# The binaries. Included by the top-level CMakeLists.txt after every library.

add_executable(ppdb-peer
  ${CMAKE_CURRENT_LIST_DIR}/main_peer.c
  ${CMAKE_CURRENT_LIST_DIR}/peer_cli.c
  ${CMAKE_CURRENT_LIST_DIR}/peer_run.c
  ${CMAKE_CURRENT_LIST_DIR}/peer_mdns.c
  ${CMAKE_CURRENT_LIST_DIR}/peer_query.c)
target_link_libraries(ppdb-peer PRIVATE ppdb_admin ppdb_peer ppdb_stream ppdb_wire ppdb_env
                      PkgConfig::LIBUV PkgConfig::SODIUM)
install(TARGETS ppdb-peer RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

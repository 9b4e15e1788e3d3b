# ppdb_base: errors, asserts, logging, counted allocation, buffers, hashing, rng.
add_library(ppdb_base STATIC
  ${CMAKE_CURRENT_LIST_DIR}/err.c
  ${CMAKE_CURRENT_LIST_DIR}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/alloc.c
  ${CMAKE_CURRENT_LIST_DIR}/buf.c
  ${CMAKE_CURRENT_LIST_DIR}/hash.c
  ${CMAKE_CURRENT_LIST_DIR}/rng.c
  ${CMAKE_CURRENT_LIST_DIR}/config.c)
target_include_directories(ppdb_base PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(ppdb_base PUBLIC Threads::Threads)
set_target_properties(ppdb_base PROPERTIES POSITION_INDEPENDENT_CODE ON)

# ppdb_mp: strict msgpack over msgpack-c.
add_library(ppdb_mp STATIC ${CMAKE_CURRENT_LIST_DIR}/mp.c)
target_link_libraries(ppdb_mp PUBLIC ppdb_base PkgConfig::MSGPACK)

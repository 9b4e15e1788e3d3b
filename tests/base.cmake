# The base layer, msgpack helpers and the pieces of the env seam shared by
# both implementations (addresses, timer heap).
ppdb_test(test_base SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_base.c LIBS ppdb_env LABELS unit)
ppdb_test(test_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_config.c LABELS unit)
ppdb_test(test_mp SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_mp.c LIBS ppdb_mp LABELS unit)
ppdb_fuzz(fuzz_mp SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_mp.c LIBS ppdb_mp)

# Protocol sources reach time, randomness and sockets only through the env.
add_test(NAME protocol_os_calls
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/check_protocol_os_calls.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(protocol_os_calls PROPERTIES LABELS unit)

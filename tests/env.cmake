# The libuv env: timers, time, randomness, work, datagrams, two loops; streams.
ppdb_test(test_env_uv SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_env_uv.c
          LIBS ppdb_env LABELS unit TIMEOUT 120)
ppdb_test(test_env_uv_tcp SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_env_uv_tcp.c
          LIBS ppdb_env LABELS unit TIMEOUT 120)
ppdb_test(test_env_uv_close SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_env_uv_close.c
          LIBS ppdb_env LABELS unit TIMEOUT 120)

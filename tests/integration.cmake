# Real processes on loopback through the libuv env.
ppdb_test(test_pingpong_uv SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_pingpong_uv.c
          LIBS ppdb_pingpong ppdb_env LABELS integration TIMEOUT 120)

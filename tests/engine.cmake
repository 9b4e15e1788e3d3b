# Tests of the engine's write path, read path and recovery (engine/).
if(TARGET ppdb_engine)
  foreach(t basic model faults group compact)
    ppdb_test(test_engine_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_engine_${t}.c
              LIBS ppdb_engine LABELS unit)
  endforeach()
  # kill -9 in the middle of a million writes on the real file system.
  ppdb_test(test_engine_crash SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_crash.c
            LIBS ppdb_engine LABELS integration TIMEOUT 120)
  # The log reader and recovery on arbitrary log bytes.
  ppdb_fuzz(fuzz_wal SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_wal.c LIBS ppdb_engine)
endif()

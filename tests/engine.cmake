# Tests of the engine's write path, read path and recovery (engine/).
if(TARGET ppdb_engine)
  foreach(t basic model faults)
    ppdb_test(test_engine_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_engine_${t}.c
              LIBS ppdb_engine LABELS unit)
  endforeach()
endif()

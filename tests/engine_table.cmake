# Tests of the engine's table layer (engine/table.h). They link the engine
# library; with -DPPDB_ENGINE_TABLE_STANDALONE=ON (or before the engine
# library exists) they link a library of the table layer alone instead
# (see engine/table.cmake).
if(TARGET ppdb_engine AND NOT PPDB_ENGINE_TABLE_STANDALONE)
  set(PPDB_TABLE_TEST_LIBS ppdb_engine ppdb_fs)
else()
  set(PPDB_ENGINE_TABLE_STANDALONE ON)
  include(${PROJECT_SOURCE_DIR}/engine/table.cmake)
  set(PPDB_TABLE_TEST_LIBS ppdb_engine_table ppdb_fs)
endif()

foreach(t block roundtrip bloom cache corrupt)
  ppdb_test(test_table_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_table_${t}.c
            LIBS ${PPDB_TABLE_TEST_LIBS} LABELS unit)
  target_include_directories(test_table_${t} PRIVATE ${PROJECT_SOURCE_DIR}/engine)
endforeach()

ppdb_fuzz(fuzz_sst SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_sst.c LIBS ${PPDB_TABLE_TEST_LIBS})
target_include_directories(fuzz_sst PRIVATE ${PROJECT_SOURCE_DIR}/engine)

# The table layer of the engine (engine/table.h): blocks, bloom filter,
# compression, block cache, table builder and reader. engine/CMakeLists.txt
# includes this fragment and builds PPDB_ENGINE_TABLE_SOURCES into the
# engine library, linking PPDB_ENGINE_TABLE_LIBS.
set(PPDB_ENGINE_TABLE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/block.c
  ${CMAKE_CURRENT_LIST_DIR}/bloom.c
  ${CMAKE_CURRENT_LIST_DIR}/cache.c
  ${CMAKE_CURRENT_LIST_DIR}/compress.c
  ${CMAKE_CURRENT_LIST_DIR}/table_builder.c
  ${CMAKE_CURRENT_LIST_DIR}/table_reader.c)
set(PPDB_ENGINE_TABLE_LIBS PkgConfig::LZ4 PkgConfig::ZSTD Threads::Threads)

# Temporary: a library of the table layer alone, for its tests, while the
# engine library does not exist yet (tests/engine_table.cmake asks for it).
if(PPDB_ENGINE_TABLE_STANDALONE AND NOT TARGET ppdb_engine_table)
  add_library(ppdb_engine_table STATIC ${PPDB_ENGINE_TABLE_SOURCES})
  target_include_directories(ppdb_engine_table PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(ppdb_engine_table PUBLIC ppdb_base ppdb_fs ${PPDB_ENGINE_TABLE_LIBS})
endif()

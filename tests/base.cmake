# The base layer, msgpack helpers and the pieces of the env seam shared by
# both implementations (addresses, timer heap).
ppdb_test(test_base SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_base.c LIBS ppdb_env LABELS unit)
ppdb_test(test_mp SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_mp.c LIBS ppdb_mp LABELS unit)
ppdb_fuzz(fuzz_mp SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_mp.c LIBS ppdb_mp)

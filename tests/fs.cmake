# File-system seam: the contract suite runs against both implementations,
# each executable adding its own implementation-specific tests.
if(TARGET ppdb_fs)
  ppdb_test(test_fs_posix
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_fs_posix.c
            ${CMAKE_CURRENT_LIST_DIR}/unit/test_fs_contract.c
    LIBS ppdb_fs LABELS unit TIMEOUT 120)
  ppdb_test(test_fs_mem
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_fs_mem.c
            ${CMAKE_CURRENT_LIST_DIR}/unit/test_fs_contract.c
    LIBS ppdb_fs LABELS unit TIMEOUT 120)
endif()

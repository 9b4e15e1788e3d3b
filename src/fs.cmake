# ppdb_fs: the file-system seam (ppdb_fs.h) - POSIX and in-memory
# implementations plus the helpers and background thread they share.
add_library(ppdb_fs STATIC
  ${CMAKE_CURRENT_LIST_DIR}/fs_util.c
  ${CMAKE_CURRENT_LIST_DIR}/fs_posix.c
  ${CMAKE_CURRENT_LIST_DIR}/fs_mem.c)
target_link_libraries(ppdb_fs PUBLIC ppdb_base Threads::Threads)
set_target_properties(ppdb_fs PROPERTIES POSITION_INDEPENDENT_CODE ON)

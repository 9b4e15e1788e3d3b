# Tests of the engine's write path, read path and recovery (engine/).
if(TARGET ppdb_engine)
  foreach(t basic model faults group pipe compact iter snapshot ttl readers)
    ppdb_test(test_engine_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_engine_${t}.c
              LIBS ppdb_engine LABELS unit)
  endforeach()
  # kill -9 at random moments during synced writes, flushes and compactions:
  # 50 kills (about 10 s; 15 s under ASan); the slow variant does 400.
  ppdb_test(test_engine_crash SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_crash.c
            LIBS ppdb_engine LABELS integration TIMEOUT 120 ARGS 99 50)
  add_test(NAME test_engine_crash_slow COMMAND test_engine_crash 7 400)
  set_tests_properties(test_engine_crash_slow PROPERTIES LABELS slow TIMEOUT 1200)
  # A full disk on a real file system: a small tmpfs in a private mount
  # namespace (skipped without the privilege).
  ppdb_test(test_engine_nospace
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_nospace.c
            LIBS ppdb_engine LABELS integration)
  # The inspection tool on a healthy and on a damaged directory.
  if(TARGET ppdb-engine)
    ppdb_test(test_engine_tool SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_tool.c
              LIBS ppdb_engine LABELS integration ARGS $<TARGET_FILE:ppdb-engine>)
    add_dependencies(test_engine_tool ppdb-engine)
  endif()
  # The log reader and recovery on arbitrary log bytes.
  ppdb_fuzz(fuzz_wal SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_wal.c LIBS ppdb_engine)
endif()

# The installed library: cmake --install of the ppdb-engine component into a
# temporary prefix, the example of docs/examples built against it with
# pkg-config, and run. Sanitizer builds link the example with the same
# compiler and sanitizer flags as the library.
if(TARGET ppdb_engine_shared)
  if(PPDB_SANITIZE)
    set(ppdb_install_cc ${CMAKE_C_COMPILER})
    set(ppdb_install_flags "-fsanitize=address,undefined")
  else()
    set(ppdb_install_cc cc)
    set(ppdb_install_flags "")
  endif()
  add_test(NAME test_engine_install
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/test_engine_install.sh
                   ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR}/docs/examples/engine_example.c
                   ${ppdb_install_cc} "${ppdb_install_flags}")
  set_tests_properties(test_engine_install PROPERTIES LABELS integration TIMEOUT 120)
endif()

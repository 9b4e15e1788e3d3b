# The stream layer: Noise, frames, request/response over the env.
ppdb_test(test_noise SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_noise.c LIBS ppdb_stream
          LABELS unit)
ppdb_test(test_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_frame.c LIBS ppdb_stream
          LABELS unit)
ppdb_test(test_stream_rpc SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_stream_rpc.c
          LIBS ppdb_stream ppdb_env LABELS integration TIMEOUT 120)
ppdb_test(test_stream_reject SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_stream_reject.c
          LIBS ppdb_stream ppdb_env LABELS integration TIMEOUT 120)
ppdb_fuzz(fuzz_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_frame.c LIBS ppdb_stream)
ppdb_fuzz(fuzz_handshake SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_handshake.c LIBS ppdb_stream)
if(TARGET ppdb_sim)
  ppdb_test(test_stream_sim SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_stream_sim.c
            LIBS ppdb_stream ppdb_sim LABELS sim TIMEOUT 120)
endif()

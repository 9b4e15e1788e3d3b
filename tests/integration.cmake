# Real processes on loopback through the libuv env.
ppdb_test(test_pingpong_uv SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_pingpong_uv.c
          LIBS ppdb_pingpong ppdb_env LABELS integration TIMEOUT 120)

# Membership between real ppdb-peer processes on loopback.
add_test(NAME test_peer_mesh
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/integration/test_peer_mesh.sh $<TARGET_FILE:ppdb-peer>)
set_tests_properties(test_peer_mesh PROPERTIES LABELS integration TIMEOUT 180 SKIP_RETURN_CODE 77)

# SWIM membership and the node (peer/): unit tests of the member table,
# rules, broadcast queue and Lifeguard math; simulator runs at 1,000 nodes.
if(TARGET ppdb_peer AND TARGET ppdb_memcheck)
  ppdb_test(test_membership_join SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_membership_join.c
            LIBS ppdb_memcheck ppdb_peer ppdb_sim LABELS sim TIMEOUT 300)
endif()

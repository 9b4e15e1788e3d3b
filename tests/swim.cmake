# SWIM membership and the node (peer/): unit tests of the member table,
# rules, broadcast queue and Lifeguard math; simulator runs at 1,000 nodes.
if(TARGET ppdb_peer AND TARGET ppdb_memcheck)
  ppdb_test(test_membership_join SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_membership_join.c
            LIBS ppdb_memcheck ppdb_peer ppdb_sim LABELS sim TIMEOUT 300)
endif()
if(TARGET ppdb_peer AND TARGET ppdb_memcheck)
  ppdb_test(test_membership_loss SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_membership_loss.c
            LIBS ppdb_memcheck ppdb_peer ppdb_sim LABELS sim TIMEOUT 300 ARGS 0x1055)
  add_test(NAME test_membership_loss_seed2 COMMAND test_membership_loss 0x2055)
  add_test(NAME test_membership_loss_seed3 COMMAND test_membership_loss 0x3055)
  set_tests_properties(test_membership_loss_seed2 test_membership_loss_seed3 PROPERTIES
                       LABELS sim TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
if(TARGET ppdb_peer)
  ppdb_test(test_swim_members SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_swim_members.c
            LIBS ppdb_peer LABELS unit)
endif()
if(TARGET ppdb_peer)
  ppdb_test(test_swim_delta SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_swim_delta.c
            LIBS ppdb_peer LABELS unit)
endif()
if(TARGET ppdb_peer)
  ppdb_test(test_swim_suspect SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_swim_suspect.c
            LIBS ppdb_peer LABELS unit)
endif()
if(TARGET ppdb_peer AND TARGET ppdb_memcheck AND TARGET ppdb_stream)
  ppdb_test(test_node_sim SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_node_sim.c
            LIBS ppdb_memcheck ppdb_peer ppdb_stream ppdb_sim LABELS sim TIMEOUT 120)
endif()
if(TARGET ppdb_peer AND TARGET ppdb_memcheck)
  # 10,000 nodes through 3 seeds for 10 simulated minutes: cost figures.
  ppdb_test(test_membership_scale SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_membership_scale.c
            LIBS ppdb_memcheck ppdb_peer ppdb_sim LABELS "sim;slow" TIMEOUT 1800)
endif()

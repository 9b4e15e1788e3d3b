# The simulator (sim/): its network model, streams, and whole-world
# determinism (a seed replays a run; ping/pong on 1,000 nodes).
ppdb_test(test_sim_net SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_sim_net.c
          LIBS ppdb_sim LABELS sim)
ppdb_test(test_sim_stream SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_sim_stream.c
          LIBS ppdb_sim LABELS sim)
ppdb_test(test_sim_determinism SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_sim_determinism.c
          LIBS ppdb_sim LABELS sim)
if(TARGET ppdb_pingpong)
  ppdb_test(test_sim_pingpong SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_sim_pingpong.c
            LIBS ppdb_sim ppdb_pingpong LABELS sim)
  # The same on 10,000 nodes (the world's target size).
  add_test(NAME test_sim_pingpong_10k COMMAND test_sim_pingpong 0x9199 10000)
  set_tests_properties(test_sim_pingpong_10k PROPERTIES LABELS "sim;slow" TIMEOUT 600)
endif()
ppdb_test(test_sim_oom SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_sim_oom.c
          LIBS ppdb_sim LABELS sim)
# The membership checkers themselves (sim/check_membership.c), fed by hand.
if(TARGET ppdb_memcheck AND TARGET ppdb_peer)
  ppdb_test(test_memcheck SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_memcheck.c
            LIBS ppdb_memcheck ppdb_peer ppdb_sim LABELS sim)
endif()

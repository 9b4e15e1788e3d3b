# ppdb-sim and the extended simulator model (sim/fault.c, sim/scenario.c,
# sim/report.c, sim/main_sim.c). See docs/simulator.md.
ppdb_test(test_simtool_model SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_simtool_model.c
          LIBS ppdb_sim LABELS sim)
if(TARGET ppdb-sim)
  ppdb_test(test_simtool_scenario SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_simtool_scenario.c
            LIBS ppdb_simtool LABELS sim)
  set(_scn ${CMAKE_SOURCE_DIR}/docs/scenarios)
  # Same seed, same trace (and another seed, another): in CI.
  add_test(NAME test_simtool_determinism
           COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/sim/test_simtool_determinism.sh
                   $<TARGET_FILE:ppdb-sim> ${_scn}/faults.scn 200)
  set_tests_properties(test_simtool_determinism PROPERTIES LABELS sim TIMEOUT 600)
  # The membership scenarios through ppdb-sim, checks in the scenario files.
  if(PPDB_SANITIZE)
    set(_join_args --nodes 300)
  else()
    set(_join_args)
  endif()
  add_test(NAME test_simtool_join_1k
           COMMAND ppdb-sim ${_scn}/join-1k.scn ${_join_args} --quiet --json -)
  set_tests_properties(test_simtool_join_1k PROPERTIES LABELS sim TIMEOUT 600)
  add_test(NAME test_simtool_partition_end
           COMMAND ppdb-sim ${CMAKE_CURRENT_LIST_DIR}/sim/partition-end.scn --quiet --json -)
  set_tests_properties(test_simtool_partition_end PROPERTIES LABELS sim TIMEOUT 300)
  add_test(NAME test_simtool_loss_1h COMMAND ppdb-sim ${_scn}/loss-1h.scn --json -)
  set_tests_properties(test_simtool_loss_1h PROPERTIES LABELS "sim;slow" TIMEOUT 3600)
  add_test(NAME test_simtool_mesh_10k COMMAND ppdb-sim ${_scn}/mesh-10k.scn --json -)
  set_tests_properties(test_simtool_mesh_10k PROPERTIES LABELS "sim;slow" TIMEOUT 3600)
endif()

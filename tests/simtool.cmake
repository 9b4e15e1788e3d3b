# ppdb-sim and the extended simulator model (sim/fault.c, sim/scenario.c,
# sim/report.c, sim/main_sim.c). See docs/simulator.md.
ppdb_test(test_simtool_model SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/test_simtool_model.c
          LIBS ppdb_sim LABELS sim)

# Wire module: identity, keyring, envelope, replay table, sealed datagrams.
set(WIRE_UNIT ${CMAKE_CURRENT_LIST_DIR}/unit)
ppdb_test(test_wire_identity SOURCES ${WIRE_UNIT}/test_wire_identity.c LIBS ppdb_wire
          LABELS unit)
ppdb_test(test_wire_keyring SOURCES ${WIRE_UNIT}/test_wire_keyring.c LIBS ppdb_wire LABELS unit)
ppdb_test(test_wire_envelope SOURCES ${WIRE_UNIT}/test_wire_envelope.c LIBS ppdb_wire
          LABELS unit)
ppdb_test(test_wire_replay SOURCES ${WIRE_UNIT}/test_wire_replay.c LIBS ppdb_wire LABELS unit)
ppdb_test(test_wire_dgram SOURCES ${WIRE_UNIT}/test_wire_dgram.c LIBS ppdb_wire LABELS unit)
ppdb_fuzz(fuzz_dgram SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_dgram.c LIBS ppdb_wire)
ppdb_fuzz(fuzz_envelope SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_envelope.c LIBS ppdb_wire)
# Real sockets on 127.0.0.1 through the libuv env.
ppdb_test(test_dgram_mesh SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/test_dgram_mesh.c
          LIBS ppdb_wire ppdb_env LABELS integration TIMEOUT 60)
ppdb_test(test_wire_sodium_rng SOURCES ${WIRE_UNIT}/test_wire_sodium_rng.c LIBS ppdb_wire
          LABELS unit)

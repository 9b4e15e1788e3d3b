# LAN discovery (mDNS through Avahi) on a real namespaced LAN: tests/lan/lan.sh
# builds a bridge and network namespaces, each with its own dbus-daemon and
# avahi-daemon; the scripts exit 77 (SKIP) without root or `ip netns`.
add_executable(mdns_probe ${CMAKE_CURRENT_LIST_DIR}/integration/mdns_probe.c)
target_include_directories(mdns_probe PRIVATE ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(mdns_probe PRIVATE ppdb_wire ppdb_env ppdb_base)

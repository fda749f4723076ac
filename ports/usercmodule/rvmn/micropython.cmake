# MicroPython user C module glue (CMake-based ports: rp2, esp32): the natmod
# sources of native/ linked into the firmware as built-in modules.
add_library(usermod_rvmn INTERFACE)

set(RVMN_NATIVE ${CMAKE_CURRENT_LIST_DIR}/../../../native)
target_sources(usermod_rvmn INTERFACE
    ${RVMN_NATIVE}/rvmn_link/rvmn_link.c
    ${RVMN_NATIVE}/rvmn_p1/rvmn_p1.c
    ${RVMN_NATIVE}/rvmn_pick/rvmn_pick.c
    ${RVMN_NATIVE}/rvmn_cut/rvmn_cut.c
    ${RVMN_NATIVE}/rvmn_crc/rvmn_crc.c
)

target_link_libraries(usermod INTERFACE usermod_rvmn)

# USER_C_MODULES entry for CMake ports:
#   make -C ports/rp2 BOARD=RPI_PICO USER_C_MODULES=$(RVM)/ports/usercmodule/micropython.cmake
include(${CMAKE_CURRENT_LIST_DIR}/rvmn/micropython.cmake)

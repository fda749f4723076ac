# MicroPython user C module glue (make-based ports: unix, stm32, esp8266):
# links the natmod sources of native/ into the firmware as built-in modules
# rvmn_link, rvmn_p1, rvmn_pick, rvmn_cut, rvmn_crc (same C files; their
# `#else` branch registers each with MP_REGISTER_MODULE).
#   make -C ports/stm32 BOARD=PYBV11 USER_C_MODULES=$(RVM)/ports/usercmodule
RVMN_NATIVE := $(USERMOD_DIR)/../../../native

SRC_USERMOD_C += \
	$(RVMN_NATIVE)/rvmn_link/rvmn_link.c \
	$(RVMN_NATIVE)/rvmn_p1/rvmn_p1.c \
	$(RVMN_NATIVE)/rvmn_pick/rvmn_pick.c \
	$(RVMN_NATIVE)/rvmn_cut/rvmn_cut.c \
	$(RVMN_NATIVE)/rvmn_crc/rvmn_crc.c

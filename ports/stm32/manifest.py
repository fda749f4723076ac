# Pyboard v1.1 (STM32F405) firmware with the RVM-MP kernel frozen in:
#   make -C micropython/ports/stm32 BOARD=PYBV11 \
#        FROZEN_MANIFEST=$PWD/ports/stm32/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
include("../rvm_manifest.py", coherence=False)

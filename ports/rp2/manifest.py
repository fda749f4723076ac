# Raspberry Pi Pico / Pico 2 firmware with the RVM-MP kernel frozen in:
#   make -C micropython/ports/rp2 BOARD=RPI_PICO \
#        FROZEN_MANIFEST=$PWD/ports/rp2/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
include("../rvm_manifest.py", coherence=True)

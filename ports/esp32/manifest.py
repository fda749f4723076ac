# ESP32 / ESP32-S3 / ESP32-C3 firmware with the RVM-MP kernel frozen in:
#   make -C micropython/ports/esp32 BOARD=ESP32_GENERIC \
#        FROZEN_MANIFEST=$PWD/ports/esp32/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
include("../rvm_manifest.py", coherence=True)

# ESP8266 firmware with the RVM-MP kernel frozen in (no coherence engine:
# ~36 KB of heap).
#   make -C micropython/ports/esp8266 BOARD=ESP8266_GENERIC \
#        FROZEN_MANIFEST=$PWD/ports/esp8266/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
include("../rvm_manifest.py", coherence=False)

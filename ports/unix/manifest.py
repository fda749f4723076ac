# MicroPython unix port with the RVM-MP kernel frozen in (a simulated board
# whose kernel code does not use the heap):
#   make -C micropython/ports/unix FROZEN_MANIFEST=$PWD/ports/unix/manifest.py
include("$(PORT_DIR)/variants/manifest.py")
include("../rvm_manifest.py", coherence=True)

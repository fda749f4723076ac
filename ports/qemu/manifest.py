# The emulated Cortex-M3 board (qemu, MPS2_AN385; boards/qemu-an385.json)
# with the RVM-MP kernel frozen in:
#   make -C micropython/ports/qemu BOARD=MPS2_AN385 MICROPY_VFS_LFS2=1 \
#        FROZEN_MANIFEST=$PWD/ports/qemu/manifest.py
# For the board-like firmware (littlefs in emulated RAM, boot.py/main.py run
# at reset) also freeze the _boot.py of ../shared/firmware/qemu-mps2-an385
# and apply its main.c.diff (README there); then
# `rvm deploy --board qemu-an385 --frozen --port PORT` puts the rest.
include("$(PORT_DIR)/boards/manifest.py")
include("../rvm_manifest.py", coherence=False)

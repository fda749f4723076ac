"""An in-process board for host tests: the real Kernel and Control console
on a MemConsole, with a persistent witness store in a directory, behind a
LoopbackTransport. reboot() boots a fresh kernel on the same directory."""
import os

from rvm_mp import board, control
from rvm_mp.hal import Platform, MemConsole
from rvm_mp.kernel import Kernel
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore

from host_tools.rvm.transport import LoopbackTransport

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICE_ID = bytes(range(16))
KEY = bytes(range(32, 64))


class Board:
    def __init__(self, path, name="seed-64k"):
        self.path = path
        self.name = name
        self.boot = 0
        self.t = None
        self.power_on()

    def power_on(self):
        self.boot += 1
        prof = board.load(self.name, dirs=(os.path.join(ROOT, "boards"),))
        pf = Platform(self.path, device_id=DEVICE_ID, key=KEY)
        self.con = pf.attach_console(MemConsole())
        st = WitnessStore(os.path.join(self.path, "wit"), seg_records=32,
                          genesis=genesis_link(DEVICE_ID))
        log = WitnessLog(DEVICE_ID, boot=self.boot, key=KEY, ring=16, store=st)
        log.emit(1, 0, 0, self.boot)  # BOOT_BEGIN
        self.kernel = Kernel(pf, prof, log=log)
        self.control = control.Control(self.kernel, pf, board=self.name)
        if self.t is None:
            self.t = LoopbackTransport(self.control, self.con)
        else:
            # what was pending on the old console is lost, like a UART at reset
            self.t.control, self.t.console = self.control, self.con

    def reboot(self):
        log = self.kernel.log
        log.seal()
        log.flush()
        log.store.close()
        self.power_on()

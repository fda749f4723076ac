# ActionKind: the one table of witness record kinds, shared by the kernel and
# the host tools (host_tools imports this module). a..d of every kind are
# documented in docs/witness-kinds.md; a host test checks the two agree.
#
# Families by high nibble; each family owns its 16 codes:
#   0x0_ boot      0x1_ partition  0x2_ capability/proof  0x3_ IPC
#   0x4_ memory    0x5_ scheduler  0x6_ coherence         0x7_ fault
#   0x8_ device    0x9_ agent/code 0xA_ operator          0xF_ seal
from .compat import const

# flags (record byte 11)
F_DENIED = const(0x01)
F_DEGRADED = const(0x02)
TIER_SHIFT = const(2)  # bits 2-3: proof tier reached 0..3

# --- boot 0x0_
BOOT_BEGIN = const(0x01)
BOOT_PHASE = const(0x02)
BOOT_ATTEST = const(0x03)
SHUTDOWN = const(0x04)
CHAIN_RESTORED = const(0x05)
TORN_DISCARDED = const(0x06)
# --- partition 0x1_
PART_CREATE = const(0x10)
PART_STATE = const(0x11)
PART_TERMINATE = const(0x12)
PART_DENIED = const(0x13)
# --- capability / proof gate 0x2_
CAP_MINT = const(0x20)
CAP_DERIVE = const(0x21)
CAP_GRANT = const(0x22)
CAP_REVOKE = const(0x23)
CAP_DENIED = const(0x24)
CAP_ATTENUATE_SPLIT = const(0x25)
PROOF_P3 = const(0x26)
MERKLE_ROOT = const(0x27)
# --- IPC 0x3_
CHAN_CREATE = const(0x30)
CHAN_CLOSE = const(0x31)
IPC_SEND = const(0x32)
IPC_RECV = const(0x33)
IPC_DENIED = const(0x34)
IPC_FULL = const(0x35)
# --- memory 0x4_
REGION_ALLOC = const(0x40)
REGION_FREE = const(0x41)
REGION_WRITE = const(0x42)
REGION_DENIED = const(0x43)
TIER_MOVE = const(0x44)
CHECKPOINT = const(0x45)
REGION_ROLLBACK = const(0x46)
RECONSTRUCT = const(0x47)
REGION_SHARE = const(0x48)
REGION_REASSIGN = const(0x49)
DELTA_COMPACT = const(0x4A)
# --- scheduler 0x5_
EPOCH_SUMMARY = const(0x50)
MODE_CHANGE = const(0x51)
QUOTA_THROTTLE = const(0x52)
DEGRADED_ENTER = const(0x53)
DEGRADED_EXIT = const(0x54)
DEADLINE_MISS = const(0x55)
SWITCH_SAMPLE = const(0x56)
# --- coherence 0x6_
MINCUT_RUN = const(0x60)
MINCUT_BUDGET_EXCEEDED = const(0x61)
SPLIT = const(0x62)
MERGE = const(0x63)
MERGE_REFUSED = const(0x64)
MIGRATION_START = const(0x65)
MIGRATION_DONE = const(0x66)
MIGRATION_TIMEOUT = const(0x67)
PRESSURE = const(0x68)
REGION_ASSIGN = const(0x69)
PLACEMENT = const(0x6A)
# --- fault 0x7_
FAULT_F1_RESTART = const(0x70)
FAULT_F2_REBUILD = const(0x71)
FAULT_F3_ROLLBACK = const(0x72)
FAULT_F4_RESET = const(0x73)
FAULT_ESCALATE = const(0x74)
AGENT_FAULT = const(0x75)
# --- device 0x8_
LEASE_GRANT = const(0x80)
LEASE_EXPIRE = const(0x81)
LEASE_REVOKE = const(0x82)
LEASE_DENIED = const(0x83)
# --- agent / code 0x9_
BUNDLE_LOAD = const(0x90)
BUNDLE_REJECT = const(0x91)
IMPORT_DENIED = const(0x92)
AGENT_START = const(0x93)
AGENT_EXIT = const(0x94)
SYSCALL_DENIED = const(0x9A)
REFUSAL_FLOOD = const(0x9B)
AGENT_OUTPUT = const(0x9C)
# --- operator 0xA_
OP_COMMAND = const(0xA0)
OP_BAD_FRAME = const(0xA1)
OP_PULL = const(0xA2)
OP_DENIED = const(0xA3)
# --- seal 0xF_
SEAL = const(0xF0)          # HMAC-SHA256 seal
SEAL_ED25519 = const(0xF1)  # Ed25519 seal, signature bytes 0-15 (eseal.py)
SEAL_PART = const(0xF2)     # 16 more bytes of the record before it
KEY_ROTATE = const(0xF3)    # new Ed25519 public key, sealed by the old key


_FAMILIES = ("boot", "partition", "capability", "ipc", "memory", "scheduler",
             "coherence", "fault", "device", "agent", "operator")


def family(kind):
    """Family name of a kind code."""
    if kind >> 4 == 0xF:
        return "seal"
    f = kind >> 4
    return _FAMILIES[f] if f < len(_FAMILIES) else "unknown"


def names():
    """{code: NAME} for every kind (built on demand, not kept in RAM)."""
    out = {}
    g = globals()
    for k in g:
        v = g[k]
        if isinstance(v, int) and k.isupper() and not k.startswith("F_") \
                and k != "TIER_SHIFT" and not k.startswith("_"):
            out[v] = k
    return out


def name(kind):
    return names().get(kind, "KIND_%02X" % kind)

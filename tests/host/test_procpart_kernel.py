"""Kernel tests run again with "isolation": "process": every agent they
load runs in a child process. Only the tests that observe agents through
the kernel (witness records, queues, quotas) are listed; the others read
the agent's module globals, which live in the child in this mode (the
same behaviours are covered through channels in test_procpart.py, and the
demo agents by its appliance test)."""
import importlib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "kernel"))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process partitions need Linux")

CASES = [
    ("test_agent", "test_cpu_quota_throttles_busy_agent"),
    ("test_agent", "test_late_pick_is_a_deadline_miss"),
    ("test_agent", "test_bad_signature_never_runs"),
    ("test_faults", "test_f4_invariant_failure_seals_and_resets"),
]


@pytest.mark.parametrize("mod,name", CASES)
def test_kernel_test_in_process_isolation(mod, name, monkeypatch):
    import agentkit
    orig = agentkit.profile
    spawned = []

    def profile(**kw):
        kw.setdefault("isolation", "process")
        return orig(**kw)
    monkeypatch.setattr(agentkit, "profile", profile)
    from rvm_mp.appliance import procpart
    orig_spawn = procpart.ProcCoro._spawn

    def spawn(self, *a):
        spawned.append(self.pid)
        return orig_spawn(self, *a)
    monkeypatch.setattr(procpart.ProcCoro, "_spawn", spawn)
    m = importlib.import_module(mod)
    getattr(m, name)()
    if name != "test_bad_signature_never_runs":
        assert spawned, "no agent ran as a process"
    else:
        assert not spawned   # refused before anything ran

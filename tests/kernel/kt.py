# Helpers for kernel tests; runs on MicroPython and CPython alike.
import os
import sys

IS_MP = sys.implementation.name == "micropython"
_n = [0]


class SkipTest(Exception):
    pass


def skip(why):
    raise SkipTest(why)


def tmpdir(tag="t"):
    """A fresh, empty directory under $RVM_TEST_TMP (or /tmp)."""
    base = os.getenv("RVM_TEST_TMP") or "/tmp"
    _n[0] += 1
    rnd = "".join("%02x" % b for b in os.urandom(4))
    path = "%s/rvmk-%s-%d-%s" % (base, tag, _n[0], rnd)
    os.mkdir(path)
    return path


def rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def raises(exc, fn, *args):
    """Call fn(*args); assert it raises `exc`; return the exception."""
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def repo_root():
    return os.getenv("RVM_REPO") or "."


DEVICE_ID = bytes(range(16))
KEY = bytes(range(32, 64))

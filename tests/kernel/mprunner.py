# Tiny MicroPython-side test runner (also works under CPython).
# usage: micropython tests/kernel/mprunner.py REPO_ROOT MODULE [TEST ...]
# Prints "@@RESULT name PASS|FAIL|SKIP", the traceback of a failure between
# "@@TB" and "@@ENDTB", and "@@END" when every test ran.
import sys
import gc

root = sys.argv[1]
modname = sys.argv[2]
wanted = sys.argv[3:]
sys.path.insert(0, root)
sys.path.insert(0, root + "/tests/kernel")
# the x64 natmods `make test` builds first (tools/natmods.py); the kernel
# picks them at import where they load, else its viper/portable code
sys.path.append(root + "/build/natmods/x64")

mod = __import__(modname)
names = wanted or sorted(n for n in dir(mod) if n.startswith("test_"))
for name in names:
    fn = getattr(mod, name, None)
    if fn is None:
        print("@@RESULT %s FAIL" % name)
        print("@@TB\nno such test\n@@ENDTB")
        continue
    gc.collect()
    try:
        fn()
        print("@@RESULT %s PASS" % name)
    except Exception as e:  # noqa: B902 - report every failure
        if type(e).__name__ == "SkipTest":
            print("@@RESULT %s SKIP" % name)
            print("@@TB\n%s\n@@ENDTB" % e)
            continue
        print("@@RESULT %s FAIL" % name)
        print("@@TB")
        try:
            sys.print_exception(e)
        except AttributeError:
            import traceback
            traceback.print_exc(file=sys.stdout)
        print("@@ENDTB")
print("@@END")

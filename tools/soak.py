# Soak driver (runs under MicroPython or CPython): the seed-64k demo (kernel,
# six demo agents, optionally the console) on a fake clock at full rate, for
# --minutes of kernel time. Every --every seconds of kernel time it collects
# and prints the live heap (gc.mem_alloc) and free heap as one JSON line:
#   {"t_ms": ..., "alloc": ..., "free": ..., "seq": ..., "segs": ...}
# Run from the repository root (tests/host/test_soak.py, tools/bench.py):
#   micropython -X heapsize=256K tools/soak.py --fs DIR --minutes 5
import gc
import json
import sys

sys.path.insert(0, "tests/kernel")
sys.path.insert(0, ".")


def main(argv):
    fs = None
    minutes = 5
    every = 30
    console = False
    board = "seed-64k"
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--fs":
            fs = argv[i + 1]
        elif a == "--minutes":
            minutes = float(argv[i + 1])
        elif a == "--every":
            every = int(argv[i + 1])
        elif a == "--board":
            board = argv[i + 1]
        elif a == "--console":
            console = True
            i -= 1
        i += 2
    import agentkit as K
    from rvm_mp import bundle
    from rvm_mp.boot import Boot
    from rvm_mp.hal import MemConsole
    with open("boards/%s.json" % board) as f:
        prof = json.load(f)
    prof["console"] = console
    key = bytes(range(32, 64))
    bundles = {}
    for a in prof["agents"]:
        with open("agents/%s.py" % a["name"], "rb") as f:
            src = f.read()
            bundles[a["name"]] = bundle.pack(src, {"name": a["name"]}, key,
                                             verdict=bundle.unverified(src))
    pf = K.FakePlatform(fs)
    pf._key = key
    b = Boot(fs=fs, platform=pf, profile=prof, bundles=bundles,
             console=MemConsole() if console else None)
    rt = b.run()
    bundles = None
    total = int(minutes * 60000)
    t = 0
    while t < total:
        rt.run(max_ms=every * 1000)
        t += every * 1000
        pf.waits = []  # the fake platform's own record of waits
        con = pf.console
        if con is not None and hasattr(con, "take"):
            con.take()  # the host reads what the console wrote
        gc.collect()
        st = rt.log.store
        print(json.dumps({"t_ms": t, "alloc": gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0,
                          "free": gc.mem_free() if hasattr(gc, "mem_free") else 0,
                          "seq": rt.log.next_seq,
                          "segs": len(st.segments()) if st is not None else 0}))
    rt.shutdown(1)


main(sys.argv[1:])

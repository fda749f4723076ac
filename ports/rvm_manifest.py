# Shared part of the per-port manifests: freezes the RVM-MP kernel package.
# Included as  include("../rvm_manifest.py", coherence=True|False)
# MicroPython's makemanifest runs a manifest with the current directory set
# to the manifest's own directory (ports/), so the paths below are relative
# to it, and passes include()'s keyword arguments as `options`.
import os

options.defaults(coherence=True, opt=3)

for dirpath, dirnames, files in os.walk("../rvm_mp"):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                         and (options.coherence or d != "coherence"))
    for f in sorted(files):
        if f.endswith(".py"):
            module(os.path.relpath(os.path.join(dirpath, f), ".."),
                   base_path="..", opt=options.opt)

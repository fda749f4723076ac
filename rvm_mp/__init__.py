# RVM-MP kernel package: runs unchanged on MicroPython and CPython.
# Keep this file empty of imports: boards import only what they use.
VERSION = 1

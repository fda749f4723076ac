# Process partitions for the Appliance (CPython on Linux): procpart.py is
# the kernel side, procchild.py the child's program. Kept out of the
# kernel's top level so boards (and the simulator's power-on import of every
# kernel module) never compile them; `rvm build` leaves this folder out.

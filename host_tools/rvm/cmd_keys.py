"""rvm keys gen [-o FILE]"""
from . import keys


def register(sub):
    p = sub.add_parser("keys", help="make a device key",
                       description="gen: 32 random bytes, the device's seal and "
                       "bundle key. Prints it as hex; -o also writes the raw "
                       "bytes to FILE (mode 0600).")
    s = p.add_subparsers(dest="keys_cmd", metavar="gen")
    g = s.add_parser("gen", help="generate a key")
    g.add_argument("-o", "--output")
    g.set_defaults(func=run)
    p.set_defaults(func=lambda a, t=None: (p.print_help(), 2)[1])


def run(args, transport=None):
    k = keys.gen()
    if args.output:
        keys.write(args.output, k)
    print(k.hex())
    return 0

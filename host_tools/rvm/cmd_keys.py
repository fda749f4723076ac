"""rvm keys gen [--ed25519] [-o FILE] | rvm keys pub FILE"""
from . import keys


def register(sub):
    p = sub.add_parser("keys", help="make a device key",
                       description="gen: 32 random bytes, the device's seal and "
                       "bundle key. Prints it as hex; -o also writes the raw "
                       "bytes to FILE (mode 0600). gen --ed25519: an Ed25519 seal "
                       "key for boards that sign their seals; prints the PUBLIC key "
                       "for the auditor, -o writes the seed to FILE (0600) and the "
                       "public key to FILE.pub. pub FILE: the public key of a seed.")
    s = p.add_subparsers(dest="keys_cmd", metavar="gen|pub")
    g = s.add_parser("gen", help="generate a key")
    g.add_argument("-o", "--output")
    g.add_argument("--ed25519", action="store_true",
                   help="an Ed25519 seal key (auditors verify with its public key)")
    g.set_defaults(func=run)
    q = s.add_parser("pub", help="print the Ed25519 public key of a seed file")
    q.add_argument("seed_file")
    q.set_defaults(func=run_pub)
    p.set_defaults(func=lambda a, t=None: (p.print_help(), 2)[1])


def run(args, transport=None):
    k = keys.gen()
    if args.ed25519:
        pub = keys.ed25519_public(k)
        if args.output:
            keys.write(args.output, k)
            with open(args.output + ".pub", "w") as f:
                f.write(pub.hex() + "\n")
        print(pub.hex())
        return 0
    if args.output:
        keys.write(args.output, k)
    print(k.hex())
    return 0


def run_pub(args, transport=None):
    print(keys.ed25519_public(keys.load(args.seed_file)).hex())
    return 0

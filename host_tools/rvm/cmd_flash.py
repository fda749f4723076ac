"""rvm flash --board NAME --port PORT --firmware FILE"""
from . import flash as FL


def register(sub):
    p = sub.add_parser("flash", help="write MicroPython firmware to a board",
                       description="ESP32/ESP8266: esptool write-flash at the "
                       "profile's offset (erase first). Other boards: how to "
                       "flash them.")
    p.add_argument("--board", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--firmware", required=True)
    p.add_argument("--baud", type=int)
    p.add_argument("--dry-run", action="store_true",
                   help="print the esptool commands, run nothing")
    p.set_defaults(func=run)


def run(args, transport=None):
    FL.flash(args.board, args.port, args.firmware, args.baud, args.dry_run)
    if not args.dry_run:
        print("flashed %s on %s" % (args.firmware, args.port))
    return 0

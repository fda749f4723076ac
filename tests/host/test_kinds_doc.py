"""Every ActionKind in rvm_mp/kinds.py has a row in docs/witness-kinds.md,
and every row names a kind that exists with the same code."""
import os
import re

from rvm_mp import kinds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "witness-kinds.md")
CELL = re.compile(r"(?<!\\)\|")  # a cell may hold an escaped \|
ROW = re.compile(r"^\|\s*0x([0-9A-Fa-f]{2})\s*\|\s*([A-Z0-9_]+)\s*\|(.*)$")


def _rows():
    rows = {}
    with open(DOC) as f:
        for line in f:
            m = ROW.match(line.strip())
            if m:
                code = int(m.group(1), 16)
                cells = [c.strip() for c in CELL.split(m.group(3).rstrip("|"))]
                rows.setdefault(m.group(2), []).append((code, cells))
    return rows


def test_every_kind_has_a_row():
    rows = _rows()
    missing = [("0x%02X" % code, name) for code, name in sorted(kinds.names().items())
               if name not in rows]
    assert not missing, "kinds without a row in docs/witness-kinds.md: %s" % missing


def test_rows_match_codes_and_have_all_fields():
    names = kinds.names()
    by_name = {v: k for k, v in names.items()}
    for name, entries in _rows().items():
        assert name in by_name, "docs/witness-kinds.md documents unknown kind %s" % name
        assert len(entries) == 1, "%s has %d rows" % (name, len(entries))
        code, cells = entries[0]
        assert code == by_name[name], "%s documented as 0x%02X, kinds.py has 0x%02X" % (
            name, code, by_name[name])
        # actor, target, a, b, c, d
        assert len(cells) == 6 and all(cells), "%s row needs actor|target|a|b|c|d" % name


def test_codes_sit_in_their_family_block():
    for code, name in kinds.names().items():
        assert 0 <= code <= 0xFF
        fam = kinds.family(code)
        assert fam != "unknown", "%s (0x%02X) is outside every family block" % (name, code)

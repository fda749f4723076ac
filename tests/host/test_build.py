"""rvm build: .mpy files for every arch the profiles use."""
import json
import os

import pytest

from host_tools.rvm import boards, build, cli

ARCH_BOARDS = {}
for _n in boards.names():
    _a = boards.load(_n).get("mpy_march")
    ARCH_BOARDS.setdefault(_a, _n)


@pytest.mark.parametrize("board", sorted(ARCH_BOARDS.values()))
def test_build_each_arch(board, tmp_path, capsys):
    assert cli.main(["build", "--board", board, "-o", str(tmp_path)]) == 0
    out = tmp_path / board
    rep = json.loads((out / "BUILD.json").read_text())
    prof = boards.load(board)
    assert json.loads((out / "board.json").read_text())["name"] == board
    files = rep["files"]
    if prof["mpy_march"]:
        assert "rvm_mp/kernel.mpy" in files and "rvm_mp/control.mpy" in files
        data = (out / "rvm_mp" / "witness.mpy").read_bytes()
        assert data[0] == ord("M") and data[1] == 6  # mpy format v6
        assert not any(f.endswith(".py") for f in files)
        assert not rep["skipped"]
    else:
        assert "rvm_mp/kernel.py" in files
    has_coh = any("/coherence/" in f for f in files)
    assert has_coh == prof["coherence"]
    assert "built %s" % board in capsys.readouterr().out


def test_build_unknown_board(capsys):
    assert cli.main(["build", "--board", "nope"]) == 2
    assert capsys.readouterr().err.startswith("rvm: unknown board")

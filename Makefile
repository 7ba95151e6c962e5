# The two commands of the README: `make demo` (main job end to end) and `make test` (install + suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test clean

setup: $(VENV)/.installed

# torch is installed first and pinned so that pip never selects a CUDA build.
$(VENV)/.installed: pyproject.toml scripts/install-system-deps.sh
	scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -c 'from ttfs.codegen import fpga_flow; print(fpga_flow.warm())'
	touch $@

demo: setup
	$(PY) -m ttfs.codegen.demo

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache

# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the build this project is tested with; override for another platform.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# PyPI's Linux torch wheels pull the CUDA libraries (the venv grows to about 6.7 GB). Machines without
# an NVIDIA GPU that reach the PyTorch CPU index can take the CPU-only build of the same pins instead:
#   make venv CPU=1                      (or TORCH_INDEX=<another index URL>)
# `==2.14.1` matches the index's `2.14.1+cpu`. Only torch and torchvision come from that index.
CPU ?=
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(filter 1 yes true,$(CPU)),$(TORCH_CPU_INDEX))
STAMP := $(VENV)/.binsight-installed
# The five distributions of this repository (see pyproject.toml), installed editable.
PARTS := core device server training demo

.PHONY: demo test faults lint typecheck venv services bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(foreach p,$(PARTS),$(p)/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	@# A venv made before the split into parts has the one old distribution: drop it first.
	$(PY) -m pip uninstall --quiet --yes binsight >/dev/null 2>&1 || true
	$(PY) -m pip install --quiet $(foreach p,$(PARTS),-e ./$(p)) --group dev
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/binsight demo $(ARGS)

services:
	@bash .ci/services

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) services lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

# The fault suite alone, with its "sent / stored / rejected-and-counted / lost" table (tests/faults).
faults: $(STAMP) services
	$(PY) -m pytest tests/faults -m faults -rA $(PYTEST_ARGS)

bench: $(STAMP)
	@echo "benchmarks: see bench/README.md (each script prints its figures)"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build */*.egg-info

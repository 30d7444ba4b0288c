# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test bench run clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes, so repeated targets are quick.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/memory_bench.py

run: $(STAMP)
	$(PY) run_learning_tests.py $(ARGS)

clean:
	rm -rf $(VENV) results bench-results .pytest_cache

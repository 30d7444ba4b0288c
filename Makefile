# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint bench run clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes, so repeated targets are quick.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Lint first: a broken layer contract or a type error fails CI before the slow suite runs.
test: lint
	$(PY) -m pytest -q

# Style and bug patterns (ruff), types (mypy), the layer contract (import-linter); settings in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check swarm topologies scenarios reports
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	@for b in benchmarks/*_bench.py benchmarks/learning_validity.py; do echo "# $$b" >&2; $(PY) $$b || exit 1; done

run: $(STAMP)
	$(PY) run_learning_tests.py $(ARGS)

clean:
	rm -rf $(VENV) results bench-results .pytest_cache .mypy_cache .ruff_cache

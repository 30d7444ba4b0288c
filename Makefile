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
	@for b in benchmarks/*_bench.py benchmarks/learning_validity.py; do echo "# $$b" >&2; $(PY) $$b || exit 1; done

run: $(STAMP)
	$(PY) run_learning_tests.py $(ARGS)

clean:
	rm -rf $(VENV) results bench-results .pytest_cache

# The two commands of lowbit: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv and installs lowbit with the exact pins of constraints.txt on first use;
# the stamp file keeps a second run from reinstalling.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lowbit-installed

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lowbit demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

bench: $(STAMP)
	$(PY) bench/synth_units.py
	$(PY) bench/tile.py --no-progress
	$(PY) bench/accuracy.py --no-progress
	$(PY) bench/boards.py
	$(PY) bench/boards.py --tile binary
	$(PY) bench/boards.py --tile planned
	$(PY) bench/boards.py --tile planned-lfc
	$(PY) bench/link_timing.py

clean:
	rm -rf build .pytest_cache

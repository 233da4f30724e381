# The two set-up commands: `make run` serves on http://127.0.0.1:8000 from the
# local store, `make test` runs the whole test suite. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test system-deps bench

run: $(VENV)/.installed
	$(VENV)/bin/python -m app serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed system-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed system-deps
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

system-deps:
	scripts/install-system-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

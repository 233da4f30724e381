# The two set-up commands: `make run` serves on http://127.0.0.1:8000 from the
# local store, `make test` runs the whole test suite. Both create .venv first,
# and install the watch page's JavaScript dependencies (hls.js) from the npm
# registry into node_modules/ (never copied into the repository).
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test system-deps bench

NODE_DEPS := node_modules/.installed

run: $(VENV)/.installed $(NODE_DEPS)
	$(VENV)/bin/python -m app serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed $(NODE_DEPS) system-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed system-deps
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

system-deps:
	scripts/install-system-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# One way in: `make run` starts the service with demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

.PHONY: run test lint bench bench-large services browser docs clean reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One install, editable, for every target: `make test` never replaces the package under a running
# `make run`, and edits under src/ take effect without reinstalling.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/trailhouse demo --port $(PORT)
	$(BIN)/trailhouse serve --port $(PORT)

# PostgreSQL and Redis must be up for the backend tests: start them when they are not.
services:
	@bash scripts/ensure-services

# The browser tests drive Debian's Chromium: install it (and its driver) when it is absent.
browser:
	@bash scripts/ensure-browser

# Two pytest processes share the suite (a file stays in one, so its fixtures are built once); the
# reliability suite runs after them, alone, because it measures timings and memory.
test: $(VENV)/.installed services browser lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --ignore=tests/reliability
	$(BIN)/python -m pytest -q tests/reliability

# The reliability suite at full sizes (tests/reliability, docs/reliability.md); `make test` runs it short.
reliability: $(VENV)/.installed services
	TRAILHOUSE_RELIABILITY=full $(BIN)/python -m pytest -q tests/reliability

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:randomly tests/test_layers.py

docs: $(VENV)/.installed
	$(BIN)/python scripts/docs_gen.py

bench: $(VENV)/.installed services
	$(BIN)/python -m bench.run --events 1000000 --backends sqlite,postgres $(BENCH_ARGS)
	$(BIN)/python -m bench.delivery --rate 500 --seconds 60

bench-large: $(VENV)/.installed services
	$(BIN)/python -m bench.run --events 10000000 --backends sqlite,postgres $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info

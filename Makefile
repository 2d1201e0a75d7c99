# liveloop — the project's vocabulary.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: demo test fuzz lint format bench bench-compare bench-tools lock install serve migrate clean

$(BIN)/liveloop: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

VENDOR := src/liveloop/web/static/vendor

# The viewer page's video players, from npm (pinned, integrity-checked); the page works without them.
$(VENDOR)/.fetched: src/liveloop/web/assets.py | $(BIN)/liveloop
	@$(BIN)/liveloop assets && touch $@ || echo "Continuing without the video players; run 'make install' again later."

install: $(BIN)/liveloop $(VENDOR)/.fetched  ## Create the virtual environment and install liveloop with its dev tools

demo: install  ## Migrate a SQLite database, seed a demo shop, simulate traffic and serve on 127.0.0.1:$(PORT)
	$(BIN)/liveloop demo --port $(PORT)

test: install  ## The whole suite (PostgreSQL too when LIVELOOP_TEST_DATABASE_URL is set)
	$(BIN)/pytest -q

fuzz: install  ## The long schemathesis run over the whole API (LIVELOOP_FUZZ_EXAMPLES per operation, 25 by default)
	$(BIN)/pytest -q -m slow tests/test_fuzz.py

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests benchmarks migrations
	$(BIN)/ruff format --check src tests benchmarks migrations
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks migrations
	$(BIN)/ruff check --fix src tests benchmarks migrations

bench: install bench-tools  ## Benchmarks: clicks, conversions (vs pgbench), ledger verify, live room (vs python-socketio)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,bench]'
	$(BIN)/liveloop bench all

bench-compare: install bench-tools  ## The benchmarks of REV and of this tree, alternated in one run: make bench-compare REV=<commit>
	benchmarks/compare.sh $(REV) $(or $(ROUNDS),2)

lock: install  ## Upgrade the dependencies within pyproject.toml's ranges and write the versions to requirements.lock
	$(BIN)/pip install --quiet --upgrade -e '.[dev,bench]'
	{ sed -n '/^#/p' requirements.lock; $(BIN)/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

bench-tools:  ## Load generators the benchmarks drive from separate processes (wrk, h2load; pgbench comes with PostgreSQL)
	@command -v wrk >/dev/null && command -v h2load >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -qq wrk nghttp2-client >/dev/null; \
	  else echo "Install wrk and h2load (Debian: apt-get install wrk nghttp2-client) to run the benchmarks."; exit 1; fi; }

serve: install
	$(BIN)/liveloop serve --port $(PORT)

migrate: install
	$(BIN)/liveloop migrate

clean:
	rm -rf $(VENV) liveloop.db liveloop.db-wal liveloop.db-shm

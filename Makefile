# Two commands on a fresh machine:  `make mock` (serve the mock)  and  `make test` (every test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: mock test lint system-deps fuzz bench soak conformance clean publish release

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# The pinned npm tools (lint gates, reference page, generated TypeScript client). Without npm
# the tests that need them skip with the reason (CI sets LAYERS_REQUIRE_TOOLS=1: they must run).
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; \
	else echo "npm is missing: the tests that need node tools will skip" >&2; fi

# redis-server for the store tests (Debian package; needs root, as CI and the dev boxes are).
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: sudo apt-get install redis-server" >&2; exit 1; fi; }

mock: $(STAMP)
	$(BIN)/layers-mock $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# --durations: every run prints its slowest tests (the suite's time is their sum, not a guess).
# -n: pytest-xdist workers, one more than the cores, since part of the suite waits (real-clock
# stages, process starts): on 2 cores the tests older than the stores' group commit took
# 139 s on 2 workers, 123 s on 3, 125 s on 4 (PYTEST_WORKERS=0: one process). loadscope hands
# out whole modules and classes (module fixtures start once), slow ones first
# (tests/conftest.py).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: $(STAMP) $(NODE_STAMP) system-deps lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder \
	  --durations=15 $(PYTEST_ARGS)

# Long property-based run against a fresh mock; bounded by FUZZ_EXAMPLES and FUZZ_SECONDS.
fuzz: $(STAMP)
	$(BIN)/python -m tests.support.fuzz --examples $${FUZZ_EXAMPLES:-500} --seconds $${FUZZ_SECONDS:-900}

# The release files of the current contract version (D12): dist/contract/<info.version>/.
publish: $(STAMP) $(NODE_STAMP)
	$(BIN)/layers-contract publish --out dist/contract/$$($(BIN)/layers-contract version)

# Snapshot openapi.yaml as its version's release (contract/releases/<version>/); the version
# needs its section in contract/CHANGELOG.md first.
release: $(STAMP)
	$(BIN)/layers-contract release $(ARGS)

conformance: $(STAMP)
	$(BIN)/layers-conformance run --mock $(ARGS)

# A bounded soak of the real mock on loopback (about 3 minutes; not in the suite): req/s at the
# start and end, RSS slope per 1,000 requests. SOAK_ARGS="--seconds 60 --store sqlite:///x.db".
soak: $(STAMP)
	nice $(BIN)/python bench/soak.py $(SOAK_ARGS)

bench: $(STAMP) system-deps
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing: sudo apt-get install wrk" >&2; exit 1; fi; }
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix bench --no-audit --no-fund --silent; \
	else echo "npm is missing: the benchmark runs without its Prism comparison" >&2; fi
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info reports

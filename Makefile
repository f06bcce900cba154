# Quick start: `make run` (service on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# Exact versions with hashes (`make lock` refreshes them from pyproject.toml).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --no-header

.PHONY: run test lint format typecheck bench clean lock screenshots

$(RUNTIME): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(DEV): $(RUNTIME) $(DEV_LOCK)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	@touch $@

lock:
	@test -x $(BIN)/uv || ($(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv)
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev --constraint $(LOCK) -o $(DEV_LOCK)

run: $(RUNTIME)
	$(BIN)/kk serve

test: $(DEV)
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --silent --no-audit --no-fund --prefix tests/interop >/dev/null \
		|| echo "npm install failed: the Node interop tests will be skipped"; \
		npm ci --silent --no-audit --no-fund --prefix tests/typed_client >/dev/null \
		|| echo "npm install failed: the typed client test will be skipped"; \
	fi
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(DEV)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# The README's dashboard pictures (docs/img), from a real server and Debian's chromium.
screenshots: $(DEV)
	$(BIN)/python -m bench.screenshots

clean:
	rm -rf $(VENV) data .pytest_cache

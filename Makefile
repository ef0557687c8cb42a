# sscard: two commands do all set-up on a fresh machine.
#   make run    install what is needed, start the demo region on http://127.0.0.1:8000
#   make test   install what is needed (PostgreSQL included) and run every test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEMO_DB ?= sqlite:///var/demo.db

.PHONY: run test lint format check bench clean lock

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sscard needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	@mkdir -p var
	HOST=$(HOST) PORT=$(PORT) $(BIN)/sscard serve --demo --database $(DEMO_DB)

test: $(STAMP)
	@bash scripts/ensure-postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

check: test lint

# The full province run (1,000,000 cardholders) takes long; BENCH_ARGS=--quick is minutes.
bench: $(STAMP)
	@bash scripts/ensure-postgres
	@bash scripts/ensure-bench-tools
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Re-pin the dependencies (needs network); commit requirements.lock afterwards.
lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache

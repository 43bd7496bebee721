# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install browser demo test lint bench down clean

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv
	@# --compile-bytecode: every fresh process (a CLI call, a worker's flow run) loads Prefect
	@# and SQLAlchemy from .pyc instead of compiling them again (~4 s each where
	@# PYTHONDONTWRITEBYTECODE is set); a venv already compiled costs ~1 s to check.
	$(UV) sync --frozen --quiet --compile-bytecode

demo: install
	$(UV) run python -m deployments.dev.demo

# Two passes. First everything but the rate tests, three modules side by side (pytest-xdist,
# a module per worker, the local-stack modules in turn on one worker): the e2e modules mostly
# wait on servers and minute boundaries. Then the tests marked `solo` (two workers' speed-up,
# shared budgets drained near their minimum, SIGKILLs whose ledger must equal the provider's
# count to the call), one at a time on a quiet machine. `make test TEST_WORKERS=0`: all serial.
TEST_WORKERS ?= 3
test: lint browser
	$(UV) run pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not solo"
	$(UV) run pytest -q -n 0 -m solo

# The operator page's tests drive Debian's Chromium through Playwright (never `playwright
# install`). Installed here when missing and possible (root or passwordless sudo); without it
# the browser tests skip, except under CI=true where they fail.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || \
			{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
			sudo apt-get install -y -q chromium >/dev/null || \
			{ sudo apt-get update -q >/dev/null && sudo apt-get install -y -q chromium >/dev/null; }; \
		fi; \
		test -x $(CHROMIUM) || echo "chromium not installed: the browser tests will skip (fail under CI=true)"; }

lint: install
	$(UV) run ruff check .
	$(UV) run mypy
	$(UV) run lint-imports

bench: install
	$(UV) run python -m bench.profile_fetcher_bench --db postgres --server local --batch-size 10 100 --concurrency 5 16
	$(UV) run python -m bench.upsert_bench
	$(UV) run python -m bench.jobqueue_bench
	$(UV) run python -m bench.brand_collection_bench
	$(UV) run python -m bench.startup_bench

# The long-lived local Prefect server that `make demo` and the README's examples use.
down:
	@test -f .data/prefect/server.json && $(UV) run python -m deployments.dev.local_server down || true

clean: down
	rm -rf .data

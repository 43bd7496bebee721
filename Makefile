# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install demo test lint bench clean

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --quiet

demo: install
	$(UV) run python -m deployments.demo

test: lint
	$(UV) run pytest -q

lint: install
	$(UV) run ruff check .
	$(UV) run mypy
	$(UV) run lint-imports

bench: install
	$(UV) run python -m bench.profile_fetcher_bench
	$(UV) run python -m bench.upsert_bench
	$(UV) run python -m bench.jobqueue_bench
	$(UV) run python -m bench.brand_collection_bench

clean:
	rm -rf .data

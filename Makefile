# Canaliza — the two commands: `make run` (set up + main job) and `make test` (whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup run test lint typecheck pytest bench lock clean services chromium poppler resilience

NODE_STAMP := frontend/node_modules/.package-lock.json

setup: $(STAMP) $(NODE_STAMP) chromium poppler

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(UV) pip install -q --python $(PY) -r requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# The web UI's browser packages (htmx, Chart.js, axe-core), served from node_modules.
$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium drives the browser tests (Playwright never downloads a browser here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's poppler-utils (pdftoppm, pdftotext): the PDF layout tests look at the exports as images.
poppler:
	@test -x /usr/bin/pdftoppm || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; }

## The main job: migrate, load the demo data, serve everything at http://127.0.0.1:8000
run: setup
	CANALIZA_DEMO=1 $(VENV)/bin/canaliza demo

## The whole suite: lint, format check, type check, tests (real PostgreSQL/NATS where needed)
test: setup lint typecheck pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## mypy: strict on the production packages; tests and bench with the [tool.mypy] override
typecheck:
	$(VENV)/bin/mypy $$(ls -d services canaliza capacity referral auth audit frontend 2>/dev/null)
	$(VENV)/bin/mypy tests bench

pytest:
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## The resilience suite with more examples than CI, then the summary (var/resilience/summary.md).
## Bad input and attacks first, then faults and load; the summary is written whatever failed.
RESILIENCE_EXAMPLES ?= 40
resilience: setup
	rm -rf var/resilience
	status=0; \
	CANALIZA_FUZZ_EXAMPLES=$(RESILIENCE_EXAMPLES) CANALIZA_INVARIANT_EXAMPLES=$$(( $(RESILIENCE_EXAMPLES) * 5 )) \
	CANALIZA_LEAK_EVERY_FACILITY=1 \
	$(PY) -m pytest -q -p no:cacheprovider -o timeout=3600 -m resilience \
		tests/resilience/input tests/resilience/attacks $(PYTEST_ARGS) || status=1; \
	others="$$(ls -d tests/resilience/faults tests/resilience/load 2>/dev/null)"; \
	if [ -n "$$others" ]; then \
		$(PY) -m pytest -q -p no:cacheprovider -o timeout=3600 -m resilience $$others \
			$(PYTEST_ARGS) || status=1; \
	fi; \
	$(PY) bench/resilience_summary.py --check || status=1; \
	exit $$status

## Every benchmark of bench/ at small sizes (a few minutes): each prints its figures.
## The full-size runs and what they measure: README, "Benchmarks".
bench: setup
	$(PY) bench/capacity_search.py --seconds 1 --sizes 200,2000
	$(PY) -m bench.live_feed --clients 50 --rate 10 --seconds 2
	$(PY) bench/roster.py --repeat 1 --sizes 200,2000
	$(PY) bench/seed_national.py --scale demo --baseline-facilities 5 --baseline-referrals 20
	$(PY) -m bench.load_mixed --targets embedded --users 20 --seconds 5 --baseline-seconds 2
	$(PY) bench/operations_plan.py --facilities 400 --people 120 --groups 50 --seconds 0.5

## Re-pin dependencies after editing pyproject.toml
lock:
	$(UV) pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 --no-header

## Start the machine's PostgreSQL, Redis and NATS if they are down
services:
	bash .ci/services.sh

clean:
	rm -rf var $(VENV) .mypy_cache .ruff_cache frontend/node_modules

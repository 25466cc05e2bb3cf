# Two commands: `make run` (demo site on SQLite + local storage) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/instrumetriq
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest's worker processes (pytest-xdist): one per CPU; 0 runs the tests in this process
PYTEST_WORKERS ?= auto

.PHONY: run test test-sqlite test-postgres lint format venv lock chromium migrate demo doctor bench clean

# The virtualenv is installed from the lock files only, every file checked against its hash
# (requirements*.txt name what we depend on; `make lock` compiles them into the locks).
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

# Recompile the locks after changing requirements.txt or requirements-dev.txt (uv, from the dev
# lock): one resolution for every platform and Python 3.11+, runtime first, then the dev tools
# constrained to the runtime's versions so both locks agree. Commit the .lock files it writes.
LOCK = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"

lock: venv
	$(LOCK) requirements.txt -o requirements.lock
	$(LOCK) requirements-dev.txt -c requirements.lock -o requirements-dev.lock

migrate: venv
	$(BIN)/python manage.py migrate --noinput

# The printed demo links point at the address the server listens on, unless SITE_URL says otherwise.
# The demo's SITE_URL is kept in var/demo.env (settings read it with DEBUG on), so a later
# `manage.py patreon_links` run by hand prints links on the port the demo serves.
DEMO_SITE_URL = $${SITE_URL:-http://$(HOST):$(PORT)}
DEMO_DAYS ?= 10

demo: migrate
	mkdir -p "$${VAR_DIR:-var}" && echo "SITE_URL=$(DEMO_SITE_URL)" > "$${VAR_DIR:-var}/demo.env"
	SITE_URL=$(DEMO_SITE_URL) $(BIN)/python manage.py setup_demo --days $(DEMO_DAYS)

run: demo
	SITE_URL=$(DEMO_SITE_URL) $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint chromium test-sqlite

test-sqlite: venv
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-postgres: venv chromium
	$(BIN)/python scripts/ensure_postgres_database.py $(PG_URL)
	DATABASE_URL=$(PG_URL) $(BIN)/python manage.py makemigrations --check --dry-run
	DATABASE_URL=$(PG_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Production configuration check (see docs/operations.md); DOCTOR_ARGS="--skip cron" where timers run the jobs.
doctor: venv
	$(BIN)/python manage.py doctor $(DOCTOR_ARGS)

bench: venv
	$(BIN)/python bench/build_daily.py
	$(BIN)/python bench/build_mtd.py
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache test-artifacts

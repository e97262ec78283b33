# Gantry's commands. `make demo` runs it; `make test` checks it. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-dev.lock pyproject.toml package-lock.json | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
# Processes the main test suite runs in (pytest-xdist); 1 runs it in one worker process.
TEST_PROCESSES ?= 2

.PHONY: install demo test lint format serve worker beat stack bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	# Test-only: axe-core for the accessibility checks in Chromium (skipped without npm).
	if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; fi
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## demo: set up, migrate, seed a demo portfolio and serve it on SQLite with eager tasks
demo: install
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: lint, then the whole test suite: in TEST_PROCESSES processes, then the fault tests
## (which kill and restart real processes) on their own
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadgroup --ignore=tests/faults
	$(BIN)/pytest tests/faults

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## serve / worker / beat: the three processes on PostgreSQL and Redis (set DATABASE_URL,
## CELERY_BROKER_URL and SECRET_KEY, or DEBUG=1, in the environment first)
serve: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/gunicorn gantry.wsgi --bind $(HOST):$(PORT) --workers 3 --access-logfile -

worker: install
	$(BIN)/celery -A gantry worker --loglevel INFO

beat: install
	$(BIN)/celery -A gantry beat --loglevel INFO

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# pytest-xdist workers; the suite is written so tests are independent.
WORKERS ?= 2

.PHONY: run test install install-dev db seed lint clean scan screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

db: install
	$(BIN)/flask db upgrade

seed: db
	$(BIN)/flask demo seed

# Local demo on the embedded SQLite database: plain http on 127.0.0.1, sign-up open; gunicorn's
# settings (timeouts, request limits, 2 workers) come from gunicorn.conf.py, as in production.
run: seed
	@echo "Artifacts on http://$(HOST):$(PORT)/  (log in as demo@example.com / demo-password)"
	INSECURE_COOKIES=1 SIGNUP_ENABLED=1 BIND=$(HOST):$(PORT) WEB_CONCURRENCY=2 \
		$(BIN)/gunicorn --config gunicorn.conf.py --access-logfile - wsgi:app

# Lint and types first: a suite that passes on code mypy rejects is not a pass.
test: lint
	$(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check artifacts_app security tests bench
	$(BIN)/mypy

# Refresh the README's pictures in docs/screenshots/ on purpose (`make test` writes its own to a temporary folder).
screenshots: install-dev
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/browser/test_detail_browser.py -k test_screenshots_for_the_readme

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Security scan (not part of `make test`): sqlmap and wapiti from Debian against a throwaway local
# copy on 127.0.0.1; writes security/scan-summary.md, everything else goes to a temporary folder.
scan: install
	apt-get install -y sqlmap wapiti
	$(BIN)/python security/scan.py

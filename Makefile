# Huaihai Hub: the front door. `make demo` runs the hub with demo data; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo topology test test-fast lint format bench system-deps translations vendor i18n-extract schemas clean

## demo: install everything, then run the hub with demo users for the ten cities
demo: system-deps $(STAMP) translations vendor
	HUB_DEMO=1 $(BIN)/hub run --demo

## topology: the regional topology on one machine (PostgreSQL, Prefect and two flow workers, two web processes behind haproxy, bridged brokers); see docs/DEPLOYMENT.md
topology: system-deps $(STAMP) translations vendor
	$(BIN)/hub topology up --dir instance/topology

## test: run the whole suite (SQLite; set HUB_TEST_DATABASE_URL for PostgreSQL)
test: system-deps $(STAMP) translations vendor
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the development loop: all but the browser tests (e2e) and the slow ones that kill or restart brokers and processes
test-fast: system-deps $(STAMP) translations vendor
	$(BIN)/python -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

## lint: ruff (lint and format), the layering contracts and mypy (strict on contracts and hub)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy contracts connectors hub flows web

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: run the benchmarks under bench/ and print their figures
bench: system-deps $(STAMP)
	@for script in bench/[!_]*.py; do [ -e "$$script" ] || continue; echo "== $$script"; $(BIN)/python "$$script" || exit 1; done

## system-deps: Debian packages the hub and its tests use (Mosquitto, Chromium, a CJK font, npm, PostgreSQL's server programs, haproxy)
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	dpkg-query -W -f='$${Status}' fonts-wqy-microhei 2>/dev/null | grep -q "ok installed" || missing="$$missing fonts-wqy-microhei"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

translations: $(STAMP)
	@if [ -d web/translations ]; then $(BIN)/pybabel compile -d web/translations; fi

## vendor: the browser libraries (package-lock.json) copied into web/static/vendor/, served by the hub itself
VENDOR := web/static/vendor
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

vendor: $(NODE_STAMP)
	@mkdir -p $(VENDOR)/leaflet/images
	cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/LICENSE $(VENDOR)/leaflet/
	cp node_modules/leaflet/dist/images/*.png $(VENDOR)/leaflet/images/

## schemas: regenerate the JSON Schemas of the contracts
schemas: $(STAMP)
	$(BIN)/python -m contracts.schemas

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache node_modules $(VENDOR)

## i18n-extract: refresh the catalogues from the source; then translate the new entries in en
i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --project "Huaihai Hub" -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --no-fuzzy-matching

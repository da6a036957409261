# The two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test ui serve stack-start stack-stop stack-status

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The demo's history starts on its first generated day: the UI's day partitions begin there.
DEMO_START := 2026-01-01
demo ui: export SALES_ANALYTICS_HISTORY_START ?= $(DEMO_START)

demo: setup  ## generate sample data and materialize every asset on the embedded `local` profile
	$(BIN)/sales-analytics demo --start $(DEMO_START)

test: setup  ## the whole suite; starts (and stops) the stack servers it needs
	$(BIN)/pytest

ui: setup  ## the Dagster UI (`dg dev`) over the same data and runs as `make demo`
	$(BIN)/python -c 'from pathlib import Path; from sales_analytics.storage.instance import ensure_instance; ensure_instance(Path(".data/dagster"))'
	DAGSTER_HOME=$(CURDIR)/.data/dagster VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev

serve: setup  ## the web app and API (dashboards, report data, predictions) on the active profile; keys in SALES_ANALYTICS_API_KEYS
	$(BIN)/sales-analytics serve

stack-start stack-stop stack-status: setup
	$(BIN)/sales-analytics stack $(@:stack-%=%)

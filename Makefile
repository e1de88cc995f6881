# The two set-up commands of the README. Each works on a fresh clone: it makes the
# virtual environment and installs the project first (once; again when pyproject.toml changes).
VENV := .venv
# Dagster commands run without DAGSTER_HOME would pick up ./dagster.yaml, the production
# (PostgreSQL) instance: everything here uses the embedded SQLite instance instead.
EMBEDDED_HOME := $(CURDIR)/.dagster_home
# the embedded instance's dagster.yaml, written as cs-pipeline writes it on first use: a
# Dagster command run on the folder first would lay out storage of its own
EMBEDDED_INSTANCE := $(EMBEDDED_HOME)/dagster.yaml
# pytest on every core (pytest-xdist), a test file's tests on one worker so that a module's
# fixtures (a tenant run through the pipeline once) are built once
PARALLEL := --numprocesses auto --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-fast bench bench-ingest bench-salesforce bench-shapes bench-growth bench-event-keys ui

demo: $(VENV)/.installed
	$(VENV)/bin/cs-pipeline demo

test: $(VENV)/.installed $(EMBEDDED_INSTANCE)
	$(VENV)/bin/ruff check cs_pipeline cs_pipeline_testing cs_pipeline_tests bench
	DAGSTER_HOME=$(EMBEDDED_HOME) $(VENV)/bin/dagster definitions validate -w workspace.yaml
	# the UI test needs Chromium, the production-instance test PostgreSQL: as root, these two
	# install what is missing (and start a local PostgreSQL server); pytest runs with
	# DAGSTER_PG_* exported
	.ci/chromium.sh
	.ci/postgres.sh $(VENV)/bin/python -m pytest $(PARALLEL)

# the tests not marked e2e (no Dagster runs, processes, servers, PostgreSQL or Chromium): seconds
test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not e2e" $(PARALLEL)

ui: $(VENV)/.installed $(EMBEDDED_INSTANCE)
	DAGSTER_HOME=$(EMBEDDED_HOME) $(VENV)/bin/dagster dev -w workspace.yaml

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/daily_run.py

bench-ingest: $(VENV)/.installed
	$(VENV)/bin/python bench/ingest.py

bench-salesforce: $(VENV)/.installed
	$(VENV)/bin/python bench/salesforce_extract.py

bench-shapes: $(VENV)/.installed
	$(VENV)/bin/python bench/shapes.py

bench-growth: $(VENV)/.installed
	$(VENV)/bin/python bench/growth.py --with-yardstick

bench-event-keys: $(VENV)/.installed
	$(VENV)/bin/python bench/event_key_probe.py

$(EMBEDDED_INSTANCE): $(VENV)/.installed
	DAGSTER_HOME=$(EMBEDDED_HOME) $(VENV)/bin/python -c 'from cs_pipeline.cli import dagster_instance; dagster_instance()'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

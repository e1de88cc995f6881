# The two set-up commands of the README. Each works on a fresh clone: it makes the
# virtual environment and installs the project first (once; again when pyproject.toml changes).
VENV := .venv

.PHONY: demo test bench

demo: $(VENV)/.installed
	$(VENV)/bin/cs-pipeline demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check cs_pipeline cs_pipeline_tests bench
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/ingest.py

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

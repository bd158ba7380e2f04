# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint

# (Re)install only when requirements.txt changed since the last install.
$(VENV)/.installed: requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(PYTHON) manage.py serve

test: $(VENV)/.installed lint
	$(PYTHON) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

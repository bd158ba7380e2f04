# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python
PORT ?= 8000

# The browser tests drive Debian's Chromium (browser downloads fail on our machines) and check
# accessibility with axe-core, fetched from npm into var/ (it is never served to visitors).
AXE := var/browser/axe.min.js
AXE_VERSION := 4.14.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint chromium kernels

# (Re)install only when requirements.txt changed since the last install.
$(VENV)/.installed: requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Native kernels are compiled here, before any worker runs; workers only load the result
# (generation/kernels). A no-op once built; without a compiler it warns and workers use fp32.
kernels: $(VENV)/.installed
	$(PYTHON) -m generation.kernels

run: $(VENV)/.installed kernels
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(PYTHON) manage.py serve

test: $(VENV)/.installed kernels lint chromium $(AXE)
	$(PYTHON) -m pytest

chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)

$(AXE):
	mkdir -p $(dir $@)
	cd $(dir $@) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js \
		&& mv package/axe.min.js . && rm -rf package axe-core-$(AXE_VERSION).tgz

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

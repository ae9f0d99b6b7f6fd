# normbench: the two commands.
#   make demo   quick benchmark on the embedded data set + report
#   make test   the test suite (fast tests; `make test-all` adds the slow ones)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEPS := requirements.txt pyproject.toml scripts/install_deps.sh scripts/build_learn2learn.sh
STAMP := $(VENV)/.stamp-$(shell cat $(DEPS) 2>/dev/null | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: demo test test-all lint bench env clean-env

env: $(STAMP)

$(STAMP): $(DEPS)
	@rm -f $(VENV)/.stamp-*
	scripts/install_deps.sh $(VENV)
	@touch $@

demo: $(STAMP)
	$(PY) -m tasks.demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check normbench normlayers tasks reports tests

bench: $(STAMP)
	$(PY) -m normlayers.bench

clean-env:
	rm -rf $(VENV) .cache/wheels

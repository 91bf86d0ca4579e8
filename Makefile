# Lapor Warga — `make run` and `make test` are all a newcomer needs.
VENV    ?= .venv
PYTHON  ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
             command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit locales locales-compile bench clean help

help:
	@echo "make run    - install into .venv and run the bot (SQLite by default)"
	@echo "make test   - install, lint, type-check and run the test suite"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make locales - re-extract messages and update the .po catalogs"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

locales-compile: $(STAMP)
	$(BIN)/pybabel compile -d locales -D messages --statistics

run: $(STAMP) locales-compile
	$(BIN)/lapor run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy bot handlers storage

unit: $(STAMP) locales-compile
	$(BIN)/python -m pytest -q

test: lint typecheck unit

locales: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k N_ -o locales/messages.pot \
		--no-location --sort-output --project lapor-warga --version 0.1 .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --width 100

bench: $(STAMP) locales-compile
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The two commands: `make run` and `make test`. Everything else is a helper for them.
.PHONY: run test test-sqlite test-postgres install install-test bench clean

VENV := .venv
PYTEST := $(VENV)/bin/python -m pytest
PYTEST_ARGS ?=

run: install
	$(VENV)/bin/python -m itops.demo

test: install-test
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	@echo "== tests on SQLite =="
	ITOPS_TEST_DATABASE=sqlite $(PYTEST) $(PYTEST_ARGS)

test-postgres:
	@echo "== tests on PostgreSQL =="
	ITOPS_TEST_DATABASE=postgres $(PYTEST) $(PYTEST_ARGS)

install:
	@bash scripts/install.sh run

install-test:
	@bash scripts/install.sh test

clean:
	rm -rf .pytest_cache test-artifacts

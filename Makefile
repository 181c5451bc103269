# Every target sets itself up: a fresh machine needs only python3 (and, for CI, apt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-test.txt requirements-dev.txt constraints.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)

.PHONY: venv test lint mutation demo bench clean

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

test: venv
	$(BIN)/pytest --cov=braintrust_ops --cov-branch --cov-report=term-missing:skip-covered $(PYTEST_ARGS)
	@# The gate again, from the data file: once in CI pytest-cov reported a miss and still exited 0.
	@$(BIN)/coverage report > /dev/null || (echo "Coverage is below fail_under in .coveragerc." && exit 1)

lint: venv
	$(BIN)/ruff check braintrust_ops braintrust_ops_sandbox tests
	$(BIN)/ruff format --check braintrust_ops braintrust_ops_sandbox tests
	@# Types of the app's production code; mypy.ini says what is checked and how strictly.
	$(BIN)/mypy

# Slow (about an hour on two cores), so not in .ci/run. Starts afresh: a cached verdict could outlive the test that earned it.
mutation: venv
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python scripts/mutation.py

demo: venv
	bash scripts/demo.sh

bench: venv
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .coverage demo.sqlite3

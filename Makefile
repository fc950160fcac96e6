# Each target creates .venv and installs the project first, so a fresh clone needs only Python 3.11.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint bench ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/liftshift demo $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check liftshift flows tests bench notebooks
	$(BIN)/mypy liftshift
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check liftshift flows tests bench notebooks
	$(BIN)/mypy liftshift

bench: $(STAMP)
	$(BIN)/python bench/transfer.py
	$(BIN)/python bench/validate.py

ui: $(STAMP)
	$(BIN)/prefect server start

clean:
	rm -rf $(VENV) .liftshift .pytest_cache

# Two entry points: `make demo` runs the main job, `make test` runs lint, types and tests.
# Both create .venv when it is missing and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WB := $(BIN)/workbench

.PHONY: demo test lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(WB) validate
	@# A batch records every run, failed ones included, and skips what already ran.
	@for call in calls/*.yaml; do $(WB) batch "$$(basename $$call .yaml)" || exit $$?; done
	@for call in calls/*.yaml; do $(WB) results "$$(basename $$call .yaml)"; done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) runs workbench.db workbench.db-wal workbench.db-shm

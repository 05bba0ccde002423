# Two entry points: `make demo` runs the main job, `make test` runs lint, types and tests.
# Both create .venv when it is missing and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WB := $(BIN)/workbench

.PHONY: demo test lint typecheck pytest clean system-demo system-test

# Debian packages, installed only when missing: bubblewrap runs the kernels of calls whose
# isolation is `sandbox`; Debian's chromium drives the dashboards' browser tests; the
# tests start a throwaway PostgreSQL server (never the system's) from postgresql's binaries.
define need_debian
	@missing=""; \
	for pkg in $(1); do \
		case $$pkg in \
			bubblewrap) command -v bwrap >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
			chromium) [ -x /usr/bin/chromium ] || missing="$$missing $$pkg" ;; \
			postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
		esac; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing"; \
			exit 1; \
		fi; \
	fi
endef

system-demo:
	$(call need_debian,bubblewrap)

system-test:
	$(call need_debian,bubblewrap chromium postgresql)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run system-demo
	@# A store made by an earlier version is brought to the code's schema first.
	$(WB) db upgrade
	$(WB) validate
	@# A batch records every run, failed ones included, and skips what already ran.
	@for call in calls/*.yaml; do $(WB) batch "$$(basename $$call .yaml)" || exit $$?; done
	@for call in calls/*.yaml; do $(WB) results "$$(basename $$call .yaml)"; done
	@# The whole journey of a call with two teams: kit, own notebook, pack, receive, batch, report.
	bash demo/journey.sh $(WB)
	@echo "Jury dashboards: $(WB) jury add diat 'A juror' prints a personal link, then $(WB) serve diat"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test system-test
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) runs workbench.db workbench.db-wal workbench.db-shm

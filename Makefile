# Every target sets up what it needs: a fresh clone with only Python 3.11+ runs
# `make dev` or `make test` and nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: venv test bench migrate lock clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks

migrate: venv
	$(BIN)/python -m sluice.migrate

# Re-pin after changing dependencies in pyproject.toml or requirements-tools.in.
lock: venv
	$(BIN)/uv pip compile --quiet pyproject.toml --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --universal --python-version 3.11 -c requirements.lock -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet requirements-tools.in --python-version 3.11 -o requirements-tools.lock

clean:
	rm -rf $(VENV) .pytest_cache

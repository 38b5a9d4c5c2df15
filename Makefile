# Every target sets up what it needs: a fresh clone with only Python 3.11+ runs
# `make dev` or `make test` and nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
TOOLS := .venv-tools
TOOLS_BIN := $(TOOLS)/bin

.PHONY: venv tools browser clients dev invoke test bench loadtest migrate aggregate maintain archive-read rebuild-aggregates lock clean build deploy zones redrive mail

venv: $(VENV)/.installed

# sam and checkov pin libraries below what the functions run with, so they get a
# virtualenv of their own; the tests run them from there as commands.
tools: $(TOOLS)/.installed

$(TOOLS)/.installed: requirements-tools.lock
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS_BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(TOOLS_BIN)/uv pip install --quiet --python $(TOOLS_BIN)/python -r requirements-tools.lock
	touch $@

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# `make dev` keeps its state in LOCAL_STATE_DIR. The operator's commands below run
# against the running one: each variable the shell leaves unset (DATABASE_URL,
# AWS_ENDPOINT_URL, ARCHIVE_BUCKET, EVENTS_DLQ_URL, moto's credentials...) is taken
# from it. LOCAL_STACK=off runs them with the shell's variables alone (AWS).
LOCAL_STATE_DIR ?= .local/dev
LOCAL_STACK ?= on
WITH_DEV = $(if $(filter off,$(LOCAL_STACK)),,$(BIN)/python -m local_runtime env --state-dir "$(LOCAL_STATE_DIR)" --)

# The whole topology of template.yaml on this machine (local_runtime/, settings in
# local-env.json): API on 127.0.0.1:3000, queues, schedules, embedded PostgreSQL.
# Ctrl-C drains the queues and keeps what is left for the next start.
dev: venv
	$(BIN)/python -m local_runtime --state-dir "$(LOCAL_STATE_DIR)" $(DEV_ARGS)

# One function, one event, as `sam local invoke` (no Docker), against a running
# `make dev` or, without one, the stand-ins it needs:
# make invoke FN=StoreFunction EVENT=events/store-batch.json [ENV_VARS=env.json]  (EVENT=- reads stdin)
invoke: venv
	@test -n "$(FN)" || { echo "usage: make invoke FN=<LogicalId> [EVENT=file|-] [ENV_VARS=file]" >&2; exit 2; }
	$(BIN)/python -m local_runtime invoke "$(FN)" --state-dir "$(LOCAL_STATE_DIR)" $(if $(EVENT),--event "$(EVENT)") $(if $(ENV_VARS),--env-vars "$(ENV_VARS)")

test: venv tools browser clients
	SLUICE_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The console's test (tests/e2e/test_console.py) drives Debian's chromium through
# Playwright; browser downloads (`playwright install`) are never used. As root the
# package is installed when missing; otherwise this stops and names what to install.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y --no-install-recommends chromium >/dev/null || \
	      { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	  fi; }
	@test -x $(CHROMIUM) || { echo "make test needs $(CHROMIUM) for the console's browser test:" \
	  "run \`sudo apt-get install chromium\` (Debian's package), or set CHROMIUM=/path/to/chromium" >&2; exit 1; }

# tests/e2e/test_v1_clients.py sends with @segment/analytics-node, at the version
# tests/clients/node/package-lock.json pins (its .npmrc keeps registry URLs out of the
# lock). The library needs node 20 or newer (Debian's nodejs is 18, so nothing is
# installed for you); without it this stops and says what to install.
NODE_CLIENTS := tests/clients/node
clients: $(NODE_CLIENTS)/node_modules/.package-lock.json

$(NODE_CLIENTS)/node_modules/.package-lock.json: $(NODE_CLIENTS)/package-lock.json
	@command -v npm >/dev/null && node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' \
	  || { echo "make test needs node 20 or newer and npm for the Node client's test" \
	  "(tests/e2e/test_v1_clients.py): install NodeSource's nodejs 20+ (it brings npm)" >&2; exit 1; }
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error

bench: venv
	$(BIN)/python -m benchmarks

# Drives a running `make dev`: make loadtest ARGS="--duration 60 --batch-size 100"
loadtest: venv
	$(BIN)/python -m loadtest $(ARGS)

# The email a running `make dev` sent (moto's SES): make mail ARGS="--to you@example.com"
mail: venv
	$(WITH_DEV) $(BIN)/python -m tools.mail $(ARGS)

migrate: venv
	$(WITH_DEV) $(BIN)/python -m tools.migrate

# What the scheduled aggregate function does, once, against DATABASE_URL.
aggregate: venv
	$(WITH_DEV) $(BIN)/python -m tools.aggregate run

# What the scheduled maintain function does, once, against DATABASE_URL and
# ARCHIVE_BUCKET (make dev's, or AWS's with LOCAL_STACK=off): partitions ahead, the
# dedup window, retention with its archive.
maintain: venv
	$(WITH_DEV) $(BIN)/python -m tools.maintain run

# Prints an app's archived events of one day (UTC, by when they were received):
# make archive-read APP=app_... DATE=2026-03-01
archive-read: venv
	@test -n "$(APP)" -a -n "$(DATE)" || { echo "usage: make archive-read APP=... DATE=YYYY-MM-DD" >&2; exit 2; }
	$(WITH_DEV) $(BIN)/python -m tools.archive read "$(APP)" "$(DATE)"

# Recounts the rollups of every UTC day in a range from the stored events, safely
# while scheduled runs go on: make rebuild-aggregates FROM=2026-03-01 TO=2026-03-08 [APP=app_...]
rebuild-aggregates: venv
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make rebuild-aggregates FROM=... TO=... [APP=...]" >&2; exit 2; }
	$(WITH_DEV) $(BIN)/python -m tools.aggregate rebuild --from "$(FROM)" --to "$(TO)" $(if $(APP),--app "$(APP)") $(if $(FORCE),--force)

# Re-pin after changing dependencies in pyproject.toml or requirements-tools.in.
lock: venv
	$(BIN)/uv pip compile --quiet pyproject.toml --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --universal --python-version 3.11 -c requirements.lock -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet requirements-tools.in --python-version 3.11 -o requirements-tools.lock

# Keeps .local/ (make dev's database and queues); delete it by hand to start afresh.
clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .aws-sam $(NODE_CLIENTS)/node_modules

# ---------------------------------------------------------------- AWS (SAM)
# Nothing here needs Docker. `make deploy` needs AWS credentials; see docs/operating-in-aws.md.
ENV ?= dev
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS_BIN)/sam

# A typo (`make deploy ENV=staging`) stops here, while make reads this file: before
# `build` installs sam into .venv-tools (minutes) only to find no such environment.
ifneq ($(filter deploy zones,$(MAKECMDGOALS)),)
ifneq ($(words $(filter dev prod,$(ENV))) $(words $(ENV)),1 1)
$(error ENV must be dev or prod (samconfig.toml's environments), not "$(ENV)")
endif
endif

build: tools
	$(SAM) build --template template.yaml --parallel

# The zone check asks EC2 and RDS whether the zones of samconfig.toml offer every
# endpoint service and the instance class (tools/zones.py): a zone without one would
# fail the deploy half-way. `make zones ENV=...` runs it alone.
deploy: zones build
	$(SAM) deploy --config-env $(ENV)

zones: venv
	$(BIN)/python -m tools.zones --env $(ENV)

# Moves the dead-letter queue's messages back to the events queue: the running
# `make dev`'s (plain `make redrive`), a deployed stack's output (ENV=dev|prod given),
# or DLQ_URL=...
ENV_GIVEN = $(filter command line environment,$(origin ENV))
redrive: venv
	$(if $(ENV_GIVEN),,$(WITH_DEV)) $(BIN)/python -m tools.redrive $(if $(DLQ_URL),--dlq-url "$(DLQ_URL)",$(if $(ENV_GIVEN),--stack sluice-$(ENV)))

# `sam build` runs these (template.yaml: BuildMethod makefile, ContextPath and
# WorkingDirectory the repository root) with ARTIFACTS_DIR set. Python 3.13 on
# arm64 is not this machine's Python, so wheels are fetched for that platform:
# the exact pins of requirements.lock, the lock the tests' virtualenv uses.
# The python3.13 runtime is Amazon Linux 2023, glibc 2.34 (jsonschema-rs ships
# manylinux_2_28 wheels only, so manylinux2014 is not enough).
LAMBDA_WHEELS := --python-platform aarch64-manylinux_2_34 --python-version 3.13 --only-binary :all: --no-deps

build-SluiceLayer: $(TOOLS)/.installed
	$(TOOLS_BIN)/uv pip install --quiet --python $(TOOLS_BIN)/python --target "$(ARTIFACTS_DIR)/python" $(LAMBDA_WHEELS) -r requirements.lock
	tar -C layers --exclude=__pycache__ -cf - sluice | tar -C "$(ARTIFACTS_DIR)/python" -xf -
	rm -rf "$(ARTIFACTS_DIR)/python/bin" # console scripts (jmespath's jp.py): nothing runs them

build-IngestFunction:
	cp functions/ingest/app.py functions/ingest/answers.py functions/ingest/tracking_api.py "$(ARTIFACTS_DIR)/"

build-StoreFunction:
	cp functions/store/app.py "$(ARTIFACTS_DIR)/"

build-AccountsFunction:
	cp functions/accounts/app.py "$(ARTIFACTS_DIR)/"

build-EmailFunction:
	cp functions/email/app.py "$(ARTIFACTS_DIR)/"

build-AggregateFunction:
	cp functions/aggregate/app.py "$(ARTIFACTS_DIR)/"

build-MigrateFunction:
	cp functions/migrate/app.py "$(ARTIFACTS_DIR)/"
	mkdir -p "$(ARTIFACTS_DIR)/migrations"
	cp migrations/*.sql "$(ARTIFACTS_DIR)/migrations/"

build-ManageFunction:
	cp functions/manage/app.py functions/manage/query.py functions/manage/openapi.json "$(ARTIFACTS_DIR)/"

build-MaintainFunction:
	cp functions/maintain/app.py "$(ARTIFACTS_DIR)/"

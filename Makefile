# tfserving-stack: one entry point for building, provisioning and testing.
# `make up` brings the stack up on the local box; `make test` runs every test.
# Both install what they need (Debian packages, a virtual environment, the models) on a fresh machine.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Downloads and the box image outlive a clone, so a rerun (or CI on a fresh clone) reuses them.
export TFSTACK_CACHE_DIR ?= /var/cache/tfserving-stack
PYTEST_ARGS ?=
# Test folders run side by side, one folder per worker at a time (tests/support/parallel.py); the fleet
# and the deploy box mostly wait on SSH, apt and the boxes' own services, so three workers share two
# cores well. TEST_WORKERS=0 runs everything in this one process (prints of `-s` show then).
TEST_WORKERS ?= 3

# A change to a requirement or to a package's metadata rebuilds the environment; code changes need
# nothing (the project's packages are installed editable).
REQUIREMENTS := $(wildcard requirements/*.txt) $(wildcard */pyproject.toml)
DIGITS_KERAS := model_dir/digits.keras

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: host-packages
host-packages: ## Install the Debian packages the build and tests use (only missing ones)
	scripts/install-host-packages

# pip stays in the environment (the mirror's wheelhouse build and `make lock` run it); uv installs the
# pinned set in parallel, which is faster than pip alone (the README has the figures). --native-tls:
# uv trusts what the system trusts (a TLS-inspecting proxy's CA included), as pip with the system bundle.
$(BIN)/.installed: $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet uv -c requirements/constraints.txt
	$(BIN)/uv pip install --quiet --native-tls --compile-bytecode --python $(BIN)/python \
		-r requirements/dev.txt -c requirements/constraints.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create the virtual environment with every pinned requirement

.PHONY: lock
lock: venv ## Regenerate requirements/constraints.txt from the virtual environment
	{ sed -n '1,2p' requirements/constraints.txt; $(BIN)/pip freeze --exclude-editable; } > requirements/constraints.txt.new
	mv requirements/constraints.txt.new requirements/constraints.txt

$(DIGITS_KERAS): | venv
	$(BIN)/tfstack-train-digits --output $@

# Built only when missing, so `make up` and `make test` never publish a surprise new version.
.PHONY: models-if-missing
models-if-missing: $(DIGITS_KERAS) | venv
	@[ -n "$$(ls -d serving_model/digits/[0-9]* 2>/dev/null)" ] \
		|| $(BIN)/tfstack-export-model $(DIGITS_KERAS) --name digits
	@[ -n "$$(ls -d serving_model/half_plus_two/[0-9]* 2>/dev/null)" ] \
		|| $(BIN)/tfstack-half-plus-two

.PHONY: models
models: venv ## Train digits and export both models from scratch
	rm -rf model_dir/digits.keras serving_model/digits serving_model/half_plus_two
	$(MAKE) models-if-missing

.PHONY: test
test: host-packages venv models-if-missing ## Run every test
	$(BIN)/pytest --numprocesses=$(TEST_WORKERS) --no-loadscope-reorder $(PYTEST_ARGS)

.PHONY: docs
docs: venv ## Regenerate the variable tables of the role READMEs from meta/argument_specs.yml
	$(BIN)/python scripts/role_docs.py

# The benchmark of the serving paths (bench/, command tfstack-bench; not part of `make test`): starts its
# own TF Serving stand-in and gunicorn on loopback and writes bench/results/<date>/ (report.md, PNG plots,
# results.json). BENCH_ARGS="--rest-url URL --grpc-target HOST:PORT --web-url URL [--lb-url URL]" measures
# a running box or fleet instead; `.venv/bin/tfstack-bench --help` lists the rest.
BENCH_ARGS ?=

.PHONY: bench
bench: venv models-if-missing ## Benchmark the in-process, REST, gRPC, web (and load balancer) paths into bench/results/<date>/
	$(BIN)/tfstack-bench $(BENCH_ARGS)

.PHONY: lint
lint: venv ## Static checks: ruff, yamllint, ansible-lint, syntax check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/python scripts/role_docs.py --check
	$(BIN)/ansible-playbook --syntax-check -i inventory.ini site.yml playbooks/*.yml

.PHONY: up
up: host-packages venv models-if-missing ## Bring the whole stack up on the local box (site.yml); TFSTACK_APT_SOURCE=auto|official|standin|mirror
	scripts/stack-up

.PHONY: fleet-up
fleet-up: host-packages venv models-if-missing ## Boot the multi-host fleet (mirror, HAProxy, 2 TF Serving, web) and run site.yml
	scripts/fleet-up

.PHONY: fleet-down
fleet-down: venv ## Remove the fleet's boxes and .box/fleet/
	$(BIN)/tfstack-fleet destroy

.PHONY: rolling-restart
rolling-restart: venv ## Restart every TF Serving host of the fleet, one at a time behind HAProxy
	$(BIN)/ansible-playbook -i .box/fleet/inventory.ini playbooks/rolling-update.yml -e rolling_update_restart=true

.PHONY: models-rollout
models-rollout: venv models-if-missing ## Roll out serving_model/ to the box with playbooks/models.yml
	$(BIN)/ansible-playbook -i .box/inventory.ini playbooks/models.yml

# The local box (box/, command tfstack-box): Debian 12 with systemd under systemd-nspawn, our `vagrant up`.
# BOX_ARGS="--name NAME --ssh-port PORT" addresses another box than the default tfstack on 2222.
BOX_ARGS ?=

.PHONY: box-up
box-up: venv ## Create and boot the local box (idempotent; image cached)
	$(BIN)/tfstack-box up $(BOX_ARGS)

.PHONY: box-down
box-down: venv ## Power the local box off, keeping its files
	$(BIN)/tfstack-box down $(BOX_ARGS)

.PHONY: box-destroy
box-destroy: venv ## Remove the local box: processes, cgroups, files, key, inventory
	$(BIN)/tfstack-box destroy $(BOX_ARGS)

.PHONY: box-ssh
box-ssh: venv ## Log in to the local box as vagrant
	$(BIN)/tfstack-box ssh $(BOX_ARGS)

# The stand-in's local signed apt repository (standin/standin_repo, command tfstack-standin-repo): what the box installs
# tensorflow-model-server from, since TF Serving's own repository is unreachable here.
STANDIN_REPO_PORT ?= 8099

.PHONY: standin-repo
standin-repo: host-packages venv ## Build (when changed), sign and serve the stand-in apt repository on 127.0.0.1
	$(BIN)/tfstack-standin-repo build
	$(BIN)/tfstack-standin-repo serve --port $(STANDIN_REPO_PORT)

.PHONY: standin-repo-stop
standin-repo-stop: venv ## Stop serving the stand-in apt repository
	$(BIN)/tfstack-standin-repo stop

.PHONY: clean
clean: ## Remove the virtual environment, the models and test output
	rm -rf $(VENV) model_dir/*.keras serving_model/*/ test-output .pytest_cache

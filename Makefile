# NexusOne developer entry points. `make` alone lists them.
# Local scripts live in deploy/local (the list of binaries: deploy/local/services.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# Extra arguments for the test runner / cargo bench, e.g. make test ARGS='-E test(config)'
ARGS ?=
LOCAL := deploy/local

.PHONY: help run test contract manifests lint deny fmt bench openapi build stack-up stack-down stack-status clean-local

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Postgres + NATS, build, migrate, start every built binary (Ctrl-C stops them)
	@bash $(LOCAL)/run.sh

test: ## Postgres + NATS, build, run every test (nextest, else cargo test)
	@bash $(LOCAL)/test.sh $(ARGS)

contract: ## the API contract test alone: schemathesis over the whole local stack (make test runs it too)
	@bash $(LOCAL)/contract.sh

manifests: ## the Kubernetes manifest test alone: every overlay rendered, schema-validated and checked (make test runs it too)
	@bash $(LOCAL)/manifests.sh

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deny: ## cargo deny (deny.toml): licenses, duplicate versions, sources; advisories if a local copy exists
	@bash $(LOCAL)/deny.sh

fmt: ## format the workspace
	$(CARGO) fmt --all

bench: ## Postgres + NATS, then cargo bench --workspace
	@bash $(LOCAL)/bench.sh $(ARGS)

openapi: ## regenerate the committed services/gateway/openapi.json
	$(CARGO) run -q -p nexus-gateway -- openapi > services/gateway/openapi.json.tmp \
	  && mv services/gateway/openapi.json.tmp services/gateway/openapi.json \
	  || { rm -f services/gateway/openapi.json.tmp; exit 1; }

build: ## build every binary (debug)
	$(CARGO) build --workspace --bins

stack-up: ## make Postgres and NATS answer (reuse, else start project-local ones)
	@bash $(LOCAL)/stack.sh up

stack-down: ## stop the project-local Postgres and NATS
	@bash $(LOCAL)/stack.sh down

stack-status: ## what answers where
	@bash $(LOCAL)/stack.sh status

clean-local: ## stop the project-local servers and delete .local (their data, logs)
	@bash $(LOCAL)/stack.sh clean

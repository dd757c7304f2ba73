# parkgrid: `make test` and `make demo` do all their own set-up on a fresh Debian/Ubuntu box.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_TOOLS := mosquitto:mosquitto mosquitto_pub:mosquitto-clients socat:socat mbpoll:mbpoll tmux:tmux chromium:chromium :fonts-noto-cjk openssl:openssl ip:iproute2 haproxy:haproxy systemd-analyze:systemd

.PHONY: all install system-deps demo-deps lint format test test-long doc-images bench soak demo schema clean

all: test

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "parkgrid needs Python 3.11 or newer"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The tests talk to real peers: mosquitto, socat ptys, mbpoll (libmodbus), tmux, Chromium.
# An entry is command:package; ":package" (no command, e.g. the CJK font for the dashboard's
# screenshots) is checked with dpkg.
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  if [ -z "$$cmd" ]; then dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	  else command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "parkgrid's tests need these system packages. Run:"; \
	    echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# On every core (pytest-xdist, one module per worker so module fixtures start once).
test: $(STAMP) system-deps lint
	$(PY) -m pytest -q -n auto --dist loadfile --durations=30 $(PYTEST_ARGS)

# The tests that install the package or a release as a box would, the whole-town demo, and
# the whole rigs of 15 s and more, the fault rig among them (marked `long`): CI runs them after `make test`, which leaves them out to stay
# under 15 minutes.
test-long: $(STAMP) system-deps
	$(PY) -m pytest -q -m long $(PYTEST_ARGS)

# The README's screenshots (docs/images) from the browser tests that take them; a plain test
# run leaves them in its artifacts folder and the work tree untouched.
doc-images: $(STAMP) system-deps
	PARKGRID_DOC_IMAGES=1 $(PY) -m pytest -q tests/central/test_dashboard.py tests/central/test_drivers_browser.py

# Every benchmark prints its figures beside a floor measured in the same run (bench/_*.py are
# shared helpers, not benchmarks).
bench: $(STAMP) system-deps
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The fault, bad-input and security tests, 30 times longer and faster; prints the table.
soak: $(STAMP) system-deps
	$(PY) soak/soak.py $(SOAK_ARGS)

# The whole town on this machine: broker, central, the boxes and the simulators.
# DEMO_ARGS passes options on, e.g. make demo DEMO_ARGS="--speed 120 --port 8080".
demo: $(STAMP) demo-deps
	$(VENV)/bin/parkgrid demo $(DEMO_ARGS)

# The demo prefers Mosquitto (faster) and installs it when it can (as root, with apt-get);
# without it the demo runs its embedded pure-Python broker, so this step never stops it.
demo-deps:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing mosquitto for the demo"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >/dev/null \
	      || echo "could not install mosquitto: the demo uses its embedded broker"; \
	  else \
	    echo "no mosquitto: the demo uses its embedded pure-Python broker"; \
	  fi; \
	fi

schema: $(STAMP)
	$(VENV)/bin/parkgrid schema --out docs/protocols/uplink-v1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts

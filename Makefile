# The two commands of README.md: `make demo` and `make test`. Both set up what they need.
# `make screenshots` renews docs/screenshots/*.png (tests only ever write to temporary folders).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test screenshots venv sysdeps-demo sysdeps-test lint clean

$(BIN)/fabnet: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/fabnet

venv: $(BIN)/fabnet

sysdeps-demo:
	bash scripts/install-system-deps.sh demo

sysdeps-test:
	bash scripts/install-system-deps.sh test

demo: venv sysdeps-demo
	$(BIN)/fabnet demo

lint: venv
	$(BIN)/ruff check fabnet tests bench
	$(BIN)/ruff format --check fabnet tests bench
	$(BIN)/mypy

# three workers, a test file each at a time: most tests wait on brokers, ptys and processes
test: venv sysdeps-test lint
	$(BIN)/pytest -q -n 3 --dist loadfile

screenshots: venv sysdeps-test
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/web/test_browser.py \
		tests/web/test_economy_browser.py tests/web/test_federation_pages.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The two commands a newcomer needs: `make run` (a single-node cluster) and `make test`.
# Both create or update .venv from pyproject.toml (pinned by constraints.txt) as needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
SOURCES := $(wildcard engenho tests benchmarks tools migrations)

.PHONY: run test lint typecheck imports unit bench format clean venv node-packages busybox-image

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) node-packages busybox-image
	$(BIN)/engenho server

test: node-packages lint typecheck imports unit

# The oci runtime runs containers with crun; the busybox image is built from busybox-static.
node-packages:
	@command -v crun >/dev/null || apt-get install -y -q crun >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q crun >/dev/null) \
		|| echo "crun could not be installed: the node runs pods with the fake runtime"
	@test -x /bin/busybox || apt-get install -y -q busybox-static >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q busybox-static >/dev/null) \
		|| echo "busybox-static could not be installed: there is no busybox image"

# busybox:latest in the local image store, so `kubectl run demo --image=busybox` needs no registry.
busybox-image: $(STAMP) node-packages
	@test ! -x /bin/busybox || ($(BIN)/engenho image build-busybox --output $(VENV)/busybox.tar >/dev/null \
		&& $(BIN)/engenho image import $(VENV)/busybox.tar)

lint: $(STAMP)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy --strict engenho

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null) \
		|| echo "wrk could not be installed: API creates fall back to a Python client"
	$(BIN)/python -m benchmarks

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

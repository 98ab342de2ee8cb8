#!/usr/bin/env bash
# The Dockerfile's install steps, without Docker: build the wheel (`pip wheel --no-deps`), install it with the
# image's extras into a fresh virtualenv in a temporary directory, then run `poolgate --version` and
# `poolgate check` on the containers' config (deploy/compose/poolgate.yaml) from that virtualenv.
# `make check-image` runs it; it is not part of `make test` (it downloads and installs every dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/poolgate-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "check-image: building the wheel"
"$python" -m pip wheel --quiet --no-cache-dir --no-deps --wheel-dir "$work/wheels" .
wheel="$(ls "$work"/wheels/poolgate-*.whl)"

echo "check-image: installing $(basename "$wheel")[postgres,otel] into a fresh virtualenv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-cache-dir "${wheel}[postgres,otel]"

# Run from an empty directory: the installed package, not this checkout, must answer.
mkdir "$work/run"
cd "$work/run"
poolgate="$work/venv/bin/poolgate"
version="$("$poolgate" --version)"
expected="poolgate $("$work/venv/bin/python" -c 'import poolgate; print(poolgate.__version__)')"
[ "$version" = "$expected" ] || { echo "check-image: --version printed '$version', not '$expected'" >&2; exit 1; }
echo "check-image: $version"
"$work/venv/bin/python" -c 'import asyncpg, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' \
    || { echo "check-image: the extras are not installed" >&2; exit 1; }
"$work/venv/bin/python" - <<'PY'
import importlib.resources, fake_upstream, poolgate, poolgate_cli
assert importlib.resources.files("poolgate_cli").joinpath("demo.yaml").is_file(), "the demo config is not packaged"
for package in (poolgate, poolgate_cli, fake_upstream):
    assert "site-packages" in package.__file__, package.__file__
PY
# The demo's fake upstream is a program of its own, shipped in the wheel.
"$work/venv/bin/python" -m fake_upstream --help >/dev/null

# The variables the containers' config names, as compose passes them.
export POOLGATE_EDGE_KEY=check-image-edge-key-0001 POOLGATE_SELECTOR_TOKEN=check-image-selector-0001 \
    POOLGATE_ADMIN_TOKEN=check-image-admin-token-0001 OPENAI_KEY_1=sk-check-image-1111 \
    OPENAI_KEY_2=sk-check-image-2222 ANTHROPIC_KEY_1=sk-ant-check-image-3333
cp "$OLDPWD/deploy/compose/poolgate.yaml" poolgate.yaml
"$poolgate" check poolgate.yaml
"$poolgate" demo --help >/dev/null

# The demo from the installed wheel: `up` starts the packaged fake upstream (python -m fake_upstream), the selector
# and the edge; one chat completion goes through them, then SIGTERM stops all three.
echo "check-image: running poolgate demo"
read -r edge selector upstream < <("$work/venv/bin/python" -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
"$poolgate" demo --dir "$work/demo" --edge-port "$edge" --selector-port "$selector" --upstream-port "$upstream" \
    >"$work/demo.log" 2>&1 &
demo=$!
if ! "$work/venv/bin/python" - "$edge" <<'PY'; then
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1):
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("check-image: the demo's edge was not ready within 60 s")
        time.sleep(0.2)
request = urllib.request.Request(f"{url}/v1/chat/completions", headers={
    "Authorization": "Bearer poolgate-demo", "Content-Type": "application/json"}, data=json.dumps({
    "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode())
with urllib.request.urlopen(request, timeout=30) as response:
    assert json.load(response)["choices"][0]["message"]["content"], "the demo answered no text"
PY
    kill -TERM "$demo" 2>/dev/null || true
    wait "$demo" || true
    cat "$work/demo.log" >&2
    exit 1
fi
kill -TERM "$demo"
wait "$demo" || { echo "check-image: poolgate demo did not stop cleanly" >&2; cat "$work/demo.log" >&2; exit 1; }
echo "check-image: the demo served a chat completion"
echo "check-image: OK"

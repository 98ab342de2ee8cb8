"""The deployment files (Dockerfile, compose.yaml, the systemd units) read as their tools read them, and every
command they run is a real ``poolgate`` command on a config that ``poolgate check`` accepts."""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from poolgate_cli.main import build_parser, main
from tests.support import ROOT, free_port, stop_process, wait_ready

CONTAINER_CONFIG = "/etc/poolgate/poolgate.yaml"
COMPOSE_CONFIG = ROOT / "deploy" / "compose" / "poolgate.yaml"
SYSTEMD_CONFIG = ROOT / "deploy" / "poolgate.yaml"
UNITS = ("poolgate-selector.service", "poolgate-edge.service")
SECRETS = {
    "POOLGATE_EDGE_KEY": "edge-key-0123456789abcdef", "POOLGATE_SELECTOR_TOKEN": "selector-token-0123456789",
    "POOLGATE_ADMIN_TOKEN": "admin-token-0123456789ab", "OPENAI_KEY_1": "sk-test-one-aaaa",
    "OPENAI_KEY_2": "sk-test-two-bbbb", "ANTHROPIC_KEY_1": "sk-ant-test-cccc", "POSTGRES_PASSWORD": "pg-password",
}
"""The variables the example configs name, as an operator sets them."""


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (INSTRUCTION, arguments), continuation lines joined, comments left out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        instruction, _, arguments = whole.strip().partition(" ")
        instructions.append((instruction.upper(), " ".join(arguments.split())))
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def last_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    start = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[start:]


def only(stage: list[tuple[str, str]], instruction: str) -> str:
    found = [arguments for name, arguments in stage if name == instruction]
    assert len(found) == 1, f"{instruction}: {found}"
    return found[0]


def is_poolgate_command(arguments: list[str]) -> None:
    """``arguments`` parse as a ``poolgate`` command line, and ``poolgate SUBCOMMAND --help`` lists its options."""
    args = build_parser().parse_args(arguments)  # exits 2 on an unknown subcommand or option
    ran = subprocess.run([sys.executable, "-m", "poolgate_cli", args.command, "--help"], capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, f"poolgate {args.command} --help: {ran.stderr}"
    for option in subcommand(arguments)[1:]:
        assert option in ran.stdout, f"poolgate {args.command}: no option {option}"


def subcommand(arguments: list[str]) -> list[str]:
    """A ``poolgate`` command line's subcommand with its option names (global options and values left out)."""
    words = [word for word in arguments if word != "--log-format" and word not in ("json", "text")]
    return [words[0], *(word for word in words[1:] if word.startswith("--"))]


# -- Dockerfile ------------------------------------------------------------------------------------------------------

def test_the_image_is_python_slim_and_runs_as_a_user() -> None:
    stages = [arguments for name, arguments in dockerfile() if name == "FROM"]
    assert all(stage.startswith("python:3.11-slim") for stage in stages), stages
    user = only(last_stage(), "USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert "useradd --system --uid 10001 --user-group" in only(last_stage(), "RUN")
    assert user == "poolgate"


def test_the_image_installs_the_wheel_with_the_extras_the_check_script_installs() -> None:
    build = " ".join(arguments for name, arguments in dockerfile() if name == "RUN")
    assert "python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in build
    install = only(last_stage(), "RUN")
    assert '"${wheel}[postgres,otel]"' in install
    script = (ROOT / "scripts" / "check-image-steps.sh").read_text()
    assert "pip wheel --no-deps" in script and '"${wheel}[postgres,otel]"' in script


def test_the_command_picks_the_process_and_the_default_is_the_edge() -> None:
    stage = last_stage()
    assert json.loads(only(stage, "ENTRYPOINT")) == ["poolgate"]
    command = json.loads(only(stage, "CMD"))
    assert command == ["edge", "--config", CONTAINER_CONFIG]
    is_poolgate_command(command)


def test_the_health_check_asks_the_edge_with_python() -> None:
    check = only(last_stage(), "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8080/healthz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")


def test_the_exposed_ports_are_the_configs() -> None:
    assert set(only(last_stage(), "EXPOSE").split()) == {"8080", "50151"}
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    assert config["edge"]["listen"] == "0.0.0.0:8080"
    assert config["selector"]["listen"] == "0.0.0.0:50151"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".git", ".venv", "tests", "deploy/compose/tls", "*.db"):
        assert name in ignored


# -- compose.yaml ----------------------------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (with ``:ro`` kept on the host side's end)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        out[target] = source + "".join(f":{m}" for m in mode)
    return out


def test_compose_runs_a_selector_and_an_edge_from_one_config() -> None:
    services = compose()["services"]
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"selector", "edge"}
    for name in default:
        assert mounts(services[name])[CONTAINER_CONFIG] == "./deploy/compose/poolgate.yaml:ro"
        command = services[name]["command"]
        assert command[0] == name and command[command.index("--config") + 1] == CONTAINER_CONFIG
    assert services["edge"]["ports"] == ["8080:8080"]
    assert "ports" not in services["selector"]  # reached on the containers' network only
    assert services["edge"]["depends_on"]["selector"]["condition"] == "service_healthy"
    assert mounts(services["selector"])["/var/lib/poolgate"] == "selector-data"


def test_the_edge_points_at_the_selector_service() -> None:
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    host, _, port = config["edge"]["selector"].rpartition(":")
    assert host in compose()["services"] and port == config["selector"]["listen"].rpartition(":")[2]
    assert config["selector"]["database"].startswith("/var/lib/poolgate/")
    assert config["selector"]["overlay"].startswith("/var/lib/poolgate/")


def test_the_postgres_profile_runs_two_replicas_on_one_database() -> None:
    services = compose()["services"]
    profile = {name for name, service in services.items() if "postgres" in service.get("profiles", [])}
    assert profile == {"postgres", "selector-pg-1", "selector-pg-2", "edge-pg"}
    assert services["postgres"]["image"].startswith("postgres:")
    replicas = [services["selector-pg-1"], services["selector-pg-2"]]
    assert replicas[0] == replicas[1]
    command = replicas[0]["command"]
    database = command[command.index("--database") + 1]
    assert database.startswith("postgresql://poolgate@postgres:5432/")
    assert replicas[0]["depends_on"]["postgres"]["condition"] == "service_healthy"
    edge = services["edge-pg"]["command"]
    assert edge[edge.index("--selector") + 1] == "selector-pg-1:50151,selector-pg-2:50151"
    assert services["edge-pg"]["ports"] == ["8081:8080"]


def test_compose_commands_are_poolgate_commands() -> None:
    services = compose()["services"]
    commands = [service["command"] for service in services.values() if "command" in service]
    assert {tuple(subcommand(command)) for command in commands} == {
        ("selector", "--config"), ("edge", "--config"), ("selector", "--config", "--database"),
        ("edge", "--config", "--selector")}
    for command in commands:
        is_poolgate_command(command)


def test_compose_passes_every_variable_the_config_names() -> None:
    services = compose()["services"]
    text = COMPOSE_CONFIG.read_text()
    for name in ("selector", "selector-pg-1"):
        for variable in ("POOLGATE_SELECTOR_TOKEN", "POOLGATE_ADMIN_TOKEN", "OPENAI_KEY_1", "OPENAI_KEY_2",
                         "ANTHROPIC_KEY_1"):
            assert f"${{{variable}}}" in text and variable in services[name]["environment"]
    for name in ("edge", "edge-pg"):
        assert set(services[name]["environment"]) == {"POOLGATE_SELECTOR_TOKEN", "POOLGATE_EDGE_KEY"}


def test_compose_health_checks_compile() -> None:
    for service in compose()["services"].values():
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:3] == ["python", "-c"]:
            compile(test[3], "healthcheck", "exec")


# -- systemd ---------------------------------------------------------------------------------------------------------

def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((ROOT / "deploy" / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_units_run_poolgate_as_its_user_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] == "poolgate"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/poolgate" and service["StateDirectory"] == "poolgate"
    assert service["CapabilityBoundingSet"] == ""
    executable, *arguments = shlex.split(service["ExecStart"])
    assert executable == "/opt/poolgate/venv/bin/poolgate"
    process = name.removeprefix("poolgate-").removesuffix(".service")
    assert subcommand(arguments) == [process, "--config"]
    assert arguments[arguments.index("--config") + 1] == CONTAINER_CONFIG
    is_poolgate_command(arguments)
    if "ExecReload" in service:
        reload = shlex.split(service["ExecReload"])
        assert reload[0] == executable
        is_poolgate_command(reload[1:])


def test_the_edge_starts_after_the_selector() -> None:
    edge = unit("poolgate-edge.service")["Unit"]
    assert "poolgate-selector.service" in edge["After"].split()
    assert "poolgate-selector.service" in edge["Wants"].split()


def test_the_env_example_names_every_variable_of_the_config() -> None:
    names = {line.split("=")[0] for line in (ROOT / "deploy" / "poolgate.env.example").read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    text = SYSTEMD_CONFIG.read_text()
    assert names and all(f"${{{name}}}" in text for name in names)
    assert text.count("${") == len(names)


# -- the example configs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [COMPOSE_CONFIG, SYSTEMD_CONFIG], ids=["compose", "systemd"])
def test_the_example_configs_pass_check(config: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    assert main(["check", str(config)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "pool openai" in out and "pool anthropic" in out
    assert not any(value in out for value in SECRETS.values())


def test_the_compose_config_names_the_certificate_make_tls_writes() -> None:
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    assert config["selector"]["tls"] == {"cert": "/etc/poolgate/tls/selector.pem",
                                         "key": "/etc/poolgate/tls/selector.key"}
    assert config["edge"]["selector_tls"] == {"ca": "/etc/poolgate/tls/ca.pem"}
    script = (ROOT / "deploy" / "compose" / "make-tls.sh").read_text()
    for name in ("ca.pem", "selector.pem", "selector.key", "selector selector-pg-1 selector-pg-2"):
        assert name in script


def test_the_edge_reaches_the_selector_through_make_tls_certificates(tmp_path: Path) -> None:
    """make-tls.sh's certificate, verified by the edge under the compose service's name, serves a request; and
    ``poolgate accounts list`` reaches the selector at 127.0.0.1 (as inside a selector's container)."""
    assert shutil.which("openssl"), "make-tls.sh needs openssl: `make deploy-deps` installs it (make test does)"
    tls = tmp_path / "tls"
    subprocess.run([str(ROOT / "deploy" / "compose" / "make-tls.sh"), str(tls)], check=True, capture_output=True,
                   timeout=60)
    edge, selector, fake = free_port(), free_port(), free_port()
    config = tmp_path / "poolgate.yaml"
    config.write_text(f"""
selector:
  listen: 127.0.0.1:{selector}
  auth: {{tokens: ["{SECRETS['POOLGATE_SELECTOR_TOKEN']}"], admin_tokens: ["{SECRETS['POOLGATE_ADMIN_TOKEN']}"]}}
  tls: {{cert: {tls / 'selector.pem'}, key: {tls / 'selector.key'}}}
edge:
  listen: 127.0.0.1:{edge}
  selector: 127.0.0.1:{selector}
  selector_tls: {{ca: {tls / 'ca.pem'}, server_name: selector}}
  api_keys: ["{SECRETS['POOLGATE_EDGE_KEY']}"]
  fake_upstream: 127.0.0.1:{fake}
pools:
  openai:
    base_url: http://127.0.0.1:{fake}/v1
    accounts: [{{name: first, key: sk-demo-work-0001}}]
models:
  gpt-*: openai
""")
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{edge}"
        wait_ready(url, process)
        with openai.OpenAI(base_url=f"{url}/v1", api_key=SECRETS["POOLGATE_EDGE_KEY"], max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini",
                                                        messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
        admin = tmp_path / "admin.yaml"  # as the compose config: the CA alone, the address from selector.listen
        admin.write_text(config.read_text().replace(", server_name: selector", ""))
        accounts = subprocess.run([sys.executable, "-m", "poolgate_cli", "accounts", "list", "--config", str(admin)],
                                  capture_output=True, text=True, timeout=60)
        assert accounts.returncode == 0 and "first" in accounts.stdout, accounts.stdout + accounts.stderr
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output

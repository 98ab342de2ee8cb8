"""Config validation: every accepted form, and messages that name the path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from poolgate.config import ConfigError, load_config, parse_config


def errors_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, environ=environ or {})
    return exc.value.errors


def test_accounts_list_with_every_setting() -> None:
    config = parse_config("""
pools:
  openai:
    accounts:
      - name: personal
        key: sk-test-personal-1111
        weight: 3
        priority: 2
        rpm_limit: 500
        itpm_limit: 30000
        otpm_limit: 8000
        max_concurrency: 4
      - {name: legacy, api_key: sk-test-legacy-2222, tpm_limit: 1001}
""")
    personal, legacy = config.pools["openai"].accounts
    assert (personal.weight, personal.priority, personal.rpm_limit, personal.max_concurrency) == (3, 2, 500, 4)
    assert (personal.itpm_limit, personal.otpm_limit) == (30000, 8000)
    assert legacy.key == "sk-test-legacy-2222"
    assert (legacy.itpm_limit, legacy.otpm_limit) == (500, 501)  # legacy tpm split half/half
    assert (legacy.weight, legacy.priority, legacy.rpm_limit, legacy.max_concurrency) == (1, 1, 0, 0)


def test_shorthands_and_format_defaults() -> None:
    config = parse_config("""
pools:
  one: {api_key: sk-test-one-1111}
  many: {api_keys: [sk-test-a-1111, sk-test-b-2222], format: anthropic}
""")
    assert [a.name for a in config.pools["one"].accounts] == ["key-1"]
    assert [a.name for a in config.pools["many"].accounts] == ["key-1", "key-2"]
    assert config.pools["one"].base_url == "https://api.openai.com/v1"
    assert config.pools["one"].auth_scheme == "bearer"
    assert config.pools["many"].base_url == "https://api.anthropic.com"
    assert config.pools["many"].auth_scheme == "x-api-key"


def test_defaults_apply_unless_a_pool_overrides() -> None:
    config = parse_config("""
defaults:
  strategy: p2c
  cooldown: {base: 2s, max: 10m}
  circuit: {failures: 7}
  failover: {max_attempts: 5}
pools:
  a: {api_key: sk-test-a-1111}
  b:
    api_key: sk-test-b-2222
    strategy: weighted
    cooldown: {max: 1m}
""")
    a, b = config.pools["a"], config.pools["b"]
    assert (a.strategy, a.cooldown.base, a.cooldown.max, a.circuit.failures, a.failover.max_attempts) == (
        "p2c", 2.0, 600.0, 7, 5)
    assert (b.strategy, b.cooldown.base, b.cooldown.max) == ("weighted", 2.0, 60.0)
    assert (a.cooldown.max_retry_after, a.circuit.cooldown, a.lease_ttl) == (900.0, 30.0, 900.0)


def test_builtin_defaults() -> None:
    config = parse_config("pools:\n  a: {api_key: sk-test-a-1111}\n")
    pool = config.pools["a"]
    assert (pool.strategy, pool.cooldown.base, pool.cooldown.max, pool.cooldown.max_retry_after) == (
        "round_robin", 1.0, 300.0, 900.0)
    assert (pool.circuit.failures, pool.failover.max_attempts, pool.session_ttl) == (5, 3, 3600.0)
    assert config.selector.listen == "127.0.0.1:50151"
    assert config.edge.listen == "127.0.0.1:8080" and config.edge.auth is True
    assert config.edge.body_limit == 32 * 1024 * 1024


def test_environment_expansion() -> None:
    config = parse_config(
        "pools:\n  a:\n    api_keys: ['${KEY_A}', '${KEY_B:-sk-test-default-9999}']\n",
        environ={"KEY_A": "sk-test-from-env-1234"},
    )
    assert [a.key for a in config.pools["a"].accounts] == ["sk-test-from-env-1234", "sk-test-default-9999"]


def test_missing_variable_is_named() -> None:
    assert errors_of("pools:\n  a:\n    api_key: '${OPENAI_KEY}'\n") == [
        "pools.a.api_key: environment variable OPENAI_KEY is not set "
        "(export it, or write ${OPENAI_KEY:-default} to give a default)"
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("pools:\n  openai:\n    accounts:\n      - {key: sk-test-a-1}\n      - {key: sk-test-b-2, priority: 3}\n",
     "pools.openai.accounts[1].priority: must be 0, 1 or 2 (or low, normal, high), got 3"),
    ("pools:\n  a:\n    api_key: sk-test-1\n    accounts: [{key: sk-test-2}]\n",
     "pools.a: set only one of accounts, api_key and api_keys (got accounts and api_key)"),
    ("pools:\n  a:\n    accounts: [{key: ''}]\n",
     "pools.a.accounts[0].key: is empty: set the account's API key, or remove the account"),
    ("pools:\n  a:\n    api_keys: [sk-test-1, '  ']\n",
     "pools.a: api_keys[1] is empty: set the key, or remove the entry"),
    ("pools:\n  a:\n    api_key: sk-test-1\n    format: gemini\n",
     "pools.a.format: must be 'openai' or 'anthropic', got 'gemini'"),
    ("pools:\n  a:\n    api_key: sk-test-1\n    stratgy: p2c\n",
     "pools.a.stratgy: unknown setting: remove it or check its spelling (see the README's config reference)"),
    ("pools:\n  a:\n    accounts: [{key: sk-test-1, weight: 0}]\n",
     "pools.a.accounts[0].weight: must be greater than or equal to 1, got 0"),
    ("pools:\n  a:\n    api_key: sk-test-1\n    cooldown: {base: soon}\n",
     "pools.a.cooldown.base: must be a duration such as 30s, 5m or 1h, got 'soon'"),
    ("pools:\n  a:\n    accounts: [{name: x, key: sk-test-1}, {name: x, key: sk-test-2}]\n",
     "pools.a: two accounts are named 'x': account names must be unique in a pool"),
    ("pools:\n  a: {api_key: sk-test-1}\nmodels: {gpt-4o: nope}\n",
     "(top level): models.gpt-4o: names pool 'nope', which is not configured (pools: a)"),
    ("pools: {}\n", "pools: no pools: add at least one pool"),
    ("pools:\n  a: {}\n", "pools.a: no accounts: add accounts:, api_key:, api_keys: or credentials_dir:"),
    ("", "the file is empty: add at least a pools: section"),
])
def test_error_messages(text: str, expected: str) -> None:
    assert expected in errors_of(text)


def test_every_error_is_reported_at_once() -> None:
    errors = errors_of("""
pools:
  a:
    accounts:
      - {key: '', priority: 9, weight: -1}
  b: {api_key: '${NOT_SET}'}
""")
    assert len(errors) == 4, errors


def test_a_bad_key_is_never_echoed() -> None:
    errors = errors_of("pools:\n  a:\n    accounts: [{key: 12345678901234}]\n")
    assert errors == ["pools.a.accounts[0].key: must be a string (quote it in YAML)"]
    assert all("12345678901234" not in e for e in errors)


def test_invalid_yaml_says_where() -> None:
    assert errors_of("pools:\n  a: [unclosed\n")[0].startswith("line 3, column 1: not valid YAML")


def test_database_defaults_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("pools:\n  a: {api_key: sk-test-1}\n")
    assert load_config(path).selector.database == str(tmp_path / "poolgate.db")


def test_relative_database_path_is_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("selector: {database: state/gw.db}\npools:\n  a: {api_key: sk-test-1}\n")
    assert load_config(path).selector.database == str(tmp_path / "state" / "gw.db")


@pytest.mark.parametrize(("section", "error"), [
    ("edge: {listen: '8080'}", "edge.listen: '8080' must be host:port, e.g. 127.0.0.1:8080"),
    ("edge: {listen: 'localhost:99999'}", "edge.listen: 'localhost:99999': port 99999 is out of range (0-65535)"),
    ("edge: {fake_upstream: 'x'}", "edge.fake_upstream: 'x' must be host:port, e.g. 127.0.0.1:8080"),
    ("selector: {listen: 'unix:'}", "selector.listen: 'unix:' names no socket file"),
    ("selector: {metrics_listen: 'nohost'}", "selector.metrics_listen: 'nohost' must be host:port"),
])
def test_listen_addresses_are_checked_with_the_config(section: str, error: str) -> None:
    """A bad listen address is a config error (``poolgate check`` reports it), not a failure at start."""
    errors = errors_of("pools: {p: {accounts: [{name: a, key: sk-test-0123456789}]}}\n" + section)
    assert len(errors) == 1 and errors[0].startswith(error), errors


@pytest.mark.parametrize("section", [
    "selector: {listen: 'unix:/run/poolgate/selector.sock', metrics_listen: ':9464'}",
    "selector: {listen: '[::1]:50051', metrics_listen: '127.0.0.1:0'}",
    "edge: {listen: '0.0.0.0:8080', fake_upstream: '127.0.0.1:9090'}",
])
def test_good_listen_addresses_pass(section: str) -> None:
    parse_config("pools: {p: {accounts: [{name: a, key: sk-test-0123456789}]}}\n" + section)


def test_the_readme_config_reference_is_a_valid_config() -> None:
    """The README's annotated config (every section, the defaults) parses as it is shown."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme[readme.index("```yaml\nselector:") + len("```yaml\n"):]
    block = block[:block.index("```")]
    keys = {name: f"sk-test-{name.lower()}-000000001" for name in (
        "POOLGATE_CLIENT_KEY", "OPENAI_KEY_1", "OPENAI_KEY_2", "ANTHROPIC_KEY_1", "ANTHROPIC_KEY_2")}
    config = parse_config(block, environ=keys)
    assert config.defaults.probe_leases == 1 and config.edge.timeouts.first_byte == 120.0
    assert set(config.pools) == {"openai", "claude"}

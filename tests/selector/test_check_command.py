"""``poolgate check FILE``: validates, prints what would be served, exits 1 listing every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from poolgate_cli.main import main

GOOD = """
edge:
  api_keys: ["edge-client-key-0001"]
defaults:
  strategy: p2c
pools:
  openai:
    api_keys: ["sk-test-first-key-aaaa", "sk-test-second-key-bbbb"]
  claude:
    format: anthropic
    strategy: weighted
    accounts:
      - {name: main, key: sk-ant-test-main-cccc, weight: 3, rpm_limit: 50}
models:
  "claude-*": claude
"""


def test_good_config_prints_what_it_serves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pool openai: openai at https://api.openai.com/v1, strategy p2c, 2 account(s)" in out
    assert "key-2 (…bbbb) weight 1, priority 1" in out
    assert "main (…cccc) weight 3, priority 1, rpm 50" in out
    assert "model claude-* -> claude" in out
    assert "sk-test-first-key-aaaa" not in out


def test_bad_config_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text("""
pools:
  openai:
    strategy: fastest
    accounts:
      - {name: a, key: sk-test-a-0000000001}
      - {name: b, key: sk-test-b-0000000002, priority: 3}
  claude:
    api_key: sk-ant-x
    accounts: [{key: sk-ant-y}]
""")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "pools.openai.accounts[1].priority: must be 0, 1 or 2 (or low, normal, high), got 3" in err
    assert "pools.claude: set only one of accounts, api_key and api_keys" in err


def test_unknown_strategy_lists_the_installed_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text("pools:\n  openai:\n    strategy: fastest\n    api_key: sk-test-a-0000000001\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "pools.openai.strategy: unknown strategy 'fastest'; installed strategies:" in err
    for name in ("fill_first", "least_loaded", "p2c", "random", "reset_soonest", "round_robin", "weighted", "zenith"):
        assert name in err


def test_third_party_strategy_is_picked_up_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text("edge: {auth: false}\npools:\n  openai:\n    strategy: lowest_latency\n"
                    "    api_key: sk-test-a-0000000001\n")
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    assert "strategy lowest_latency" in capsys.readouterr().out


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().err


def test_a_database_the_selector_cannot_use_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text('selector:\n  database: "mysql://operator:hunter2@db.internal/poolgate"\n' + GOOD)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert ("selector.database: cannot use the database mysql://operator:***@db.internal/poolgate: "
            "No module named 'MySQLdb'") in err
    assert "hunter2" not in err


def test_checking_creates_no_database(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(GOOD)
    assert main(["check", str(path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poolgate.yaml"]


def test_an_unreadable_database_url_is_a_problem_that_quotes_no_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text('selector:\n  database: "postgresql://operator@db.internal:hunter2/poolgate"\n' + GOOD)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "selector.database: cannot use the database postgresql://…: the URL cannot be read" in err
    assert "hunter2" not in err


def test_bad_classify_rules_are_refused_naming_their_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text("""
defaults:
  classify:
    - {match: {status: 429, message: daily}, class: quota_exhausted, rest: 6h}
    - {match: {}, class: quota_exhausted}
pools:
  openai:
    api_key: sk-test-a-0000000001
    classify:
      - {match: {code: x}, class: sleepy}
""")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "defaults.classify[1].match: match needs at least one of status, type, code, message" in err
    assert "pools.openai.classify[0].class" in err and "sleepy" in err

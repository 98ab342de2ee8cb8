"""``poolgate accounts list``: what one account's lines say."""

from __future__ import annotations

from poolgate.v1 import selector_pb2 as pb
from poolgate_cli.admin import _format_status


def test_an_account_resting_for_one_model_says_which_and_for_how_long() -> None:
    status = pb.AccountStatus(name="work", state=pb.ACCOUNT_STATE_HEALTHY, credential_redacted="…77c1",
                              model_cooldowns=[
                                  pb.ModelCooldown(scope="gpt-4o", remaining_ms=28_000,
                                                   reason="rate limited (429) for gpt-4o, cooling 30 s"),
                                  pb.ModelCooldown(scope="claude-opus-*", probing=True, reason="rate limited")])
    lines = _format_status(status).splitlines()
    assert lines[0].split()[:2] == ["work", "healthy"] and lines[0].endswith("…77c1")
    assert lines[1].strip() == "model gpt-4o: 28 s left (rate limited (429) for gpt-4o, cooling 30 s)"
    assert lines[2].strip() == "model claude-opus-*: one probe (rate limited)"

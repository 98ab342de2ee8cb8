"""The error rate an account shows is the share of its recent outcomes that failed (not an average that starts at 0)."""

from __future__ import annotations

import pytest

from selector_service.domain.outcomes import Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, clock, make_core, pool_config

__all__ = ["clock", "make_core"]  # fixtures used here


async def outcomes(core: SelectorCore, *results: Outcome) -> float:
    """Report ``results`` on the pool's one account, one lease each; its error rate afterwards."""
    for result in results:
        grant = await core.select(SelectionRequest(pool="p"), (), timeout=0)
        assert (await core.report(OutcomeReport(grant.lease.lease_id, result, http_status=500))).recorded
    return core.pools["p"].accounts["p/a"].error_rate


@pytest.mark.parametrize(("results", "rate"), [
    ((Outcome.SERVER_ERROR,) * 3, 1.0),
    ((Outcome.SERVER_ERROR,), 1.0),
    ((Outcome.SUCCESS, Outcome.SERVER_ERROR), 0.5),
    ((Outcome.SERVER_ERROR, Outcome.SUCCESS, Outcome.SUCCESS, Outcome.SUCCESS), 0.25),
    ((Outcome.CLIENT_ERROR, Outcome.SERVER_ERROR), 1.0),  # a client's mistake is not the account's
], ids=["3 of 3", "1 of 1", "1 of 2", "1 of 4", "client error not counted"])
async def test_the_first_outcomes_read_as_their_share(
    make_core: CoreFactory, results: tuple[Outcome, ...], rate: float
) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}", circuit="{failures: 100}"))
    assert await outcomes(core, *results) == pytest.approx(rate)


async def test_later_outcomes_weigh_the_latest_most(make_core: CoreFactory) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}", circuit="{failures: 100}"))
    assert await outcomes(core, *(Outcome.SUCCESS,) * 5) == 0.0
    # Past the first five, a failure counts a fifth: a recent figure, not the share since the start (1 of 6).
    assert await outcomes(core, Outcome.SERVER_ERROR) == pytest.approx(0.2)
    assert await outcomes(core, Outcome.SUCCESS) == pytest.approx(0.16)

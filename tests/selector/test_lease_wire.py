"""A lease as it goes on the wire: built from what its account's leases share, with its own id, expiry and probe flag,
and never with a credential the account no longer has."""

from __future__ import annotations

import base64
import random

from plugins.round_robin import RoundRobin
from poolgate.config import parse_config
from selector_service.api.mapping import lease_message
from selector_service.domain.leases import Grant, LeaseIds, LeaseTable
from selector_service.domain.pool import Pool

CONFIG = """
pools:
  p:
    base_url: https://api.example.test/v1
    headers: {openai-beta: assistants=v2}
    accounts:
      - {name: one, key: sk-test-one-00000001}
      - {name: two, key: sk-test-two-00000002}
"""


def pool_and_leases() -> tuple[Pool, LeaseTable]:
    config = parse_config(CONFIG).pools["p"]
    return Pool("p", config, RoundRobin(random.Random(1))), LeaseTable()


def test_each_lease_has_its_own_id_expiry_and_probe_flag_on_its_accounts_fields() -> None:
    pool, table = pool_and_leases()
    one, two = pool.accounts["p/one"], pool.accounts["p/two"]
    first = lease_message(Grant(table.open(one, "m", 100.0, 30.0, probe_id=0), pool))
    second = lease_message(Grant(table.open(one, "m", 200.5, 30.0, probe_id=7), pool))
    other = lease_message(Grant(table.open(two, "m", 300.0, 30.0, probe_id=0), pool))
    assert first.lease_id != second.lease_id
    assert (first.expires_at.seconds, first.expires_at.nanos) == (130, 0)
    assert (second.expires_at.seconds, second.expires_at.nanos) == (230, 500_000_000)
    assert (first.probe, second.probe) == (False, True)
    assert [(m.account_name, m.credential.value) for m in (first, second, other)] == [
        ("one", "Bearer sk-test-one-00000001"), ("one", "Bearer sk-test-one-00000001"),
        ("two", "Bearer sk-test-two-00000002")]
    assert [(h.name, h.value) for h in first.extra_headers] == [("openai-beta", "assistants=v2")]
    assert first.base_url == "https://api.example.test/v1" and first.pool == "p"


def test_a_renewed_credential_is_in_the_next_lease() -> None:
    pool, table = pool_and_leases()
    one = pool.accounts["p/one"]
    before = lease_message(Grant(table.open(one, "m", 100.0, 30.0, probe_id=0), pool))
    one.auth.renew("sk-test-renewed-0000009", 0.0, 101.0)
    after = lease_message(Grant(table.open(one, "m", 102.0, 30.0, probe_id=0), pool))
    assert before.credential.value == "Bearer sk-test-one-00000001"
    assert after.credential.value == "Bearer sk-test-renewed-0000009"


def test_lease_ids_are_distinct_url_safe_and_sixteen_random_bytes() -> None:
    ids = LeaseIds()
    drawn = [ids.next() for _ in range(3 * LeaseIds.BATCH + 5)]  # across several draws from the random source
    assert len(set(drawn)) == len(drawn)
    for lease_id in drawn:
        assert len(base64.urlsafe_b64decode(lease_id + "==")) == 16
        assert set(lease_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

"""The onboarding kinds through the streaming path, on moto in two regions: CloudTrail-shaped
events (sandbox.emulation.controlplane) -> persist (the kind's lookup in the source) -> state
table -> replicator -> destination registry. Created, changed, deleted; out of order,
duplicated and late; ARNs as the destination's copy names them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from pipeline.model import EntityKind
from pipeline.state import Outcome
from sandbox.inprocess import DST, TABLE
from tests.pipeline.test_security_streaming import T0, Harness

ROLE = "arn:aws:iam::123456789012:role/device-credentials"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"


@pytest.fixture
def h(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    with mock_aws():
        yield Harness()


def alias(h: Harness, name: str = "fleet") -> dict[str, object] | None:
    response = h.destination.list_role_aliases()
    if name not in response["roleAliases"]:
        return None
    described = h.destination.describe_role_alias(roleAlias=name)["roleAliasDescription"]
    return {"role": described["roleArn"], "seconds": described["credentialDurationSeconds"]}


def test_a_role_alias_is_created_changed_and_deleted_in_the_destination(h: Harness) -> None:
    create = {"roleAlias": "fleet", "roleArn": ROLE, "credentialDurationSeconds": 900}
    h.call("CreateRoleAlias", create, at=T0)
    assert [r and r.outcome for r in h.flush()] == [Outcome.APPLIED]
    assert alias(h) == {"role": ROLE, "seconds": 900}

    h.call("UpdateRoleAlias", {"roleAlias": "fleet", "credentialDurationSeconds": 7200}, at=T0 + 1)
    h.call("UpdateRoleAlias", {"roleAlias": "fleet", "roleArn": OTHER_ROLE}, at=T0 + 2)
    h.flush()
    assert alias(h) == {"role": OTHER_ROLE, "seconds": 7200}

    h.call("DeleteRoleAlias", {"roleAlias": "fleet"}, at=T0 + 3)
    h.flush()
    assert alias(h) is None
    item = h.table.get(EntityKind.ROLE_ALIAS, "fleet")
    assert item is not None and item.deleted


def test_out_of_order_and_duplicated_calls_end_in_the_sources_state(h: Harness) -> None:
    h.call("CreateRoleAlias", {"roleAlias": "fleet", "roleArn": ROLE}, at=T0)
    h.call("UpdateRoleAlias", {"roleAlias": "fleet", "credentialDurationSeconds": 1800}, at=T0 + 1)
    create, update = h.events
    # WHEN CloudTrail delivers the update first, then the create, then the update again
    h.events[:] = [update, create, update]
    results = h.flush()
    # THEN the update (read in the source: the whole alias) wins; the rest is stale or a duplicate
    outcomes = [r.outcome if r else None for r in results]
    assert outcomes[0] is Outcome.APPLIED and Outcome.APPLIED not in outcomes[1:], outcomes
    assert alias(h) == {"role": ROLE, "seconds": 1800}


def test_a_late_create_never_resurrects_a_deleted_alias(h: Harness) -> None:
    h.call("CreateRoleAlias", {"roleAlias": "fleet", "roleArn": ROLE}, at=T0)
    h.call("DeleteRoleAlias", {"roleAlias": "fleet"}, at=T0 + 1)
    create, delete = h.events
    h.events[:] = [delete, create]
    results = h.flush()
    # THEN the late create writes nothing: the alias is gone in the source (its lookup finds
    # nothing), and the table keeps the tombstone
    assert [r and r.outcome for r in results] == [Outcome.APPLIED, Outcome.SKIPPED]
    assert alias(h) is None
    item = h.table.get(EntityKind.ROLE_ALIAS, "fleet")
    assert item is not None and item.deleted
    # AND a create delivered before its delete, after the alias is gone, writes nothing either
    h.call("CreateRoleAlias", {"roleAlias": "brief", "roleArn": ROLE}, at=T0 + 2)
    h.call("DeleteRoleAlias", {"roleAlias": "brief"}, at=T0 + 3)
    del h.events[1]
    assert [r and r.outcome for r in h.flush()] == [Outcome.SKIPPED]
    assert h.table.get(EntityKind.ROLE_ALIAS, "brief") is None


def test_the_role_is_named_in_the_destination_account(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        # GIVEN a replicator whose destination account differs from the source's
        h = Harness(policy_account_map={"123456789012": "210987654321"})
        h.call("CreateRoleAlias", {"roleAlias": "fleet", "roleArn": ROLE}, at=T0)
        h.flush()
        # THEN the copy names the role of the destination account; the table keeps the source's
        assert alias(h) == {
            "role": "arn:aws:iam::210987654321:role/device-credentials",
            "seconds": 3600,
        }
        item = h.table.get(EntityKind.ROLE_ALIAS, "fleet")
        assert item is not None and item.state["role_arn"] == ROLE

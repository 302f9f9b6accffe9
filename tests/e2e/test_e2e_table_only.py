"""Rows of the state table for entities in neither registry, on the sandbox (issue 22, item 1).

A group deleted in the source, with a membership row left live in the table as a table written
before persist followed AWS's cascade holds it (``Kind.cascades``): neither registry has the
membership, so the registries' own diff is clean, yet the table would replay it. The three-way
audit names it ``table_only``, ``reconcile --apply`` tombstones it through the persist pipeline,
and the next audits (three-way and table-vs-destination) are clean.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.model import EntityKind, Item
from pipeline.statetable import StateTable
from pipeline.tableitems import item_to_record, to_dynamodb
from reconcile.cli import main
from reconcile.context import Factory
from sandbox.stack import Sandbox
from tests.e2e.conftest import DESTINATION, SOURCE

REGIONS = ["--source-region", SOURCE, "--target-region", DESTINATION]


def _cli(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    factory = Factory(client=sandbox.client, show_progress=False)
    result = CliRunner().invoke(main, list(args), obj=factory)
    return result.exit_code, result.stdout


def _leave_a_membership_of_a_deleted_group(sandbox: Sandbox) -> None:
    src = sandbox.iot(SOURCE)
    src.create_thing(thingName="t")
    src.create_thing_group(thingGroupName="kept")
    src.create_thing_group(thingGroupName="gone")
    for group in ("kept", "gone"):
        src.add_thing_to_thing_group(thingName="t", thingGroupName=group)
    sandbox.drain(timeout=120)
    src.delete_thing_group(thingGroupName="gone")
    sandbox.drain(timeout=120)
    # The row a table kept from before the cascade: live, stamped before the group's delete.
    table = StateTable(sandbox.client("dynamodb", SOURCE), sandbox.table_name)
    tombstone = table.get(EntityKind.MEMBERSHIP, "t#gone")
    assert tombstone is not None and tombstone.deleted  # persist follows the cascade today
    kept = Item(EntityKind.MEMBERSHIP, "t#gone", {}, False, SOURCE, tombstone.event_ts - 1, "old")
    sandbox.client("dynamodb", SOURCE).put_item(
        TableName=sandbox.table_name, Item=to_dynamodb(item_to_record(kept))
    )
    sandbox.drain(timeout=60)


def test_a_row_in_neither_registry_is_named_table_only_and_reconcile_clears_it(
    sandbox: Sandbox,
) -> None:
    # GIVEN a membership row of a group deleted in both registries
    _leave_a_membership_of_a_deleted_group(sandbox)
    table = ["--state-table", sandbox.table_name]
    assert _cli(sandbox, "audit", *REGIONS)[0] == 0  # the registries agree

    # WHEN the three-way audit runs
    code, out = _cli(sandbox, "audit", *REGIONS, *table, "--explain", "--format", "json")

    # THEN it names the row table_only (it was hidden: table_only 0, exit 0)
    assert code == 1, out
    document = json.loads(out)
    assert [(d["entity"], d["name"], d["where"]) for d in document["drifts"]] == [
        ("membership", "t#gone", "table_only")
    ]
    assert document["where_summary"]["table_only"] == 1
    # AND the table-vs-destination audit does not blame the replicator for it
    code, out = _cli(sandbox, "audit", *REGIONS, *table, "--table-vs-target", "--format", "json")
    assert [(d["name"], d["where"]) for d in json.loads(out)["drifts"]] == [
        ("t#gone", "table_only")
    ]

    # WHEN reconciling with --apply (no --allow-deletes: it deletes nothing a registry holds)
    apply = ["--apply", "--state-machine-arn", sandbox.state_machine_arn]
    code, _ = _cli(sandbox, "reconcile", *REGIONS, *table, *apply)
    assert code == 0, sandbox.failure_reasons()
    sandbox.drain(timeout=120)

    # THEN the table holds the row's tombstone and both audits are clean
    row = StateTable(sandbox.client("dynamodb", SOURCE), sandbox.table_name).get(
        EntityKind.MEMBERSHIP, "t#gone"
    )
    assert row is not None and row.deleted, sandbox.failure_reasons()
    assert _cli(sandbox, "audit", *REGIONS, *table, "--explain")[0] == 0
    assert _cli(sandbox, "audit", *REGIONS, *table, "--table-vs-target")[0] == 0
    # AND the registries were left alone
    for region in (SOURCE, DESTINATION):
        groups = sandbox.iot(region).list_thing_groups()["thingGroups"]
        assert [group["groupName"] for group in groups] == ["kept"], region

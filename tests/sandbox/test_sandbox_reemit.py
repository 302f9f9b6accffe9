"""Re-emitting corrective events through the persist state machine, with AWS's guarantee.

The persist state machine is an asynchronous Express workflow: Step Functions does not
deduplicate its executions by name, so emitting the same plan twice starts every execution again
("Execution guarantees", https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
What makes the replay harmless is the state table's write policy: the same event id and sync
token is a duplicate, and nothing changes.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.model import Change, EntityKind, Origin
from pipeline.statetable import StateTable
from reconcile.emit import emit_via_stepfunctions, execution_name
from sandbox.emulation import wait_for_executions
from sandbox.stack import Sandbox

SOURCE = "us-east-1"


def corrective(name: str, kind: EntityKind, fields: dict[str, Any], index: int) -> Change:
    taken = time.time_ns() // 1_000_000 - 60_000
    return Change(
        kind,
        name,
        Origin(SOURCE, taken, f"crr-plan1-{index}"),
        fields=fields,
        corrective=True,
        sync="plan1",
    )


def run_to_completion(box: Sandbox, changes: list[Change], seen: set[str]) -> dict[str, Any]:
    """Emit ``changes``, wait for the executions not in ``seen``; their outputs by ARN."""
    sfn = box.client("stepfunctions", SOURCE)
    result = emit_via_stepfunctions(changes, sfn, box.state_machine_arn)
    assert result.ok and result.counts == {"started": len(changes)}
    listed = sfn.list_executions(stateMachineArn=box.state_machine_arn)["executions"]
    new = [e for e in listed if e["executionArn"] not in seen]
    outputs: dict[str, Any] = {}
    statuses = wait_for_executions(sfn, [e["executionArn"] for e in new], outputs=outputs)
    assert set(statuses.values()) == {"SUCCEEDED"}
    assert sorted(e["name"] for e in new) == sorted(
        execution_name(c.origin.event_id) for c in changes
    )
    seen.update(statuses)
    return outputs


def test_re_emitting_starts_new_executions_that_persist_counts_as_duplicates(
    box: Sandbox,
) -> None:
    changes = [
        corrective("g1", EntityKind.THING_GROUP, {"parent": None, "attributes": {}}, 0),
        corrective(
            "t1",
            EntityKind.THING,
            {"thing_type": None, "attributes": {"a": "1"}, "billing_group": None},
            1,
        ),
    ]
    table = StateTable(box.client("dynamodb", SOURCE), box.resources.table_name)
    seen: set[str] = set()
    # GIVEN the plan emitted once and persisted
    first = run_to_completion(box, changes, seen)
    assert sorted(o["outcome"] for o in first.values()) == ["applied", "applied"]
    stored = {c.key: table.get(c.kind, c.name) for c in changes}
    assert all(item is not None for item in stored.values())
    # WHEN it is emitted again (same event ids, so the same execution names)
    again = run_to_completion(box, changes, seen)
    # THEN each start is a new execution (Express), and persist counts every one a duplicate
    assert len(seen) == 2 * len(changes)
    assert sorted(o["outcome"] for o in again.values()) == ["duplicate", "duplicate"]
    # AND the state table is unchanged, so the destination has nothing new to converge
    assert {c.key: table.get(c.kind, c.name) for c in changes} == stored


def test_a_pump_round_counts_the_executions_apply_started_even_finished_ones(
    box: Sandbox,
) -> None:
    # issue 22 item 15: the pump counted only executions it found RUNNING, so those `apply`
    # started that finished before the round looked were never counted
    changes = [
        corrective(f"g{i}", EntityKind.THING_GROUP, {"parent": None, "attributes": {}}, i)
        for i in range(3)
    ]
    run_to_completion(box, changes, set())  # started and finished before the round

    report = box.pump_round()

    assert report.executions == {"SUCCEEDED": 3}
    assert report.persisted == {"applied": 3}
    # counted once: the next round has nothing new
    assert sum(box.pump_round().executions.values()) == 0

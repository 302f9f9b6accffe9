"""The three-way audit on the sandbox: one drift of each class, each named by the hop that lost it.

Injected through the real pipeline: an event dropped before it was persisted (the IoT rule's
delivery loses it), a replicator failure (the destination refuses the replicator's UpdateThing
with AccessDeniedException, as AWS does when the replicator's role lacks the permission: the
record goes to the failure queue), and a hand edit in the destination. The audit reads both
registries and the state table and must name each: lost_before_table, lost_after_table,
lost_after_table; a dropped event plus a hand edit of the same thing leaves the table agreeing
with neither: table_only. ``--table-vs-target`` sees only what differs after the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline import aws
from reconcile.cli import main
from reconcile.context import Factory
from sandbox.emulation import Delivery
from sandbox.stack import Sandbox
from tests.conftest import aws_error_response
from tests.e2e.conftest import DESTINATION, SOURCE

REGIONS = ["--source-region", SOURCE, "--target-region", DESTINATION]


class DenyUpdateThing:
    """A ``before-send`` hook: the destination refuses UpdateThing for one thing (as IAM would)."""

    def __init__(self, thing: str) -> None:
        self.path = f"/things/{thing}"
        self.denied = 0
        self.clients: list[Any] = []

    def __call__(self, request: Any, **_: Any) -> Any:
        if request.method == "PATCH" and request.url.split("?")[0].endswith(self.path):
            self.denied += 1
            return aws_error_response(request.url, 403, "AccessDeniedException", "denied")
        return None

    def attach(self, client: Any) -> Any:
        if client not in self.clients:
            client.meta.events.register_first("before-send.iot.UpdateThing", self)
            self.clients.append(client)
        return client


@pytest.fixture
def deny_update(monkeypatch: pytest.MonkeyPatch) -> Iterator[DenyUpdateThing]:
    """The replicator's destination IoT client (``pipeline.aws.client``) refuses one update."""
    hook = DenyUpdateThing("unapplied")
    real = aws.client

    def client(service: str, region: str, **config: Any) -> Any:
        made = real(service, region, **config)
        return hook.attach(made) if (service, region) == ("iot", DESTINATION) else made

    monkeypatch.setattr(aws, "client", client)
    yield hook
    for made in hook.clients:  # clients of one service share handlers: never leave it behind
        made.meta.events.unregister("before-send.iot.UpdateThing", hook)


def _cli(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    factory = Factory(client=sandbox.client, show_progress=False)
    result = CliRunner().invoke(main, list(args), obj=factory)
    return result.exit_code, result.stdout


def _inject_one_drift_of_each_class(sandbox: Sandbox, deny: DenyUpdateThing) -> None:
    src, dst = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    for name in ("dropped", "unapplied", "edited", "both", "fine"):
        src.create_thing(thingName=name, attributePayload={"attributes": {"v": "1"}})
    report = sandbox.drain(timeout=120)
    assert report.batch_item_failures == 0
    # 1. an event dropped before persist (a failed rule action)
    sandbox.set_delivery(Delivery(drop_probability=1.0))
    src.update_thing(thingName="dropped", attributePayload={"attributes": {"v": "2"}})
    src.update_thing(thingName="both", attributePayload={"attributes": {"v": "2"}})
    sandbox.drain(timeout=60)
    sandbox.set_delivery(Delivery())
    # 2. a replicator failure: the destination refuses the replicator's update
    src.update_thing(thingName="unapplied", attributePayload={"attributes": {"v": "2"}})
    sandbox.drain(timeout=60)
    assert deny.denied >= 1
    # 3. a hand edit in the destination
    dst.update_thing(thingName="edited", attributePayload={"attributes": {"v": "hand"}})
    # 1 and 3 at once: the table holds neither registry's state
    dst.update_thing(thingName="both", attributePayload={"attributes": {"v": "hand"}})
    sandbox.outbox(DESTINATION).take()


def test_three_way_audit_names_where_each_drift_was_lost(
    sandbox: Sandbox, deny_update: DenyUpdateThing
) -> None:
    _inject_one_drift_of_each_class(sandbox, deny_update)
    table = ["--state-table", sandbox.table_name]

    code, out = _cli(sandbox, "audit", *REGIONS, *table, "--explain", "--format", "json")

    assert code == 1, out
    document = json.loads(out)
    assert document["schema_version"] == "2" and document["explained"] is True
    where = {d["name"]: d["where"] for d in document["drifts"]}
    assert where == {
        "dropped": "lost_before_table",
        "unapplied": "lost_after_table",
        "edited": "lost_after_table",
        "both": "table_only",
    }
    assert document["where_summary"] == {
        "lost_before_table": 1,
        "lost_after_table": 2,
        "table_only": 1,
        "type_deletion_pending": 0,
        "not_registrable": 0,
    }

    # The cheap check: the table against the destination only (no source listing)
    code, out = _cli(sandbox, "audit", *REGIONS, *table, "--table-vs-target", "--format", "json")
    assert code == 1, out
    document = json.loads(out)
    assert {d["name"]: d["where"] for d in document["drifts"]} == {
        "unapplied": "lost_after_table",
        "edited": "lost_after_table",
        "both": "lost_after_table",
    }


def test_a_pending_type_deletion_is_named_with_when_it_finishes(sandbox: Sandbox) -> None:
    # GIVEN a type deleted in the source, deprecated in the destination by the replicator, its
    # deletion pending there (AWS deletes a type 5 minutes after its deprecation)
    src = sandbox.iot(SOURCE)
    src.create_thing_type(thingTypeName="retired")
    sandbox.drain(timeout=120)
    src.deprecate_thing_type(thingTypeName="retired")
    sandbox.skip(301)
    src.delete_thing_type(thingTypeName="retired")
    sandbox.drain(timeout=120)
    (pending,) = sandbox.pending_deletions()
    table = ["--state-table", sandbox.table_name]

    # WHEN the three-way audit and the table-vs-target audit run
    code, out = _cli(sandbox, "audit", *REGIONS, *table, "--explain", "--format", "json")
    _, cheap = _cli(sandbox, "audit", *REGIONS, *table, "--table-vs-target", "--format", "json")

    # THEN both name the pending deletion and when it may finish, not the replicator's hop
    assert code == 1, out
    for document in (json.loads(out), json.loads(cheap)):
        assert [(d["name"], d["where"], d.get("finishes_at")) for d in document["drifts"]] == [
            ("retired", "type_deletion_pending", pending.delete_after)
        ]

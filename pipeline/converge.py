"""Converge one destination-registry entity to its desired state (docs/design.md, replicator).

Level-triggered, like a Kubernetes controller: for an item of the state table we describe the
entity in the destination, compare, and make the fewest calls that close the gap. Applying the
same item twice, or an older item after a newer one, leaves the destination correct, because
we always converge to the *current* item, whatever the record that woke us.

This module is the executor; what to read and which calls to make is each kind's
(``pipeline.kinds``): ``read`` describes the entity, the pure ``calls`` decides, and a kind
whose convergence needs reads between calls (a thing type's deletion lifecycle, a group's
parent chain, a membership's sibling groups, the links' ends) has its own ``converge`` hook
built on the executor's steps below.

- Before touching an entity, the executor appends what it is about to make it look like to the
  entity's echo ledger (``pipeline.echo``), so that this region's persist step recognises the
  registry events of our own writes (two-way replication) however late they arrive.
- Dependencies come from the local table replica and are created lazily, when a call fails
  for want of them (``Kind.depends_on``), so a plain update costs two calls.
- Errors keep their class: a refusal that means "wait" is retryable (``pipeline.aws``), a
  dependency not replicated yet too; bad data and refusals are permanent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from pipeline import aws
from pipeline.aws import ClientFactory
from pipeline.echo import Expectation
from pipeline.errors import NotFoundError
from pipeline.iot import Iot
from pipeline.kinds import KINDS
from pipeline.kinds.base import (
    ConvergeError,
    DependencyNotReadyError,
    Kind,
    Result,
)
from pipeline.model import EntityKind, Item, entity_key
from pipeline.policyrewrite import ArnMapping
from pipeline.statetable import StateTable

__all__ = ["ConvergeError", "Converger", "DependencyNotReadyError", "Result", "build_converger"]


class Converger:
    """Makes the destination registry match items of the (local replica of the) state table."""

    def __init__(
        self,
        iot: Iot,
        table: StateTable,
        *,
        region: str,
        clock: Callable[[], float],
        type_delete_delay_seconds: int = 300,
        wall_clock: Callable[[], float] = time.time,
        policy_account_map: Mapping[str, str] | None = None,
        functions: Any = None,
    ) -> None:
        self.iot = iot
        # The region's Lambda client (boto3), to look up functions a kind names (a
        # provisioning template's hook); none: not looked up.
        self.functions = functions
        self.table = table
        self.region = region
        self.clock = clock
        self.type_delete_delay_seconds = type_delete_delay_seconds
        self.policy_account_map: Mapping[str, str] = dict(policy_account_map or {})
        # Echo expectations are compared with the registry's event timestamps: real time, even
        # where ``clock`` is a test's fake one.
        self.wall_clock = wall_clock
        self._counts: Counter[str] = Counter()

    # --- the executor ----------------------------------------------------------------------

    def converge(self, item: Item) -> Result:
        kind = KINDS[item.kind]
        kind.check_stored(item.state)
        desired = None if item.deleted else kind.as_written(item.state, self.arn_mapping(item))
        self.expect(item.kind, item.name, desired)
        return kind.converge(self, item)

    def run(self, kind: Kind, item: Item) -> Result:
        """The common path: read, decide, apply (dependencies created on demand); the desired
        state is the item's as written in this region (``Kind.as_written``)."""
        actual = kind.read(self.iot, item.name, deleting=item.deleted)
        desired = None if item.deleted else kind.as_written(item.state, self.arn_mapping(item))
        calls = kind.calls(item.name, desired, actual)
        if not calls:
            return Result("noop", "already as desired")
        self.with_dependencies(kind, item, lambda: self.iot.apply(calls))
        verb = "deleted" if item.deleted else "created" if actual is None else "updated"
        return Result(verb, ", ".join(call.op for call in calls))

    def with_dependencies(self, kind: Kind, item: Item, action: Callable[[], None]) -> None:
        """Run ``action``; if AWS says a resource is missing, create the item's dependencies
        from the table and run it once more (a kind without dependencies: the error stands)."""
        try:
            action()
            return
        except NotFoundError:
            needs = kind.depends_on(item.name, item.state)
            if not needs:
                raise
        for needed_kind, name in needs:
            self.ensure(needed_kind, name)
        try:
            action()
        except NotFoundError as error:
            raise DependencyNotReadyError(
                f"{item.key}: still missing a dependency: {error}"
            ) from error

    def ensure(self, kind: EntityKind, name: str) -> None:
        if KINDS[kind].read(self.iot, name) is None:
            self.converge_key(kind, name)

    def converge_key(self, kind: EntityKind, name: str) -> Result:
        """Converge a dependency from the local table; it must be there and live."""
        item = self.table.get(kind, name)
        if item is None:
            raise DependencyNotReadyError(
                f"{kind.value} {name!r} is not in the local state table yet"
            )
        if item.deleted:
            raise ConvergeError(f"{kind.value} {name!r} is needed but deleted in the source")
        return self.converge(item)

    def expect(self, kind: EntityKind, name: str, *states: dict[str, Any] | None) -> None:
        """Record, before the registry calls, what they will make the entity look like
        (``None``: deleted); several states when the calls pass through intermediate ones."""
        now_ms = int(self.wall_clock() * 1000)
        self.table.ledger.record(
            self.region,
            entity_key(kind, name),
            [Expectation.of(now_ms, state, deleted=state is None) for state in states],
            now_ms,
        )

    def kind(self, kind: EntityKind) -> Kind:
        return KINDS[kind]

    def arn_mapping(self, item: Item) -> ArnMapping:
        return ArnMapping(
            regions={item.origin_region: self.region}, accounts=dict(self.policy_account_map)
        )

    def count(self, metric: str, value: int) -> None:
        self._counts[metric] += value

    def function_exists(self, arn: str) -> bool | None:
        if self.functions is None:
            return None
        found = aws.AwsCalls().maybe("GetFunction", self.functions.get_function, FunctionName=arn)
        return found is not None

    def take_counts(self) -> dict[str, int]:
        """The counts kinds reported since the last call, each metric a kind emits every
        invocation included (``Kind.baseline_metrics``, 0 if nothing was reported)."""
        counts = {metric: 0 for kind in KINDS.values() for metric in kind.baseline_metrics}
        counts.update({metric: value for metric, value in self._counts.items() if value})
        self._counts.clear()
        return counts


def build_converger(
    region: str,
    table_name: str,
    *,
    clock: Callable[[], float],
    type_delete_delay_seconds: int,
    wall_clock: Callable[[], float] = time.time,
    client: ClientFactory | None = None,
    policy_account_map: Mapping[str, str] | None = None,
) -> Converger:
    """The converger of ``region``'s registry to ``table_name`` (that region's replica), its
    clients made by ``client`` (``pipeline.aws.client``, looked up at call time, by default):
    the one place the replicator, the pending-deletion task and the in-process sandbox
    assemble one."""
    injected = client  # its iot-data client too (``pipeline.aws.data_client``)
    client = client or aws.client
    return Converger(
        Iot(client("iot", region), factory=injected),
        StateTable(client("dynamodb", region), table_name),
        region=region,
        clock=clock,
        type_delete_delay_seconds=type_delete_delay_seconds,
        wall_clock=wall_clock,
        policy_account_map=policy_account_map,
        functions=client("lambda", region),
    )

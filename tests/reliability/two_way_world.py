"""The two-way world of the reliability tests: a ``TwoWayPipeline``, the registry events each
region published and not yet delivered, and what the tests check against."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import strategies as st

from pipeline.echo import LEDGER_PREFIX
from sandbox import emulation
from sandbox.inprocess import DST, SRC, TwoWayPipeline

REGIONS = (SRC, DST)
ENTITY_PREFIXES = ("THING", "TYPE", "GROUP", "BILLING", "MEMBER", "SHADOW")
MAX_SETTLE_ROUNDS = 12


def apply_change(iot: Any, op: tuple[Any, ...]) -> bool:
    """One registry call; False when the registry refuses it (nothing changed)."""
    name, thing, *rest = op
    try:
        if name == "create":
            iot.create_thing(thingName=thing, attributePayload={"attributes": rest[0]})
        elif name == "update":
            iot.update_thing(
                thingName=thing, attributePayload={"attributes": rest[0], "merge": False}
            )
        else:
            iot.delete_thing(thingName=thing)
    except ClientError:
        return False
    return True


def registry_state(iot: Any, thing: str) -> dict[str, str] | None:
    with contextlib.suppress(ClientError):
        return dict(iot.describe_thing(thingName=thing).get("attributes") or {})
    return None


def fleet(iot: Any) -> dict[str, dict[str, str]]:
    """Every thing in a registry with its attributes."""
    return {t["thingName"]: dict(t.get("attributes") or {}) for t in iot.list_things()["things"]}


@dataclass
class World:
    """The pipeline, the events published but not yet delivered, and what the test tracks."""

    pipeline: TwoWayPipeline
    events: emulation.RegistryEmulation
    inbox: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {r: [] for r in REGIONS})
    user_events: int = 0
    # thing -> [(region, state after the change)] since the last settle
    recent: dict[str, list[tuple[str, dict[str, str] | None]]] = field(default_factory=dict)

    def collect(self, *, user: bool) -> None:
        for name in REGIONS:
            published = self.events.outbox(name).take()
            self.inbox[name] += published
            if user:
                self.user_events += len(published)

    def change(self, name: str, op: tuple[Any, ...]) -> None:
        iot = self.pipeline[name].iot
        if apply_change(iot, op):
            self.recent.setdefault(op[1], []).append((name, registry_state(iot, op[1])))
        self.collect(user=True)

    def deliver(self, name: str, data: st.DataObject | None = None) -> None:
        """Persist the region's pending events: with ``data``, some twice and in any order."""
        events, self.inbox[name] = self.inbox[name], []
        delivered = []
        for event in events:
            delivered.append(event)
            if data is not None and data.draw(st.booleans(), label="duplicate"):
                delivered.append(dict(event))
        if data is not None:
            delivered = data.draw(st.permutations(delivered), label="order")
        for event in delivered:
            self.pipeline[name].persist_event(event)

    def drain(self, name: str) -> int:
        invocations = self.pipeline[name].drain().replicator_invocations
        self.collect(user=False)
        return invocations

    def settle(self) -> None:
        """Deliver, replicate and drain until nothing moves; a loop never settles."""
        for _ in range(MAX_SETTLE_ROUNDS):
            moved = sum(len(events) for events in self.inbox.values())
            for name in REGIONS:
                self.deliver(name)
            moved += self.pipeline.replicate()
            moved += sum(self.drain(name) for name in REGIONS)
            if not moved:
                self.recent.clear()
                return
        raise AssertionError(f"still replicating after {MAX_SETTLE_ROUNDS} rounds (a loop)")

    def entity_writes(self) -> int:
        copied = self.pipeline.replication.copied
        return self.pipeline.persist_entity_writes() + sum(copied[p] for p in ENTITY_PREFIXES)

    def table_writes(self) -> int:
        """Every state-table write in both replicas: the entity writes and the echo ledger's
        (each written in one region only, the replicator's expectations and persist's echo
        marks, and copied once to the other)."""
        return self.entity_writes() + 2 * self.pipeline.replication.copied[LEDGER_PREFIX]

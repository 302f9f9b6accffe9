"""A run on a real account: guard, record, clean up, count.

``AccountRun.start`` refuses regions holding registry entries no conformance run made (unless
the operator says the account is shared) and opens the event tap; ``finish`` collects the events,
writes the recorded answers, compares them with the committed ones and removes everything the run
made, in both regions (the destination's copies too) and in the state table. ``cleanup_only``
does the removal for an interrupted run, by its id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from conformance import answers, device_state
from conformance.authorization import AuthAnswer
from conformance.onboarding_refusals import named_leftovers, remove_leftovers
from conformance.refusals import Answer
from conformance.registry import (
    TYPE_DEPRECATION_SECONDS,
    cleanup_region,
    delete_types,
    foreign_names,
    gone,
    group_names,
    thing_names,
    type_names,
)
from conformance.run import Run, RunError
from conformance.tap import EventTap, remove_tap
from conformance.target import Target
from pipeline.model import EntityKind
from pipeline.statetable import StateTable

Log = Callable[[str], None]


@dataclass
class AccountRun:
    target: Target
    run: Run
    shared: bool = False
    log: Log = print
    tap: EventTap | None = None
    refusals: dict[str, tuple[str, Answer]] = field(default_factory=dict)
    authorizations: dict[str, AuthAnswer] = field(default_factory=dict)
    registrations: dict[str, Answer] = field(default_factory=dict)
    contradictions: list[answers.Contradiction] = field(default_factory=list)

    def start(self) -> AccountRun:
        self.guard()
        self.log(f"conformance run {self.run.run_id}: every name starts with {self.run.prefix}")
        self.tap = EventTap(self.target.client, self.target.source_region, self.run).open(
            self.target.wait_until
        )
        return self

    def guard(self) -> None:
        """Refuse regions whose registry holds anything a conformance run did not make."""
        if self.shared:
            return
        for region in (self.target.source_region, self.target.destination_region):
            foreign = foreign_names(self.target.iot(region))
            if foreign:
                raise RunError(
                    f"{region} holds registry entries no conformance run made "
                    f"({', '.join(foreign)}, ...): run on a dedicated account, or pass "
                    "--i-know-this-account-is-shared to run beside them (the audits and repairs "
                    f"are limited to names starting with {self.run.prefix})"
                )

    def record_refusal(self, probe: str, operation: str, answer: Answer) -> None:
        self.refusals[probe] = (operation, answer)

    def record_authorization(self, question: str, answer: AuthAnswer) -> None:
        self.authorizations[question] = answer

    def record_registration(self, question: str, answer: Answer) -> None:
        """The answer to a question of ``conformance.registration``."""
        self.registrations[question] = answer

    def finish(self, record_path: Path, committed: Path | None = answers.COMMITTED) -> Path:
        """Collect, write and compare the answers, then clean up (always, even if writing fails)."""
        try:
            events = self.tap.collect() if self.tap else []
            account = self.target.client("sts", self.target.source_region).get_caller_identity()[
                "Account"
            ]
            document = answers.observed(
                events,
                self.refusals,
                authorizations=self.authorizations,
                registrations=self.registrations,
                source=(
                    f"recorded by conformance run {self.run.run_id} on "
                    f"{datetime.now(UTC):%Y-%m-%d} in {self.target.source_region}"
                ),
                verified_on_account=self.target.kind == "aws",
                account_id=account,
                prefix=self.run.prefix,
            )
            answers.write(document, record_path)
            self.log(
                f"recorded {len(document['events'])} event shapes, "
                f"{len(document['refusals'])} refusals, "
                f"{len(document['authorizations'])} authorizations and "
                f"{len(document['registrations'])} registrations in {record_path}"
            )
            if committed is not None and committed.exists():
                known = answers.load(committed)
                self.contradictions = (
                    answers.compare_events(known["events"], events, require_all=False)
                    + answers.compare_refusals(
                        known["refusals"],
                        {p: a for p, (_, a) in self.refusals.items()},
                        require_all=False,
                    )
                    + answers.compare_authorizations(
                        known.get("authorizations", []), self.authorizations, require_all=False
                    )
                    + answers.compare_registrations(
                        known.get("registrations", []), self.registrations, require_all=False
                    )
                )
        finally:
            cleanup(self.target, self.run, self.log)
        for call in self.target.calls.untagged:
            self.log(f"warning: a {call} call carried no {self.run.tags[0]['Key']} tag")
        return record_path


def cleanup(target: Target, run: Run, log: Log = print) -> None:
    """Remove every resource of ``run``: the event tap, the source registry (the pipeline carries
    the deletions over), then what is left in the destination, the state items."""
    source, destination = target.source, target.destination
    iam = target.client("iam", target.source_region)
    sqs = target.client("sqs", target.source_region)
    # The tap first: its events were collected (``AccountRun.finish``), and its role then goes
    # before the leftovers' roles are deleted by their prefix (one with a policy would refuse).
    for removed in remove_tap(source, sqs, iam, run):
        log(f"deleted {removed}")
    # Device state an interrupted shadows or retained scenario left (theirs remove it
    # themselves): the shadows of the run's things, while their names can still be listed.
    for region in (target.source_region, target.destination_region):
        things = thing_names(target.iot(region), run.prefix)
        for removed in device_state.remove(target.client("iot-data", region), things, run.prefix):
            log(f"deleted {removed}")
    cleanup_region(source, run.prefix, target.wait_until, log)
    # What an interrupted refusal probe or onboarding scenario left in the source goes now too,
    # so that the wait below covers the pipeline's work for it: each deletion is persisted as a
    # tombstone and converged by the replicator (its echo-ledger entry), whenever its event
    # arrives: these kinds' come through CloudTrail, whose events reach EventBridge "on a best
    # effort basis", with no delivery time published (Amazon EventBridge, "AWS CloudTrail
    # events", https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html).
    named = named_leftovers(source, run.prefix)
    for removed in remove_leftovers(source, iam, run.prefix):
        log(f"deleted {removed}")
    replica = (
        StateTable(target.client("dynamodb", target.destination_region), target.state_table)
        if target.state_table
        else None
    )
    # Let the pipeline carry the deletions over first, so none of its work arrives after the
    # state items are gone: things and groups deleted, types deprecated (its deferred type
    # deletion then finishes, or cleanup deletes the type itself), the leftovers deleted.
    try:
        target.wait_until(
            "the pipeline carried the run's deletions to the destination",
            lambda: (
                _carried_over(destination, run.prefix)
                and _leftovers_carried(target, replica, named, run.prefix)
            ),
        )
    except AssertionError as error:  # not fatal: cleanup deletes what is left itself
        log(f"{error}; deleting them directly")
    cleanup_region(destination, run.prefix, target.wait_until, log)
    # An interrupted onboarding scenario's copies the pipeline did not delete.
    for removed in remove_leftovers(destination, iam, run.prefix):
        log(f"deleted {removed}")
    # Types: deprecated in both regions by now; one wait of AWS's 5 minutes covers both.
    target.let_time_pass(TYPE_DEPRECATION_SECONDS)
    delete_types(source, run.prefix, target.wait_until, log)
    # The destination's copies only once its replica of the state table holds their
    # tombstones: until then a record still in flight (a batch retried after another record's
    # failure) converges a copy deleted here back to the state it reads there, deprecated.
    if replica is not None:
        names = type_names(destination, run.prefix)
        try:
            target.wait_until(
                "the pipeline carried the run's type deletions to the destination's table",
                lambda: _tombstoned(replica, names),
            )
        except AssertionError as error:  # not fatal: what comes back is deleted below
            log(f"{error}; deleting the types anyway")
    delete_types(destination, run.prefix, target.wait_until, log)
    if target.state_table:
        table = target.state_table

        def none_left() -> bool:
            # The Global Table replicates with a lag, in both directions: an item deleted here
            # can arrive again from the other region's late write (an echo mark, a pending
            # deletion), so delete until one pass over both regions finds nothing.
            found = 0
            for region in (target.source_region, target.destination_region):
                deleted = delete_state_items(target.client("dynamodb", region), table, run)
                if deleted:
                    log(f"deleted {deleted} state items in {region}")
                found += deleted
            return found == 0

        target.wait_until("no state item of the run is left in either region", none_left)


def _leftovers_carried(
    target: Target, replica: StateTable | None, named: list[tuple[EntityKind, str]], prefix: str
) -> bool:
    """Whether the pipeline carried the deletion of each of ``named`` (removed in the source)
    as far as it writes: the destination's replica holds its tombstone (persist wrote it, the
    Global Table copied it), the replicator recorded converging it (its echo-ledger entry,
    written before any call, even when the destination holds nothing), and the destination holds
    no copy (the replicator's delete succeeded: a retry would record it again)."""
    region = target.destination_region
    if replica is not None:
        for kind, name in named:
            item = replica.get(kind, name)
            if item is None or not item.deleted:
                return False
            ledger = replica.ledger.expectations(region, item.key)
            if not any(e.deleted and e.recorded_ms >= item.event_ts for e in ledger):
                return False
    return not set(named) & set(named_leftovers(target.iot(region), prefix))


def _tombstoned(table: StateTable, types: list[str]) -> bool:
    """Whether ``table`` (one region's replica) holds each type deleted, or nothing of it."""
    return all(
        item is None or item.deleted
        for item in (table.get(EntityKind.THING_TYPE, name) for name in types)
    )


def _carried_over(iot: Any, prefix: str) -> bool:
    if thing_names(iot, prefix) or group_names(iot, prefix):
        return False
    return all(
        (gone(partial(iot.describe_thing_type, thingTypeName=name)) or {})
        .get("thingTypeMetadata", {})
        .get("deprecated", True)
        for name in type_names(iot, prefix)
    )


def delete_state_items(dynamodb: Any, table: str, run: Run) -> int:
    """The pipeline's items (desired states, tombstones, pending deletions) naming the run.

    A scan reads the whole table (one read of every item; docs/conformance.md has the cost):
    the keys of entities deleted before an interruption cannot be known otherwise.
    """
    deleted = 0
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        ProjectionExpression="pk",
        FilterExpression="contains(pk, :prefix)",
        ExpressionAttributeValues={":prefix": {"S": run.prefix}},
    ):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"]})
            deleted += 1
    return deleted


def cleanup_only(target: Target, run_id: str, log: Log = print) -> None:
    """``--cleanup-only RUN``: remove the leftovers of an interrupted run."""
    cleanup(target, Run(run_id), log)

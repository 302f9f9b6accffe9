"""Emit: a repair plan turned into corrective events for the persist path.

Reconciliation runs ``snapshot → diff → plan → emit``; this is the last stage. It never writes to
the destination registry: repairs travel exactly the way live changes do, into the state table via
the persist path, and the replicator in the destination converges the registry from there.

- ``corrective_changes`` (pure) makes one ``Change`` per plan action: full desired state,
  ``corrective=True`` and a ``sync`` token, so persist writes it even when the table agrees.
- ``emit_via_stepfunctions`` starts the persist state machine once per change (what the IoT rule
  does for a live event).
- ``emit_via_table`` runs the persist code (``persist_changes``) in-process, for large backfills
  where one execution per entity would be slow and costly.

Callers hold an ``Emitter`` (Step Functions, table, or the dry run that emits nothing), chosen in
one place: ``choose_emitter``; each ``emit`` is given ``now``, the caller's clock bounding event
timestamps. Both real ones validate every change the same way first (``validated``: the corrective
event persist would receive, parsed back as persist parses it, and a timestamp bound), so the table
path writes nothing the state machine path would refuse. Both collect a failure per change that did
not go through and carry on; none is dropped silently. An endpoint that stops answering stops
the emit at once (``EmitStoppedError``: how far it got), as Ctrl-C does (``EmitInterrupted``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeGuard

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from pipeline.aws import AwsCalls
from pipeline.clock import now_ms
from pipeline.errors import AwsError, CrrError, PermanentError, RetryableError
from pipeline.events import corrective_event
from pipeline.ingest import admit, persist_changes
from pipeline.model import Change, Origin
from pipeline.statetable import StateTable

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from reconcile.plan import Plan

EXECUTION_NAME_MAX = 80
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SYNC_PART_MAX = 48

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each change."""


class EmitInterrupted(KeyboardInterrupt):
    """Ctrl-C while emitting: how far it got. Re-running is safe: persist writes a corrective
    event only if it is newer than the stored state, and a replayed event (same event id and
    sync token) is a duplicate to the state table's write policy, so nothing is applied twice."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(done, total)
        self.done = done
        self.total = total

    def __str__(self) -> str:
        return (
            f"{self.done} of {self.total} corrective events emitted; re-run to finish "
            "(safe: an event already emitted is not applied twice)"
        )


class EmitStoppedError(RetryableError):
    """The endpoint stopped answering while emitting (a connection failure, after botocore's own
    retries): the emit stops there instead of trying every remaining event against a dead
    endpoint, and says how far it got. Re-running is safe, as after an interrupt."""

    def __init__(self, operation: str, cause: str, done: int, total: int) -> None:
        super().__init__(
            f"{operation} could not reach the endpoint ({cause}); {done} of {total} corrective "
            "events emitted; re-run to finish (safe: an event already emitted is not applied "
            "twice)"
        )
        self.done = done
        self.total = total


# botocore's errors for a request that got no answer: the network or the endpoint is gone
# (botocore/exceptions.py: EndpointConnectionError, ConnectTimeoutError < ConnectionError;
# ConnectionClosedError, ReadTimeoutError < HTTPClientError).
_NO_ANSWER = (BotoConnectionError, HTTPClientError)


def _unreachable(error: CrrError) -> TypeGuard[AwsError]:
    return isinstance(error, AwsError) and isinstance(error.__cause__, _NO_ANSWER)


@dataclass(frozen=True)
class EmitFailure:
    """One change that was not emitted, with what a caller needs to retry or report it."""

    key: str
    event_id: str
    error: str
    message: str
    retryable: bool


@dataclass(frozen=True)
class EmitResult:
    """Counts by outcome (``started``/``duplicate`` for Step Functions; persist's outcomes
    ``applied``/``stale``/``duplicate``/``unchanged`` for the table) and the failures."""

    counts: dict[str, int] = field(default_factory=dict)
    failures: tuple[EmitFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + len(self.failures)

    def summary(self) -> str:
        parts = [f"{outcome}={n}" for outcome, n in sorted(self.counts.items())]
        parts.append(f"failed={len(self.failures)}")
        return " ".join(parts)


def corrective_changes(plan: Plan, source_region: str, *, sync: str | None = None) -> list[Change]:
    """One corrective ``Change`` per plan action, in plan order (pure).

    ``sync`` defaults to the plan's id, so applying the same plan twice emits the same event ids
    and token, which the state table's write policy counts as duplicates (``pipeline.state``);
    every new plan bumps the token.
    """
    token = sync if sync is not None else plan.plan_id
    return [
        Change(
            kind=action.entity,
            name=action.name,
            origin=Origin(
                region=source_region,
                timestamp_ms=plan.source_taken_at_ms,
                event_id=f"crr-{token}-{i}",
                version=action.version,
            ),
            fields=dict(action.fields),
            deleted=action.op == "delete",
            corrective=True,
            sync=token,
        )
        for i, action in enumerate(plan.actions)
    ]


def execution_name(event_id: str) -> str:
    """A Step Functions execution name for ``event_id``: ≤80 chars of ``[A-Za-z0-9-_]``.

    Distinct event ids give distinct names: an over-long id keeps its tail (the per-plan index)
    and replaces the rest with a hash of the whole id.
    """
    safe = _NAME_UNSAFE.sub("_", event_id)
    if safe == event_id and len(safe) <= EXECUTION_NAME_MAX:
        return safe
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    head, _, tail = safe.rpartition("-")
    head = head[:_SYNC_PART_MAX]
    return f"{head}-{digest}-{tail}"[-EXECUTION_NAME_MAX:]


def validated(change: Change, *, now: int) -> tuple[dict[str, Any], Change]:
    """The corrective event for ``change`` and the change persist reads back from it.

    The one validation both emitters share, once per event: persist's own admission
    (``pipeline.ingest.admit``: names and values by AWS IoT's rules, only the state fields the
    entity has, a timestamp at most the allowed clock skew ahead of ``now``, epoch ms). Raises
    a ``PermanentError``.
    """
    payload = corrective_event(change)
    return payload, admit(payload, region=change.origin.region, now=now)


def emit_via_stepfunctions(
    changes: Sequence[Change],
    sfn_client: SFNClient,
    state_machine_arn: str,
    *,
    progress: Progress | None = None,
    now: int | None = None,
) -> EmitResult:
    """Start one persist execution per ``validated`` change (``now``: epoch ms, default the
    wall clock).

    Throttling is retried by the client's botocore retry policy (``pipeline.aws`` sets adaptive
    mode); what still fails is recorded per change. An ``ExecutionAlreadyExists`` means this very
    event was started before (names derive from event ids), so it counts as ``duplicate``; only
    Standard workflows answer so. The persist machine is an asynchronous Express workflow, which
    starts a second execution with the same name ("Execution guarantees", AWS Step Functions
    Developer Guide, https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html):
    there the state table's write policy counts the replay as a duplicate.
    """
    counts: dict[str, int] = {}
    failures: list[EmitFailure] = []
    clock_ms = now_ms() if now is None else now
    try:
        _start_each(
            changes,
            sfn_client,
            state_machine_arn,
            clock_ms=clock_ms,
            counts=counts,
            failures=failures,
            progress=progress,
        )
    except KeyboardInterrupt as interrupt:
        done = sum(counts.values()) + len(failures)
        raise EmitInterrupted(done, len(changes)) from interrupt
    return EmitResult(counts=counts, failures=tuple(failures))


def _start_each(
    changes: Sequence[Change],
    sfn_client: SFNClient,
    state_machine_arn: str,
    *,
    clock_ms: int,
    counts: dict[str, int],
    failures: list[EmitFailure],
    progress: Progress | None,
) -> None:
    aws = AwsCalls()
    for done, change in enumerate(changes, start=1):
        try:
            # Validated before any call: a payload persist would refuse is not worth a start.
            payload = json.dumps(validated(change, now=clock_ms)[0], sort_keys=True)
            aws(
                "StartExecution",
                sfn_client.start_execution,
                stateMachineArn=state_machine_arn,
                name=execution_name(change.origin.event_id),
                input=payload,
            )
            outcome = "started"
        except AwsError as exc:
            if _unreachable(exc):
                done_before = sum(counts.values()) + len(failures)
                raise EmitStoppedError(exc.operation, exc.code, done_before, len(changes)) from exc
            # Step Functions refuses a second execution of the same name: this event was
            # already started (StartExecution, AWS Step Functions API Reference).
            if exc.code == "ExecutionAlreadyExists":
                outcome = "duplicate"
            else:
                failures.append(
                    _failure(change, exc.code, str(exc), isinstance(exc, RetryableError))
                )
                outcome = ""
        except CrrError as exc:
            failures.append(
                _failure(change, type(exc).__name__, str(exc), isinstance(exc, RetryableError))
            )
            outcome = ""
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None:
            progress(done, len(changes))


TABLE_CHUNK = 500  # changes per progress step (reads are batched 100 at a time within it)


def emit_via_table(
    changes: Iterable[Change],
    table: StateTable,
    *,
    progress: Progress | None = None,
    now: int | None = None,
) -> EmitResult:
    """Persist each ``validated`` change straight into the state table with the persist code.

    Same validation and rules as the state machine (``pipeline.ingest.persist_changes``: the
    dynamic-group membership skip, ancestor stubs, ordering, tombstones, sync tokens), without
    one execution per entity, and batched: a backfill of N entities costs about N/100 reads and
    N conditional writes instead of 2N calls. Project errors (``CrrError``) are recorded per
    change; anything else is a bug and propagates.
    """
    clock_ms = now_ms() if now is None else now
    failures: list[EmitFailure] = []
    items: list[Change] = []
    total = 0
    for change in changes:
        total += 1
        try:
            items.append(validated(change, now=clock_ms)[1])
        except CrrError as exc:
            retryable = isinstance(exc, RetryableError)
            failures.append(_failure(change, type(exc).__name__, str(exc), retryable))
    counts: dict[str, int] = {}
    for start in range(0, len(items), TABLE_CHUNK):
        chunk = items[start : start + TABLE_CHUNK]
        try:
            results = persist_changes(table, chunk)
        except KeyboardInterrupt as interrupt:  # the chunk may be partly written: count it out
            raise EmitInterrupted(start, len(items)) from interrupt
        except CrrError as exc:
            if _unreachable(exc):
                raise EmitStoppedError(exc.operation, exc.code, start, len(items)) from exc
            retryable = isinstance(exc, RetryableError)
            failures.extend(_failure(c, type(exc).__name__, str(exc), retryable) for c in chunk)
        else:
            for result in results:
                outcome = str(result.outcome)
                counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None:
            progress(len(failures) + start + len(chunk), total)
    if progress is not None and failures and not items:
        progress(total, total)
    return EmitResult(counts=counts, failures=tuple(failures))


def _failure(change: Change, error: str, message: str, retryable: bool) -> EmitFailure:
    return EmitFailure(
        key=change.key,
        event_id=change.origin.event_id,
        error=error,
        message=message,
        retryable=retryable,
    )


# -- emitters --------------------------------------------------------------------------------

Via = Literal["stepfunctions", "table", "dry-run"]
VIAS: tuple[Via, ...] = ("stepfunctions", "table")
"""The real ways out; ``"dry-run"`` emits nothing."""


class EmitterConfigError(PermanentError):
    """An emitter asked for without what it needs (a state machine ARN, a table name)."""


class Emitter(Protocol):
    """Where corrective events go; ``via`` names the way in summaries and run records."""

    @property
    def via(self) -> Via: ...

    def emit(
        self, changes: Sequence[Change], *, now: int, progress: Progress | None = None
    ) -> EmitResult:
        """Emit every change, collecting a failure per change that did not go through; ``now``
        (epoch ms, the caller's clock) bounds their timestamps."""
        ...


@dataclass(frozen=True)
class StepFunctionsEmitter:
    """One persist state machine execution per change (what the IoT rule does)."""

    sfn_client: SFNClient
    state_machine_arn: str
    via: ClassVar[Via] = "stepfunctions"

    def emit(
        self, changes: Sequence[Change], *, now: int, progress: Progress | None = None
    ) -> EmitResult:
        return emit_via_stepfunctions(
            changes, self.sfn_client, self.state_machine_arn, progress=progress, now=now
        )


@dataclass(frozen=True)
class TableEmitter:
    """The persist code in-process, straight into the state table (large backfills)."""

    table: StateTable
    via: ClassVar[Via] = "table"

    def emit(
        self, changes: Sequence[Change], *, now: int, progress: Progress | None = None
    ) -> EmitResult:
        return emit_via_table(changes, self.table, progress=progress, now=now)


@dataclass(frozen=True)
class DryRunEmitter:
    """Emits nothing: the plan is shown, not applied."""

    via: ClassVar[Via] = "dry-run"

    def emit(
        self, changes: Sequence[Change], *, now: int, progress: Progress | None = None
    ) -> EmitResult:
        return EmitResult()


def choose_emitter(
    via: Via,
    client: Callable[[str, str], Any],
    region: str,
    *,
    state_machine_arn: str | None = None,
    state_table: str | None = None,
) -> Emitter:
    """The emitter for ``via`` in ``region`` (the source region: corrective events travel the
    way live events do), with clients from ``client(service, region)``."""
    if via == "stepfunctions":
        if not state_machine_arn:
            raise EmitterConfigError("emitting via Step Functions needs the state machine ARN")
        return StepFunctionsEmitter(client("stepfunctions", region), state_machine_arn)
    if via == "table":
        if not state_table:
            raise EmitterConfigError("emitting via the state table needs the table name")
        return TableEmitter(StateTable(client("dynamodb", region), state_table))
    return DryRunEmitter()

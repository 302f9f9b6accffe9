"""One reconciliation run of the nightly job: its run record, artefacts and metrics.

A run is ``snapshot both regions → diff → explain (the three-way audit: where each drift was
lost, from the state table) → plan within the guards → emit corrective events → check a sample
of devices' readiness in the destination (``iot-crr readiness``) → write artefacts → publish
metrics``. It never writes to the destination registry: the corrective
events reach it through the persist path and the destination's replicator, and the destination
stack's pending task finishes thing-type deletions (docs/design.md, "Reconciliation").
``jobs.nightly`` is the entry point (Lambda handler and ``python -m jobs.nightly``) that reads the
environment (``jobs.config``) and calls ``run_nightly(config, factory, clock)`` here, or a
sharded run's steps in ``jobs.shard``; ``factory(service, region)`` builds every boto3 client
(``pipeline.aws.client`` in production, the sandbox's in tests).

Each run keeps its own record: the run id defaults to the time the run starts
(``default_run_id``), so two runs on one day are two rows of the history. A run given an id
(``RUN_ID``, a sharded run's execution name) whose id already has a *completed* record in the run
index does nothing and says so; a failed run leaves a ``failed`` record, so running it again
under its id retries it. Two firings at once are kept apart by the run lock (``jobs.runlock``).
Metrics: ``jobs.metrics``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from jobs.artefacts import (
    RunArtefacts,
    RunRecord,
    Store,
    open_store,
    read_run_record,
    write_run_record,
)
from jobs.config import JOB_KNOBS, RunConfig
from jobs.metrics import SERVICE, MetricsSink, publish_metrics
from pipeline.aws import ClientFactory
from pipeline.clock import Clock
from pipeline.errors import PermanentError
from pipeline.kinds.certificate_refusal import refusals
from pipeline.model import EntityKind
from pipeline.statetable import StateTable
from reconcile.drift import DriftReport
from reconcile.emit import DryRunEmitter, EmitResult, Emitter, choose_emitter
from reconcile.engine import (
    Audit,
    Reconciler,
    registry_reader,
    registry_snapshotter,
    table_snapshotter,
)
from reconcile.progress import LogProgress
from reconcile.readiness.assess import assess
from reconcile.readiness.devices import Probes
from reconcile.readiness.report import ReadinessReport
from reconcile.snapshot import Snapshot
from reconcile.sweep import Sweep

logger = Logger(service=SERVICE)


class RepairEmitError(PermanentError):
    """Some corrective events could not be emitted; the run record lists how many."""

    def __init__(self, run_id: str, failed: int, total: int) -> None:
        super().__init__(f"run {run_id}: {failed} of {total} corrective events failed")
        self.run_id = run_id
        self.failed = failed
        self.total = total


@dataclass(frozen=True)
class RunResult:
    """What a run did: its index record, and whether it was skipped as already completed."""

    record: RunRecord
    skipped: bool = False
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "message": self.message, **self.record.to_json()}


# -- the run ---------------------------------------------------------------------------------


Acquire = Callable[[Reconciler, RunArtefacts, dict[str, int]], Audit]
"""Produces the snapshots and the report with the run's engine, recording stage durations in the
dict it is given."""


def utc_date(epoch_ms: int) -> str:
    """A sharded run's id when its steps are given none: the day, which every shard agrees on
    (the state machine passes its execution name, unique per run)."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).date().isoformat()


def default_run_id(epoch_ms: int) -> str:
    """A run's id when none is given: the UTC time it starts, to the millisecond
    (``2025-01-01T020000.123Z``), so a second run on the same day keeps its own record. (A
    sharded run's steps share one id, their state machine's execution name.)"""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H%M%S}.{epoch_ms % 1000:03d}Z"


def open_run_store(config: RunConfig, factory: ClientFactory) -> Store:
    region = config.report_region or config.source_region
    return open_store(config.report_location, lambda: factory("s3", region))


def reconciler(
    config: RunConfig, factory: ClientFactory, clock: Clock, *, emitter: Emitter | None = None
) -> Reconciler:
    """The engine as the job runs it: both regions read at once (the snapshot is the longest
    stage, and the API quotas it paces itself to are per region, so two regions read at once take
    the time of one), its progress logged (a line per region and listing family every 30 s),
    the job's ignore rules and guards, the state table (for the three-way audit, which the job
    always runs); a dry run unless given an emitter."""
    opt_in = {EntityKind.SHADOW} if config.list_shadows else set()
    include: dict[EntityKind, tuple[str, ...]] = {}
    if config.retained_topics:
        opt_in.add(EntityKind.RETAINED_MESSAGE)
        include[EntityKind.RETAINED_MESSAGE] = config.retained_topics
    return Reconciler(
        registry_snapshotter(
            factory,
            clock=clock,
            progress=LogProgress(logger.info),
            opt_in=opt_in,
            include=include,
            shadows=config.shadows,
            partitions=config.partitions,
            sweep=Sweep.today(config.sweep_slices, clock()),
        ),
        ignore=config.ignore,
        guards=config.guards,
        emitter=emitter or DryRunEmitter(),
        clock=clock,
        table=table_snapshotter(
            factory, config.state_table, clock=clock, opt_in=opt_in, include=include
        ),
        reader=registry_reader(factory),
        policy_accounts=config.policy_accounts,
        knobs=JOB_KNOBS,
        shadows=config.shadows,
    )


def job_emitter(config: RunConfig, factory: ClientFactory) -> Emitter:
    """Corrective events into the source region's persist path (as live events travel)."""
    return choose_emitter(
        config.emit_via,
        factory,
        config.source_region,
        state_machine_arn=config.persist_state_machine_arn,
        state_table=config.state_table,
    )


def snapshot_both(
    engine: Reconciler, config: RunConfig, artefacts: RunArtefacts
) -> tuple[Snapshot, Snapshot]:
    """Snapshot both regions and save them with the run."""
    source, destination = engine.snapshots(config.source_region, config.destination_region)
    artefacts.save_snapshot("source", source)
    artefacts.save_snapshot("target", destination)
    return source, destination


def run_nightly(
    config: RunConfig,
    factory: ClientFactory,
    clock: Clock,
    *,
    metrics: MetricsSink | None = None,
) -> RunResult:
    """One unsharded run (see the module docstring). Raises on error, after recording it."""

    def acquire(engine: Reconciler, artefacts: RunArtefacts, durations: dict[str, int]) -> Audit:
        with timed(durations, "snapshot", clock):
            source, destination = snapshot_both(engine, config, artefacts)
        with timed(durations, "diff", clock):
            return engine.compare(source, destination)

    return execute_run(config, factory, clock, acquire, metrics=metrics)


def execute_run(
    config: RunConfig,
    factory: ClientFactory,
    clock: Clock,
    acquire: Acquire,
    *,
    run_id: str | None = None,
    prefix: str | None = None,
    shards: int = 1,
    metrics: MetricsSink | None = None,
) -> RunResult:
    """The shared body of an unsharded run and a shard merge: everything after ``acquire``.

    ``prefix`` overrides where the run's artefacts live (a merge uses the one its shards wrote).
    """
    started = clock()
    run_id = run_id or config.run_id or default_run_id(started)
    store = open_run_store(config, factory)
    existing = read_run_record(store, run_id)
    if existing is not None and existing.status == "completed":
        message = f"run {run_id} already completed; nothing to do"
        logger.info(message, extra={"run_id": run_id, "prefix": existing.prefix})
        return RunResult(existing, skipped=True, message=message)

    artefacts = (
        RunArtefacts(store, prefix) if prefix else RunArtefacts.for_run(store, run_id, started)
    )
    durations: dict[str, int] = {}
    record = RunRecord(
        run_id=run_id,
        prefix=artefacts.prefix,
        status="failed",
        started_at_ms=started,
        finished_at_ms=started,
        source_region=config.source_region,
        target_region=config.destination_region,
        emitted_via=config.emit_via,
        shards=shards,
    )
    try:
        engine = reconciler(config, factory, clock, emitter=job_emitter(config, factory))
        audit = acquire(engine, artefacts, durations)
        with timed(durations, "explain", clock):
            # The three-way audit, always: the state table tells where each drift was lost.
            audit = engine.explain(audit)
        report = audit.report
        record = replace(
            record,
            diffed=True,
            drift=drift_counts(report),
            drift_total=len(report.drifts),
        )
        with timed(durations, "write", clock):
            artefacts.write_report(report)
        with timed(durations, "plan", clock):
            plan = engine.plan(audit)
            artefacts.write_plan(plan)
        record = replace(record, planned=len(plan.actions), held_back=len(plan.skipped))
        with timed(durations, "emit", clock):
            emitted = engine.apply(plan)
        record = replace(
            record,
            repairs_emitted=repairs_emitted(emitted),
            repairs_failed=len(emitted.failures),
            emit_outcomes=dict(emitted.counts),
        )
        if not emitted.ok:
            raise RepairEmitError(run_id, len(emitted.failures), emitted.total)
        if config.readiness_sample:
            with timed(durations, "readiness", clock):
                readiness = check_readiness(config, factory, clock, run_id)
                artefacts.write_readiness(readiness)
            record = replace(
                record,
                devices_checked=len(readiness.devices),
                devices_not_ready=len(readiness.not_ready),
                readiness_checks_failed=sum(c.blocks for c in readiness.checks),
            )
    except Exception as error:
        # Record the failure (so the next firing retries and operators see it), then re-raise.
        record = _finish(record, durations, clock, "failed", _error_text(error))
        write_run_record(store, record)
        publish_metrics(record, metrics)
        logger.error("nightly run failed", extra={"run_id": run_id, "error": record.error})
        raise
    record = _finish(record, durations, clock, "completed", None)
    write_run_record(store, record)
    publish_metrics(record, metrics)
    message = (
        f"run {run_id}: {record.drift_total} drift(s), {record.repairs_emitted} repair(s) "
        f"emitted, {record.held_back} held back by guards"
    )
    logger.info(message, extra={"run_id": run_id, "prefix": record.prefix})
    return RunResult(record, message=message)


def check_readiness(
    config: RunConfig, factory: ClientFactory, clock: Clock, run_id: str
) -> ReadinessReport:
    """Would a sample of devices connect and publish in the destination now? The sample is
    drawn from the run id, so a run retried checks the same devices. A device whose certificate
    the destination refused to register is named with AWS's reason (the state table's records,
    read in the source region as the audit reads the table)."""
    table = StateTable(factory("dynamodb", config.source_region), config.state_table)
    return assess(
        factory,
        (config.source_region, config.destination_region),
        Probes(publish=config.readiness_publish),
        sample=config.readiness_sample,
        rng=random.Random(run_id),
        accounts=config.policy_accounts,
        clock=clock,
        refused=refusals(table, config.destination_region),
    )


def drift_counts(report: DriftReport) -> dict[str, int]:
    """``"<entity>.<kind>" -> count`` for every entity and drift kind (zeros included)."""
    return {
        f"{entity}.{kind}": count
        for entity, kinds in report.summary().items()
        for kind, count in kinds.items()
    }


# Outcomes that did not put a corrective event into the pipeline: the table already held newer
# state (stale), or this very event went in before (duplicate: same plan, same event ids).
_NOT_EMITTED = frozenset({"stale", "duplicate"})


def repairs_emitted(result: EmitResult) -> int:
    """Corrective events that entered the pipeline (written to the table or started)."""
    return sum(n for outcome, n in result.counts.items() if outcome not in _NOT_EMITTED)


class timed:
    """``with timed(durations, "stage", clock):`` records the stage's duration in ms."""

    def __init__(self, durations: dict[str, int], stage: str, clock: Clock) -> None:
        self._durations = durations
        self._stage = stage
        self._clock = clock
        self._start = 0

    def __enter__(self) -> None:
        self._start = self._clock()

    def __exit__(self, *exc: object) -> None:
        elapsed = self._clock() - self._start
        self._durations[self._stage] = self._durations.get(self._stage, 0) + elapsed


def _error_text(error: BaseException) -> str:
    """The error as the run record keeps it, with its notes (the region a snapshot read)."""
    notes = "; ".join(getattr(error, "__notes__", ()))
    return f"{type(error).__name__}: {error}" + (f" ({notes})" if notes else "")


def _finish(
    record: RunRecord, durations: dict[str, int], clock: Clock, status: str, error: str | None
) -> RunRecord:
    finished = clock()
    return replace(
        record,
        status=status,
        finished_at_ms=finished,
        durations_ms={**durations, "total": finished - record.started_at_ms},
        error=error,
    )

"""One reconciliation run of the nightly job: its configuration, run record, artefacts, metrics.

A run is ``snapshot both regions → diff → explain (the three-way audit: where each drift was
lost, from the state table) → plan within the guards → emit corrective events →
write artefacts → publish metrics``. It never writes to the destination registry: the corrective
events reach it through the persist path and the destination's replicator, and the destination
stack's pending task finishes thing-type deletions (docs/design.md, "Reconciliation").
``jobs.nightly`` is the entry point (Lambda handler and ``python -m jobs.nightly``) that reads the
environment with ``run_config_from_env`` (pure) and calls ``run_nightly(config, factory, clock)``
here, or a sharded run's steps in ``jobs.shard``; ``factory(service, region)`` builds every boto3
client (``pipeline.aws.client`` in production, the sandbox's in tests).

Idempotent when the schedule fires twice: the run id defaults to the UTC date, and a run whose
id already has a *completed* record in the run index does nothing and says so. A failed run
leaves a ``failed`` record, so the next firing retries it.

Metrics go to stdout in CloudWatch embedded metric format (EMF): ``Drift`` per entity and
drift kind, ``RepairsEmitted``, ``RepairsFailed``, ``DriftTotal``, ``RunDuration``, ``RunFailed`` and
``RunSucceeded``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from jobs.artefacts import (
    RUN_ID_PATTERN,
    RunArtefacts,
    RunRecord,
    Store,
    open_store,
    read_run_record,
    write_run_record,
)
from pipeline.aws import ClientFactory
from pipeline.clock import Clock
from pipeline.errors import EventValidationError, PermanentError
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map
from pipeline.statetable import StateTable
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER, DriftReport
from reconcile.emit import DryRunEmitter, EmitResult, Emitter, Via, choose_emitter
from reconcile.engine import Audit, Reconciler, registry_snapshotter
from reconcile.explain import explain_with_table
from reconcile.ignore import IgnorePatternError, IgnoreRules
from reconcile.plan import Guards
from reconcile.progress import LogProgress
from reconcile.snapshot import Snapshot

MetricsSink = Callable[[str], None]

SERVICE = "iot-crr-nightly"
METRIC_NAMESPACE = "IotRegistryCrr"
DEFAULT_MAX_CHANGES = 1000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

logger = Logger(service=SERVICE)


class ConfigError(PermanentError):
    """Environment variables that are missing or malformed; ``problems`` maps each to why."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in problems.items())
        super().__init__(f"bad job configuration: {listed}")
        self.problems = dict(problems)
        self.variables = tuple(problems)


class RepairEmitError(PermanentError):
    """Some corrective events could not be emitted; the run record lists how many."""

    def __init__(self, run_id: str, failed: int, total: int) -> None:
        super().__init__(f"run {run_id}: {failed} of {total} corrective events failed")
        self.run_id = run_id
        self.failed = failed
        self.total = total


@dataclass(frozen=True)
class RunConfig:
    """What one run needs to know, read from the environment (see ``run_config_from_env``)."""

    source_region: str
    destination_region: str  # TARGET_REGION
    state_table: str
    report_location: str
    guards: Guards = field(default_factory=Guards)
    persist_state_machine_arn: str | None = None
    run_id: str | None = None  # None: the UTC date the run starts
    report_region: str | None = None  # the S3 client's region (default: the source region)
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    # POLICY_ACCOUNT_MAP, as the replicator's: policies are diffed as the replicator writes them.
    policy_accounts: Mapping[str, str] = field(default_factory=dict)

    @property
    def emit_via(self) -> Via:
        return "stepfunctions" if self.persist_state_machine_arn else "table"


def run_config_from_env(env: Mapping[str, str]) -> RunConfig:
    """The run configuration in ``env`` (pure). Raises ``ConfigError`` naming every bad variable.

    Required: ``SOURCE_REGION``, ``TARGET_REGION`` (different), ``STATE_TABLE``,
    ``REPORT_LOCATION``. Optional: ``PERSIST_STATE_MACHINE_ARN`` (emit via Step Functions when
    set, else straight into the state table), ``MAX_CHANGES`` (whole number ≥ 0, 0 = no cap,
    default 1000), ``ALLOW_DELETES`` (true/false, default false), ``RUN_ID``, ``IGNORE_PATTERNS``
    (ignore rules as in ``.iotdriftignore``, separated by ``;``), ``POLICY_ACCOUNT_MAP`` (as the
    replicator's, ``pipeline.policyrewrite.parse_account_map``); ``AWS_REGION``
    picks the S3 client's region for an ``s3://`` report location.
    """
    problems: dict[str, str] = {}

    def required(name: str) -> str:
        value = (env.get(name) or "").strip()
        if not value:
            problems[name] = "is required"
        return value

    source, destination = required("SOURCE_REGION"), required("TARGET_REGION")
    for name, region in (("SOURCE_REGION", source), ("TARGET_REGION", destination)):
        if region and not _REGION.match(region):
            problems[name] = f"{region!r} is not a region name like us-east-1"
    if source and source == destination and "TARGET_REGION" not in problems:
        problems["TARGET_REGION"] = f"must differ from SOURCE_REGION ({source})"
    table = required("STATE_TABLE")
    location = required("REPORT_LOCATION")
    if location.startswith("s3://") and not location[len("s3://") :].split("/", 1)[0]:
        problems["REPORT_LOCATION"] = f"{location!r} names no bucket"
    elif "://" in location and not location.startswith("s3://"):
        problems["REPORT_LOCATION"] = f"{location!r} is neither s3://bucket/prefix nor a path"

    arn = (env.get("PERSIST_STATE_MACHINE_ARN") or "").strip() or None
    if arn is not None and not arn.startswith("arn:"):
        problems["PERSIST_STATE_MACHINE_ARN"] = f"{arn!r} is not an ARN"

    max_changes: int | None = DEFAULT_MAX_CHANGES
    raw_max = (env.get("MAX_CHANGES") or "").strip()
    if raw_max:
        if raw_max.isdigit():
            max_changes = int(raw_max) or None
        else:
            problems["MAX_CHANGES"] = f"{raw_max!r} is not a whole number >= 0"

    allow_deletes = False
    raw_allow = (env.get("ALLOW_DELETES") or "").strip().lower()
    if raw_allow in _TRUE:
        allow_deletes = True
    elif raw_allow not in _FALSE:
        problems["ALLOW_DELETES"] = f"{env.get('ALLOW_DELETES')!r} is not true or false"

    run_id = (env.get("RUN_ID") or "").strip() or None
    if run_id is not None and not RUN_ID_PATTERN.fullmatch(run_id):
        problems["RUN_ID"] = f"{run_id!r} is not 1-128 characters of [A-Za-z0-9._-]"

    # ';' separates patterns: it is never part of an IoT name, attribute name or field.
    ignore = IgnoreRules()
    try:
        ignore = IgnoreRules(tuple((env.get("IGNORE_PATTERNS") or "").split(";")))
    except IgnorePatternError as error:
        problems["IGNORE_PATTERNS"] = str(error)

    policy_accounts: dict[str, str] = {}
    try:
        policy_accounts = parse_account_map(env.get(ACCOUNT_MAP_VARIABLE) or "")
    except EventValidationError as error:
        problems[ACCOUNT_MAP_VARIABLE] = error.reason

    if problems:
        raise ConfigError(problems)
    return RunConfig(
        source_region=source,
        destination_region=destination,
        state_table=table,
        report_location=location,
        guards=Guards(allow_deletes=allow_deletes, max_changes=max_changes),
        persist_state_machine_arn=arn,
        run_id=run_id,
        report_region=(env.get("AWS_REGION") or "").strip() or None,
        ignore=ignore,
        policy_accounts=policy_accounts,
    )


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
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).date().isoformat()


def open_run_store(config: RunConfig, factory: ClientFactory) -> Store:
    region = config.report_region or config.source_region
    return open_store(config.report_location, lambda: factory("s3", region))


def reconciler(
    config: RunConfig, factory: ClientFactory, clock: Clock, *, emitter: Emitter | None = None
) -> Reconciler:
    """The engine as the job runs it: both regions read at once (the snapshot is the longest
    stage, and the API quotas it paces itself to are per region, so two regions read at once take
    the time of one), its progress logged (a line per region and listing family every 30 s),
    the job's ignore rules and guards; a dry run unless given an emitter."""
    return Reconciler(
        registry_snapshotter(factory, clock=clock, progress=LogProgress(logger.info)),
        ignore=config.ignore,
        guards=config.guards,
        emitter=emitter or DryRunEmitter(),
        clock=clock,
        policy_accounts=config.policy_accounts,
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


def explain_run(config: RunConfig, factory: ClientFactory, clock: Clock, audit: Audit) -> Audit:
    """The three-way audit, always: the state table (source region) tells where each drift
    was lost (reconcile.explain)."""
    table = StateTable(factory("dynamodb", config.source_region), config.state_table)
    report = explain_with_table(
        audit.report,
        audit.source,
        audit.destination,
        table,
        ignore=config.ignore,
        clock=clock,
    )
    return replace(audit, report=report)


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
    run_id = run_id or config.run_id or utc_date(started)
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
            audit = explain_run(config, factory, clock, audit)
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
    except Exception as error:
        # Record the failure (so the next firing retries and operators see it), then re-raise.
        record = _finish(record, durations, clock, "failed", f"{type(error).__name__}: {error}")
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


# -- metrics ---------------------------------------------------------------------------------


def emf_documents(record: RunRecord, *, namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """The run's metrics as CloudWatch EMF documents (pure): one for the run's totals and, when
    the run got as far as a diff, one ``Drift`` document per entity and drift kind."""

    def document(
        dimensions: dict[str, str], values: dict[str, tuple[float, str]]
    ) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": record.finished_at_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": n, "Unit": unit} for n, (_, unit) in values.items()],
                    }
                ],
            },
            **dimensions,
            **{name: value for name, (value, _) in values.items()},
            "run_id": record.run_id,
            "status": record.status,
        }

    base = {"Service": SERVICE}
    totals: dict[str, tuple[float, str]] = {
        "RepairsEmitted": (record.repairs_emitted, "Count"),
        "RepairsFailed": (record.repairs_failed, "Count"),
        "RunDuration": (record.finished_at_ms - record.started_at_ms, "Milliseconds"),
        "RunFailed": (0 if record.status == "completed" else 1, "Count"),
        # The success metric: a night without one (the job never ran) raises an alarm.
        "RunSucceeded": (1 if record.status == "completed" else 0, "Count"),
    }
    if record.diffed:
        totals["DriftTotal"] = (record.drift_total, "Count")
    documents = [document(base, totals)]
    if record.diffed:
        for entity in ENTITY_ORDER:
            for kind in DRIFT_KINDS:
                count = record.drift.get(f"{entity.value}.{kind}", 0)
                documents.append(
                    document(
                        {**base, "Entity": entity.value, "DriftKind": kind},
                        {"Drift": (count, "Count")},
                    )
                )
    return documents


def publish_metrics(record: RunRecord, sink: MetricsSink | None = None) -> None:
    """Each EMF document as one JSON line on stdout (CloudWatch Logs extracts the metrics)."""
    write = sink or _stdout_line
    for document in emf_documents(record):
        write(json.dumps(document, separators=(",", ":"), sort_keys=True))


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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

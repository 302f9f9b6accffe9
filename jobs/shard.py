"""Scale-out: the nightly job as shards (one name-hash bucket each) and a merge.

On AWS, ``infra/statemachines/reconcile-sharded.asl.json`` (a Distributed Map) invokes
``jobs.nightly.lambda_handler`` with ``{"shard": {"index": i, "count": n}}`` for each shard,
then once with ``{"merge": {"count": n, "shards": [<shard results>]}}``.

- An optional ``{"prepare": {}}`` step takes the run's snapshots once, before the Map.
- A shard loads the run's shared snapshots from its artefacts when present (taking and saving
  them otherwise), diffs only its bucket (``Reconciler.compare(..., buckets=n,
  bucket_range=range(i, i + 1))``) and writes its partial report to
  ``<run prefix>/shards/count=<n>/shard=<i>.json``.
- The merge reads every shard's report, merges them (``merge_reports``: the same report an
  unsharded diff gives) and then plans, emits and writes exactly as an unsharded run
  (``jobs.run.execute_run``).

Shards of one run share its run id: the event's ``run_id``, else ``RUN_ID``, else the UTC date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from jobs.artefacts import RunArtefacts, read_run_record
from jobs.config import RunConfig
from jobs.metrics import MetricsSink
from jobs.run import (
    RunResult,
    execute_run,
    open_run_store,
    reconciler,
    snapshot_both,
    timed,
    utc_date,
)
from pipeline.aws import ClientFactory
from pipeline.clock import Clock
from pipeline.errors import EventValidationError, PermanentError
from reconcile.drift import merge_reports
from reconcile.engine import Audit, Reconciler
from reconcile.snapshot import Snapshot


class ShardMismatchError(PermanentError):
    """Shard results that do not belong together (another run, or other snapshots)."""


class ShardSpec(BaseModel):
    """``{"shard": {...}}``: which bucket of how many, and optionally the run id."""

    model_config = ConfigDict(extra="ignore")
    index: int = Field(ge=0)
    count: int = Field(ge=1, le=10_000)
    run_id: str | None = None

    @model_validator(mode="after")
    def _index_in_range(self) -> ShardSpec:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} is not below count {self.count}")
        return self


class PrepareSpec(BaseModel):
    """``{"prepare": {...}}``: snapshot both regions once for the shards (optional run id)."""

    model_config = ConfigDict(extra="ignore")
    run_id: str | None = None


@dataclass(frozen=True)
class ShardResult:
    """What a shard returns (the Distributed Map collects these for the merge, which reads them
    back as such)."""

    run_id: str
    index: int
    count: int
    prefix: str
    report_key: str
    drift_total: int
    source_fingerprint: str
    target_fingerprint: str
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return _SHARD_RESULT.dump_python(self, mode="json")


_SHARD_RESULT: TypeAdapter[ShardResult] = TypeAdapter(ShardResult)


class MergeSpec(BaseModel):
    """``{"merge": {...}}``: how many shards, and optionally their results and the run id."""

    model_config = ConfigDict(extra="ignore")
    count: int = Field(ge=1, le=10_000)
    run_id: str | None = None
    shards: list[ShardResult] | None = None


def parse_shard(event: dict[str, Any] | Any) -> ShardSpec:
    try:
        return ShardSpec.model_validate(event["shard"])
    except ValidationError as error:
        raise EventValidationError("shard", str(error)) from error


def parse_prepare(event: dict[str, Any] | Any) -> PrepareSpec:
    try:
        return PrepareSpec.model_validate(event["prepare"] or {})
    except ValidationError as error:
        raise EventValidationError("prepare", str(error)) from error


def parse_merge(event: dict[str, Any] | Any) -> MergeSpec:
    try:
        return MergeSpec.model_validate(event["merge"])
    except ValidationError as error:
        raise EventValidationError("merge", str(error)) from error


def shared_snapshots(
    engine: Reconciler, config: RunConfig, artefacts: RunArtefacts
) -> tuple[Snapshot, Snapshot]:
    """The run's snapshots: loaded when a shard (or a prepare step) saved them, else taken."""
    if artefacts.has_snapshot("source") and artefacts.has_snapshot("target"):
        return artefacts.load_snapshot("source"), artefacts.load_snapshot("target")
    return snapshot_both(engine, config, artefacts)


def run_prepare(
    config: RunConfig, factory: ClientFactory, clock: Clock, spec: PrepareSpec
) -> dict[str, Any]:
    """Take and save the run's snapshots before the shards start, so every shard loads the
    same pair instead of each reading both registries (n times the API quota, and a risk of
    shards seeing different registries). Optional: without it the first shards take them."""
    started = clock()
    run_id = spec.run_id or config.run_id or utc_date(started)
    artefacts = RunArtefacts.for_run(open_run_store(config, factory), run_id, started)
    source, destination = snapshot_both(reconciler(config, factory, clock), config, artefacts)
    return {
        "run_id": run_id,
        "prefix": artefacts.prefix,
        "source_fingerprint": source.fingerprint(),
        "target_fingerprint": destination.fingerprint(),
        "counts": {"source": source.counts(), "target": destination.counts()},
    }


def run_shard(
    config: RunConfig, factory: ClientFactory, clock: Clock, spec: ShardSpec
) -> ShardResult:
    """Diff one bucket of the run and save its partial report (no plan, no emit)."""
    started = clock()
    run_id = spec.run_id or config.run_id or utc_date(started)
    store = open_run_store(config, factory)
    artefacts = RunArtefacts.for_run(store, run_id, started)
    key = artefacts.shard_key(spec.index, spec.count)
    existing = read_run_record(store, run_id)
    if existing is not None and existing.status == "completed":
        return ShardResult(run_id, spec.index, spec.count, existing.prefix, key, 0, "", "", True)
    engine = reconciler(config, factory, clock)
    source, destination = shared_snapshots(engine, config, artefacts)
    bucket = range(spec.index, spec.index + 1)
    report = engine.compare(source, destination, buckets=spec.count, bucket_range=bucket).report
    artefacts.write_shard_report(spec.index, spec.count, report)
    return ShardResult(
        run_id=run_id,
        index=spec.index,
        count=spec.count,
        prefix=artefacts.prefix,
        report_key=key,
        drift_total=len(report.drifts),
        source_fingerprint=report.source_fingerprint,
        target_fingerprint=report.target_fingerprint,
    )


def _from_shards(spec: MergeSpec) -> tuple[str | None, str | None]:
    """The run id and prefix the shard results agree on (``None`` when there are none)."""
    results = spec.shards or []
    run_ids = {r.run_id for r in results if r.run_id}
    prefixes = {r.prefix for r in results if r.prefix}
    if len(run_ids) > 1 or len(prefixes) > 1:
        raise ShardMismatchError(f"shard results name several runs: {sorted(run_ids)}")
    if spec.run_id and run_ids and spec.run_id not in run_ids:
        raise ShardMismatchError(f"merge for run {spec.run_id} got shards of {sorted(run_ids)}")
    return (spec.run_id or next(iter(run_ids), None), next(iter(prefixes), None))


def run_merge(
    config: RunConfig,
    factory: ClientFactory,
    clock: Clock,
    spec: MergeSpec,
    *,
    metrics: MetricsSink | None = None,
) -> RunResult:
    """Merge the run's shard reports, then plan, emit and record it as an unsharded run."""
    run_id, prefix = _from_shards(spec)

    def acquire(engine: Reconciler, artefacts: RunArtefacts, durations: dict[str, int]) -> Audit:
        with timed(durations, "snapshot", clock):
            source = artefacts.load_snapshot("source")
            destination = artefacts.load_snapshot("target")
        with timed(durations, "diff", clock):
            report = merge_reports(
                artefacts.read_shard_report(index, spec.count) for index in range(spec.count)
            )
        if (report.source_fingerprint, report.target_fingerprint) != (
            source.fingerprint(),
            destination.fingerprint(),
        ):
            # Two shards raced to take the snapshots and the registry moved in between.
            raise ShardMismatchError(
                f"run {artefacts.prefix}: shard reports do not match the saved snapshots; rerun"
            )
        return Audit(source, destination, report)

    return execute_run(
        config,
        factory,
        clock,
        acquire,
        run_id=run_id,
        prefix=prefix,
        shards=spec.count,
        metrics=metrics,
    )

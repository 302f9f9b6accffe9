"""Where the nightly job leaves its record: per-run artefacts and the run index.

Flow: ``jobs.run`` (and ``jobs.shard``) write through ``RunArtefacts`` as a run proceeds;
``jobs.history`` and the notebooks read back through ``load_index`` / ``load_drift_items``.
This is the job's only storage edge: a ``Store`` is either a local directory or an S3 prefix
(``open_store("s3://bucket/prefix")``); everything above it speaks keys and bytes.

Layout under the location::

    runs/date=YYYY-MM-DD/run=<run_id>/
        source/ target/            snapshots (``Snapshot.save``: Parquet per table + manifest)
        report.json report.html    the drift report (``reconcile.report`` JSON contract + HTML)
        plan.json                  the repair plan (``Plan.to_json``)
        drift_items.parquet        one row per drift: entity, name, kind, severity, fields, details,
                                   where (the three-way audit's loss point; empty if not read)
        shards/count=<n>/shard=<i>.json   partial reports of a sharded run
    index/runs/run=<run_id>.json   the run index: one record per run

The index is one small object per run rather than one appended file: S3 has no append, and a
schedule that fires twice at once must not lose a row to a read-modify-write race.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from pipeline.aws import AwsCalls
from pipeline.errors import NotFoundError, PermanentError
from reconcile.drift import DriftReport
from reconcile.plan import Plan
from reconcile.readiness.report import ReadinessReport
from reconcile.readiness.report import render as render_readiness
from reconcile.readiness.report import to_json as readiness_json
from reconcile.report import json_text, load_json, render, to_json
from reconcile.snapshot import MANIFEST, SCHEMAS, Snapshot

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Use with ``fullmatch``: ``$`` would also accept a trailing newline. ``\A``/``\Z`` keep a plain
# ``match`` whole-string too.
RUN_ID_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
INDEX_PREFIX = "index/runs/"
SNAPSHOT_FILES = (MANIFEST, *(f"{table}.parquet" for table in SCHEMAS))
DRIFT_ITEM_COLUMNS = ("entity", "name", "kind", "severity", "fields", "details", "where")
_DATE_ID = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# S3's answers for a missing object: GetObject's ``NoSuchKey``; HeadObject has no body, so its
# code is the status, "404" (Amazon S3 API Reference, HeadObject and GetObject). A missing
# *bucket* (``NoSuchBucket``, also 404) is a fault, not a missing artefact.
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class ArtefactError(PermanentError):
    """The artefact store cannot be opened, or holds something this version cannot read."""


class ArtefactNotFoundError(ArtefactError):
    """No artefact under ``key``."""

    def __init__(self, location: str, key: str) -> None:
        super().__init__(f"no artefact {key!r} at {location}")
        self.location = location
        self.key = key


# -- stores ---------------------------------------------------------------------------------


class Store(Protocol):
    """Bytes under slash-separated keys, relative to one location."""

    location: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]: ...


class LocalStore:
    """A directory on the local disk (the sandbox, a laptop, CI).

    Keys never leave the directory: a ``..`` part, an absolute key or a symlink pointing out is
    refused (keys embed run ids and prefixes read back from the index, which a hand-edited or
    forged record could aim anywhere).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if key.startswith("/") or "\\" in key or "\0" in key or ".." in parts:
            raise ArtefactError(f"artefact key {key!r} is outside the store {self.location}")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ArtefactError(f"artefact key {key!r} resolves outside the store {self.location}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise ArtefactNotFoundError(self.location, key) from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.endswith(".partial")
        )


class S3Store:
    """An S3 prefix; ``client`` is a boto3 S3 client (``pipeline.aws.client("s3", region)``)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._aws = AwsCalls()
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self._aws(
            "PutObject", self._client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
        )

    def get(self, key: str) -> bytes:
        def read(**params: Any) -> bytes:
            # The body is read inside the call: a response cut short is the call's failure.
            return bytes(self._client.get_object(**params)["Body"].read())

        try:
            return self._aws("GetObject", read, Bucket=self.bucket, Key=self._key(key))
        except NotFoundError as error:
            if error.code in _MISSING_OBJECT_CODES:
                raise ArtefactNotFoundError(self.location, key) from error
            raise

    def exists(self, key: str) -> bool:
        try:
            self._aws(
                "HeadObject", self._client.head_object, Bucket=self.bucket, Key=self._key(key)
            )
        except NotFoundError as error:
            if error.code in _MISSING_OBJECT_CODES:
                return False
            raise
        return True

    def keys(self, prefix: str) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: list[str] = []
        token: str | None = None
        while True:
            request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(prefix)}
            if token:
                request["ContinuationToken"] = token
            page = self._aws("ListObjectsV2", self._client.list_objects_v2, **request)
            found += [str(entry["Key"])[strip:] for entry in page.get("Contents") or []]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(found)


def open_store(location: str, s3_client: Callable[[], Any] | None = None) -> Store:
    """``s3://bucket/prefix`` → ``S3Store`` (``s3_client()`` builds its client); else a directory."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        if not bucket:
            raise ArtefactError(f"no bucket in report location {location!r}")
        if s3_client is None:
            raise ArtefactError(f"an S3 client is needed for {location!r}")
        return S3Store(s3_client(), bucket, prefix)
    if "://" in location:
        raise ArtefactError(f"report location {location!r} is neither s3:// nor a local path")
    return LocalStore(location)


# -- the run index ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One row of the run index. Times are epoch milliseconds (UTC).

    ``drift`` maps ``"<entity>.<kind>"`` to a count (every entity and kind, zeros included);
    ``durations_ms`` maps a stage to its duration. ``planned`` repairs were emitted
    (``repairs_emitted``: written or started; ``emit_outcomes`` has every outcome, e.g. ``stale``
    when the state table already holds something newer) or failed; ``held_back`` were kept back
    by a guard (deletes not allowed). ``devices_not_ready`` of ``devices_checked`` sampled devices
    would not work in the destination (``iot-crr readiness``), and ``readiness_checks_failed``
    account checks failed there (level error); ``None`` when no readiness check ran. ``diffed`` says the run got as far as a
    report (so history may count it as an observation); ``status`` is ``completed`` or ``failed``.
    """

    run_id: str
    prefix: str
    status: str
    started_at_ms: int
    finished_at_ms: int
    source_region: str
    target_region: str
    diffed: bool = False
    drift: dict[str, int] = field(default_factory=dict)
    drift_total: int = 0
    planned: int = 0
    held_back: int = 0
    repairs_emitted: int = 0
    repairs_failed: int = 0
    emit_outcomes: dict[str, int] = field(default_factory=dict)
    emitted_via: str = ""
    shards: int = 1
    durations_ms: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    # The readiness check of a sample of devices (``jobs.run``): None when none ran.
    devices_checked: int = 0
    devices_not_ready: int | None = None
    readiness_checks_failed: int = 0

    def to_json(self) -> dict[str, Any]:
        return _RUN_RECORD.dump_python(self, mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record in ``data``; fields it no longer has are ignored (older runs counted the
        destination's thing-type deletions, ``pending_types_deleted``, before its pending task
        took them over)."""
        try:
            return _RUN_RECORD.validate_python(data)
        except ValidationError as error:
            raise ArtefactError(f"not a run record: {error}") from error


_RUN_RECORD: TypeAdapter[RunRecord] = TypeAdapter(RunRecord)


def index_key(run_id: str) -> str:
    return f"{INDEX_PREFIX}run={run_id}.json"


def write_run_record(store: Store, record: RunRecord) -> None:
    store.put(index_key(record.run_id), _json_bytes(record.to_json()))


def read_run_record(store: Store, run_id: str) -> RunRecord | None:
    try:
        data = json.loads(store.get(index_key(run_id)))
    except ArtefactNotFoundError:
        return None
    return RunRecord.from_json(data)


def index_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Run records as a flat frame sorted by start: ``drift.<entity>.<kind>`` and
    ``duration_<stage>_ms`` columns; ``started_at``/``finished_at`` as UTC timestamps."""
    rows = []
    for record in records:
        nested = {"drift", "durations_ms", "emit_outcomes"}
        row = {k: v for k, v in record.to_json().items() if k not in nested}
        row.update({f"drift.{key}": count for key, count in record.drift.items()})
        row.update({f"duration_{stage}_ms": ms for stage, ms in record.durations_ms.items()})
        row.update({f"emit.{outcome}": n for outcome, n in record.emit_outcomes.items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["run_id", "started_at_ms"])
    if frame.empty:
        frame["started_at"] = pd.Series([], dtype="datetime64[ms, UTC]")
        frame["finished_at"] = pd.Series([], dtype="datetime64[ms, UTC]")
        return frame
    frame["started_at"] = pd.to_datetime(frame["started_at_ms"], unit="ms", utc=True)
    frame["finished_at"] = pd.to_datetime(frame["finished_at_ms"], unit="ms", utc=True)
    return frame.sort_values(["started_at_ms", "run_id"], kind="stable").reset_index(drop=True)


def load_index(store: Store) -> pd.DataFrame:
    """The whole run index as a frame (see ``index_frame``)."""
    records = [
        RunRecord.from_json(json.loads(store.get(key)))
        for key in store.keys(INDEX_PREFIX)
        if key.endswith(".json")
    ]
    return index_frame(records)


# -- one run's artefacts ----------------------------------------------------------------------


def partition_date(run_id: str, started_at_ms: int) -> date:
    """The run's date partition: the run id itself when it is a date (the default run id, so
    every shard of a run agrees on it), else the UTC day the run started."""
    if _DATE_ID.fullmatch(run_id):
        try:
            return date.fromisoformat(run_id)
        except ValueError:
            pass
    return datetime.fromtimestamp(started_at_ms / 1000, tz=UTC).date()


def run_prefix(run_id: str, day: date) -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ArtefactError(f"run id {run_id!r} is not [A-Za-z0-9._-] (1-128 characters)")
    return f"runs/date={day.isoformat()}/run={run_id}/"


def drift_items_frame(report: DriftReport) -> pd.DataFrame:
    """One row per drift: entity, name, kind, severity, ``fields`` (comma-joined detail fields)
    ``details`` (canonical JSON of the detail map, for drill-down) and ``where`` (the loss point
    from the three-way audit, missing when the run did not read the state table)."""
    rows = [
        {
            "entity": drift.entity.value,
            "name": drift.name,
            "kind": drift.kind,
            "severity": drift.severity,
            "fields": ",".join(drift.details),
            "details": json.dumps(drift.details, sort_keys=True, separators=(",", ":")),
            "where": drift.where,
        }
        for drift in report.drifts
    ]
    frame = pd.DataFrame(rows, columns=list(DRIFT_ITEM_COLUMNS))
    return frame.astype(dict.fromkeys(DRIFT_ITEM_COLUMNS, "string"))


class RunArtefacts:
    """The artefacts of one run, under ``prefix`` in ``store``."""

    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    @classmethod
    def for_run(cls, store: Store, run_id: str, started_at_ms: int) -> RunArtefacts:
        return cls(store, run_prefix(run_id, partition_date(run_id, started_at_ms)))

    def key(self, name: str) -> str:
        return self.prefix + name

    # snapshots

    def save_snapshot(self, side: str, snapshot: Snapshot) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            snapshot.save(Path(tmp))
            # The manifest last: its presence means the snapshot is complete.
            for name in sorted(SNAPSHOT_FILES, key=lambda n: n == MANIFEST):
                self.store.put(self.key(f"{side}/{name}"), (Path(tmp) / name).read_bytes())

    def has_snapshot(self, side: str) -> bool:
        return self.store.exists(self.key(f"{side}/{MANIFEST}"))

    def load_snapshot(self, side: str) -> Snapshot:
        with tempfile.TemporaryDirectory() as tmp:
            for name in SNAPSHOT_FILES:
                (Path(tmp) / name).write_bytes(self.store.get(self.key(f"{side}/{name}")))
            return Snapshot.load(Path(tmp))

    # report, plan, drift items

    def write_report(self, report: DriftReport) -> None:
        self.store.put(self.key("report.json"), _json_bytes(to_json(report)))
        self.store.put(self.key("report.html"), render(report, "html").encode("utf-8"))
        buffer = BytesIO()
        drift_items_frame(report).to_parquet(buffer, index=False)
        self.store.put(self.key("drift_items.parquet"), buffer.getvalue())

    def write_readiness(self, report: ReadinessReport) -> None:
        self.store.put(self.key("readiness.json"), _json_bytes(readiness_json(report)))
        self.store.put(self.key("readiness.html"), render_readiness(report, "html").encode())

    def read_report_json(self) -> dict[str, Any]:
        data = json.loads(self.store.get(self.key("report.json")))
        if not isinstance(data, dict):
            raise ArtefactError(f"{self.key('report.json')} does not hold a JSON object")
        return data

    def write_plan(self, plan: Plan) -> None:
        self.store.put(self.key("plan.json"), _json_bytes(plan.to_json()))

    def read_drift_items(self) -> pd.DataFrame:
        return pd.read_parquet(BytesIO(self.store.get(self.key("drift_items.parquet"))))

    # shards

    def shard_key(self, index: int, count: int) -> str:
        return self.key(f"shards/count={count}/shard={index}.json")

    def write_shard_report(self, index: int, count: int, report: DriftReport) -> str:
        key = self.shard_key(index, count)
        # With each drift's rows to repair from: the merge plans from these (reconcile.report).
        self.store.put(key, _json_bytes(to_json(report, rows=True)))
        return key

    def read_shard_report(self, index: int, count: int) -> DriftReport:
        return load_json(json.loads(self.store.get(self.shard_key(index, count))))


def load_drift_items(store: Store, index: pd.DataFrame) -> pd.DataFrame:
    """Drift items of every run in ``index`` that got as far as a report, with ``run_id``."""
    frames = []
    for run_id, prefix in zip(index.get("run_id", []), index.get("prefix", []), strict=True):
        artefacts = RunArtefacts(store, str(prefix))
        if not artefacts.store.exists(artefacts.key("drift_items.parquet")):
            continue
        items = artefacts.read_drift_items()
        if "where" not in items:  # runs from before the three-way audit
            items["where"] = pd.Series(pd.NA, index=items.index, dtype="string")
        items.insert(0, "run_id", str(run_id))
        frames.append(items)
    if not frames:
        return pd.DataFrame(
            {c: pd.Series([], dtype="string") for c in ("run_id", *DRIFT_ITEM_COLUMNS)}
        )
    return pd.concat(frames, ignore_index=True)


def _json_bytes(data: Any) -> bytes:
    return (json_text(data, indent=2, sort_keys=True) + "\n").encode("utf-8")

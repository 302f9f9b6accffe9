"""The nightly job's configuration: the environment read once, every bad variable named.

``jobs.nightly`` (the Lambda handler and ``python -m jobs.nightly``) reads it with
``run_config_from_env`` (pure) and hands the ``RunConfig`` to a run (``jobs.run``) or a sharded
run's steps (``jobs.shard``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from jobs.artefacts import RUN_ID_PATTERN
from pipeline.errors import EventValidationError, PermanentError
from pipeline.kinds.shadow_selection import ALL, ShadowSelection, selection_from_env
from pipeline.model import EntityKind
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map
from reconcile.emit import Via
from reconcile.guards import Guards
from reconcile.ignore import IgnorePatternError, IgnoreRules
from reconcile.partition import parse_partitions
from reconcile.readiness.devices import MAX_QUESTIONS
from reconcile.sweep import MAX_SLICES

DEFAULT_MAX_CHANGES = 1000
# How the job's operator sets each guard (a refusal names it: ``reconcile.guards.Knobs``): the
# environment variable and the reconcile stack's parameter that sets it.
JOB_KNOBS = {
    "max_changes": "raise MAX_CHANGES (the reconcile stack's MaxChanges parameter; 0: no cap) "
    "if this is expected",
    "allow_deletes": "set ALLOW_DELETES=true (the reconcile stack's AllowDeletes parameter)",
    "min_source_ratio": "the job keeps the default ratio: check the source region and the "
    "job's read permissions",
}
# Devices whose readiness in the destination each run checks (`iot-crr readiness --sample`):
# TestAuthorization's quota is 10 TPS per region, so a small sample costs seconds.
DEFAULT_READINESS_SAMPLE = 20
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class ConfigError(PermanentError):
    """Environment variables that are missing or malformed; ``problems`` maps each to why."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in problems.items())
        super().__init__(f"bad job configuration: {listed}")
        self.problems = dict(problems)
        self.variables = tuple(problems)


@dataclass(frozen=True)
class RunConfig:
    """What one run needs to know, read from the environment (see ``run_config_from_env``)."""

    source_region: str
    destination_region: str  # TARGET_REGION
    state_table: str
    report_location: str
    guards: Guards = field(default_factory=Guards)
    persist_state_machine_arn: str | None = None
    run_id: str | None = None  # None: the time the run starts (jobs.run.default_run_id)
    report_region: str | None = None  # the S3 client's region (default: the source region)
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    # POLICY_ACCOUNT_MAP, as the replicator's: policies are diffed as the replicator writes them.
    policy_accounts: Mapping[str, str] = field(default_factory=dict)
    # READINESS_SAMPLE certificates' devices checked each run (0: none; the environment's
    # default is DEFAULT_READINESS_SAMPLE), asked to connect and to publish on READINESS_PUBLISH's
    # topics ({thing}: the thing's name).
    readiness_sample: int = 0
    readiness_publish: tuple[str, ...] = ()
    # LIST_SHADOWS: the snapshots list device shadows too (opt-in: per-thing calls).
    list_shadows: bool = False
    # RETAINED_TOPICS: topic globs; the snapshots list the retained messages whose topic
    # matches one (none: retained messages are not listed; docs/retained.md).
    retained_topics: tuple[str, ...] = ()
    # SHADOW_INCLUDE, SHADOW_EXCLUDE, SHADOW_SECTIONS: which shadows and sections are
    # replicated (pipeline.kinds.shadow_selection), as the persist function's.
    shadows: ShadowSelection = ALL
    # LIST_IN_PARTS: per kind, the partition its listing runs in (``thing=type``;
    # reconcile.partition: each region is asked first whether it is sound there).
    partitions: Mapping[EntityKind, str] = field(default_factory=dict)
    # SWEEP_SLICES: the per-device links are listed one slice of N a run, the day's
    # (reconcile.sweep); 1: every link, every run.
    sweep_slices: int = 1

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
    replicator's, ``pipeline.policyrewrite.parse_account_map``), ``READINESS_SAMPLE`` (whole
    number ≥ 0, default 20, 0 = no readiness check), ``READINESS_PUBLISH`` (topics separated by
    ``;``, ``{thing}`` the thing's name), ``LIST_SHADOWS`` (true/false, default false: snapshots
    list device shadows, per-thing calls), ``SHADOW_INCLUDE``, ``SHADOW_EXCLUDE``,
    ``SHADOW_SECTIONS`` (``pipeline.kinds.shadow_selection``), ``RETAINED_TOPICS`` (topic globs
    separated by ``;``, default none: snapshots list the retained messages whose topic matches
    one), ``LIST_IN_PARTS`` (``KIND=PARTITION`` values separated by ``,``, e.g. ``thing=type``,
    default none: ``reconcile.partition.parse_partitions``), ``SWEEP_SLICES`` (1 to
    ``reconcile.sweep.MAX_SLICES``, default 1: each run lists the per-device links of one
    slice of that many, the day's: ``reconcile.sweep``); ``AWS_REGION``
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

    allow_deletes = _flag(env, "ALLOW_DELETES", problems)

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

    readiness_sample, publish = _readiness(env, problems)
    list_shadows = _flag(env, "LIST_SHADOWS", problems)
    retained_topics = tuple(
        glob.strip() for glob in (env.get("RETAINED_TOPICS") or "").split(";") if glob.strip()
    )
    shadows = _shadows(env, problems)
    partitions = _partitions(env, problems)
    sweep_slices = _sweep_slices(env, problems)

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
        readiness_sample=readiness_sample,
        readiness_publish=publish,
        list_shadows=list_shadows,
        retained_topics=retained_topics,
        shadows=shadows,
        partitions=partitions,
        sweep_slices=sweep_slices,
    )


def _shadows(env: Mapping[str, str], problems: dict[str, str]) -> ShadowSelection:
    """``SHADOW_INCLUDE``, ``SHADOW_EXCLUDE``, ``SHADOW_SECTIONS``; what is wrong goes into
    ``problems``."""
    try:
        return selection_from_env(env)
    except EventValidationError as error:
        problems[error.field] = error.reason
        return ALL


def _partitions(env: Mapping[str, str], problems: dict[str, str]) -> dict[EntityKind, str]:
    """``LIST_IN_PARTS``; what is wrong goes into ``problems``."""
    values = [value for value in (env.get("LIST_IN_PARTS") or "").split(",") if value.strip()]
    try:
        return parse_partitions(values)
    except ValueError as error:
        problems["LIST_IN_PARTS"] = str(error)
        return {}


def _sweep_slices(env: Mapping[str, str], problems: dict[str, str]) -> int:
    """``SWEEP_SLICES``; what is wrong goes into ``problems``."""
    raw = (env.get("SWEEP_SLICES") or "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SLICES:
        problems["SWEEP_SLICES"] = f"{raw!r} is not a whole number from 1 to {MAX_SLICES}"
        return 1
    return int(raw)


def _flag(env: Mapping[str, str], name: str, problems: dict[str, str]) -> bool:
    """A true/false variable, false when unset; what is wrong goes into ``problems``."""
    raw = (env.get(name) or "").strip().lower()
    if raw not in _TRUE and raw not in _FALSE:
        problems[name] = f"{env.get(name)!r} is not true or false"
    return raw in _TRUE


def _readiness(env: Mapping[str, str], problems: dict[str, str]) -> tuple[int, tuple[str, ...]]:
    """``READINESS_SAMPLE`` and ``READINESS_PUBLISH``; what is wrong goes into ``problems``."""
    sample = DEFAULT_READINESS_SAMPLE
    raw_sample = (env.get("READINESS_SAMPLE") or "").strip()
    if raw_sample:
        if raw_sample.isdigit():
            sample = int(raw_sample)
        else:
            problems["READINESS_SAMPLE"] = f"{raw_sample!r} is not a whole number >= 0"
    publish = tuple(t.strip() for t in (env.get("READINESS_PUBLISH") or "").split(";") if t.strip())
    if len(publish) >= MAX_QUESTIONS:
        # iot:Connect and each topic: one TestAuthorization call's questions (reconcile.readiness)
        problems["READINESS_PUBLISH"] = f"{len(publish)} topics: at most {MAX_QUESTIONS - 1}"
    return sample, publish

"""Rendering a ``DriftReport``: the JSON contract, and (``reconcile.reportformats``) the console
table, Markdown and HTML.

Flow: ``reconcile.diff`` → ``DriftReport`` → here → the CLI's stdout or ``--output`` file. The
JSON form (``to_json``) is the versioned contract other tools read (CI, notebooks, the shard
merge via ``load_json``); the other formats are for people. Pure functions, no I/O.

JSON contract, ``schema_version`` "2"::

    {"schema_version": "2", "source_region", "target_region",
     "generated_at": ISO-8601 UTC with ms, "generated_at_ms": epoch ms,
     "fingerprints": {"source", "target"}, "in_sync": bool,
     "counts": {entity: compared (source side)},
     "summary": {entity: {"missing", "extra", "changed"}},
     "explained": bool,
     "where_summary": {"lost_before_table", "lost_after_table", "table_only": count},
     "fixes": {loss point: what to check or do},
     "held": count,
     "sweep": {"slice", "slices"},
     "drifts": [{"entity", "name", "kind", "severity", "details": {field: {"source", "target"}},
                 "where": loss point or null, "held": reason or null,
                 "thing", "group" (memberships only),
                 "finishes_at" (where "type_deletion_pending" only: epoch seconds),
                 "refused" (where "not_registrable" only: AWS's reason)}]}

Version "2" adds the three-way audit (``reconcile.explain``): ``explained`` says whether the
state table was read; if so each drift's ``where`` says which hop lost it and
``where_summary`` / ``fixes`` count and explain the classes (both empty objects otherwise).
``where`` is null in unexplained reports. ``held`` (a reconcile with ``--failback``,
``reconcile.failback``) says why a drift is not repaired: the target changed the entity but the
change never reached the state table; ``held`` at the top counts them (an optional addition to
version "2": readers that ignore it see a drift as before), as are the loss point
``type_deletion_pending`` and its drifts' ``finishes_at``, and the loss point
``not_registrable`` and its drifts' ``refused``, and ``sweep``: the slice of the per-device
links compared (``reconcile.sweep``; absent or 1 slice: every link; ``counts`` of a swept kind
count the slice). ``load_json`` reads versions "1" and "2".

A shard report (``jobs.shard``, read back by the merge, which plans from it) also gives each
drift the merge repairs the ``rows`` it was found in (``reconcile.drift.RepairRows``:
``source``, ``destination``), another optional addition. The reports people and tools read
never carry them: they hold the source's whole state, not a difference.

One idiom for the dataclasses in and out of JSON: a pydantic ``TypeAdapter`` over
``DriftReport`` (as ``reconcile.plan.Plan``); the contract's own shape (nested fingerprints,
derived counts) is arranged around it here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline.errors import PermanentError
from pipeline.model import EntityKind
from reconcile.drift import Drift, DriftReport
from reconcile.explain import FIXES
from reconcile.reportformats import (
    TABLE_LIMIT,
    iso,
    render_html,
    render_markdown,
    render_table,
    visible,
)

SCHEMA_VERSION = "2"
READABLE_VERSIONS = ("1", "2")
FORMATS = ("table", "json", "markdown", "html")

_REPORT: TypeAdapter[DriftReport] = TypeAdapter(DriftReport)
# A drift's keys in the contract, in order; then ``thing`` and ``group`` for memberships only.
_DRIFT_KEYS = ("entity", "name", "kind", "severity", "details", "where", "held")


class ReportFormatError(PermanentError):
    """A JSON report that does not follow the contract (or an unknown output format)."""


def to_json(report: DriftReport, *, rows: bool = False) -> dict[str, Any]:
    """The report as a JSON-ready dict following the contract above; with ``rows``, a shard
    report (each drift's rows to repair from included)."""
    exclude = None if rows else {"drifts": {"__all__": {"rows"}}}
    drifts = _REPORT.dump_python(report, mode="json", include={"drifts"}, exclude=exclude)["drifts"]
    return {
        "schema_version": SCHEMA_VERSION,
        "source_region": report.source_region,
        "target_region": report.target_region,
        "generated_at": iso(report.generated_at_ms),
        "generated_at_ms": report.generated_at_ms,
        "fingerprints": {
            "source": report.source_fingerprint,
            "target": report.target_fingerprint,
        },
        "in_sync": report.in_sync,
        "counts": dict(report.counts),
        "summary": report.summary(),
        "explained": report.explained,
        "where_summary": report.where_summary() if report.explained else {},
        "fixes": dict(FIXES) if report.explained else {},
        "held": len(report.held),
        "sweep": {"slice": report.sweep.slice, "slices": report.sweep.slices},
        "drifts": [_drift_json(drift) for drift in drifts],
    }


def _drift_json(drift: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: drift[key] for key in _DRIFT_KEYS}
    if drift["entity"] == EntityKind.MEMBERSHIP.value:
        out["thing"] = drift["thing"]
        out["group"] = drift["group"]
    if drift.get("finishes_at") is not None:  # a pending type deletion's (reconcile.explain)
        out["finishes_at"] = drift["finishes_at"]
    if drift.get("refused") is not None:  # a certificate AWS refused (reconcile.explain)
        out["refused"] = drift["refused"]
    if drift.get("rows") is not None:  # a shard report's (excluded otherwise)
        out["rows"] = drift["rows"]
    return out


def load_json(document: Mapping[str, Any]) -> DriftReport:
    """A ``DriftReport`` from ``to_json`` output (e.g. read back from a file)."""
    versions = " or ".join(READABLE_VERSIONS)
    version = document.get("schema_version") if isinstance(document, Mapping) else None
    if version not in READABLE_VERSIONS:
        raise ReportFormatError(f"not a schema {versions} drift report: version {version!r}")
    fingerprints = document.get("fingerprints")
    if not isinstance(fingerprints, Mapping):
        raise ReportFormatError(f"not a schema {versions} drift report: no fingerprints")
    try:
        report = _REPORT.validate_python(
            {
                "source_region": document.get("source_region"),
                "target_region": document.get("target_region"),
                "source_fingerprint": fingerprints.get("source"),
                "target_fingerprint": fingerprints.get("target"),
                "generated_at_ms": document.get("generated_at_ms"),
                "drifts": document.get("drifts"),
                "counts": document.get("counts", {}),
                "explained": document.get("explained", False),
                "sweep": document.get("sweep", {}),
            }
        )
    except ValidationError as error:
        raise ReportFormatError(f"not a schema {versions} drift report: {error}") from error
    return dataclasses.replace(report, drifts=tuple(sorted(report.drifts, key=Drift.sort_key)))


def json_text(data: Any, **options: Any) -> str:
    """``data`` as JSON, non-ASCII text kept as is but what is not printable escaped
    (``reportformats.visible``): the same values, read back, and nothing that acts on a terminal
    or reverses text when the file is viewed. ``json.dumps`` escapes the C0 controls in strings
    itself, so a raw newline left is the layout's."""
    return visible(json.dumps(data, ensure_ascii=False, **options), keep="\n")


def render(report: DriftReport, fmt: str, *, limit: int | None = None) -> str:
    """The report as text in ``fmt`` (one of ``FORMATS``).

    ``limit`` caps the drifts listed: the console table shows ``TABLE_LIMIT`` unless told;
    Markdown and HTML list all unless told; JSON always lists all.
    """
    if fmt == "json":
        return json_text(to_json(report), indent=2) + "\n"
    if fmt == "table":
        return render_table(report, TABLE_LIMIT if limit is None else limit)
    if fmt == "markdown":
        return render_markdown(report, limit)
    if fmt == "html":
        return render_html(report, limit)
    raise ReportFormatError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")

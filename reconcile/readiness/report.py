"""The readiness report: its JSON contract and its formats for people (pure, no I/O).

JSON, ``schema_version`` "1"::

    {"schema_version": "1", "source_region", "target_region",
     "generated_at": ISO-8601 UTC with ms, "generated_at_ms": epoch ms, "ready": bool,
     "summary": {"devices", "ready", "not_ready", "checks", "checks_failed"},
     "devices": [{"thing", "certificate", "ready", "reasons": [str],
                  "actions": [{"action", "resource", "source", "destination"}]}],
     "checks": [{"check", "ok", "level", "region", "detail", "fix"}],
     "skipped": [str], "calls": {region: {operation: count}}}

``ready`` is true when every device is ready and no check failed with level ``error``. An
action's ``source``/``destination`` is TestAuthorization's ``authDecision`` there (``ALLOWED``,
``EXPLICIT_DENY``, ``IMPLICIT_DENY``), ``null`` where it could not be asked (no certificate).
Table, Markdown and HTML show the same, not-ready devices and failed checks first; what is not
printable is shown escaped in every format, as in the drift report (``reportformats.visible``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconcile.readiness.checks import Check
from reconcile.readiness.devices import ActionVerdict, Verdict
from reconcile.report import json_text
from reconcile.reportformats import (
    CSS,
    TABLE_LIMIT,
    aligned,
    html_table,
    iso,
    md_cell,
    md_table,
    visible,
)

SCHEMA_VERSION = "1"
_CERTIFICATE_WIDTH = 12  # a certificate id's first characters, as the drift report's fingerprints


@dataclass(frozen=True)
class ReadinessReport:
    source_region: str
    target_region: str
    generated_at_ms: int
    devices: tuple[Verdict, ...]
    checks: tuple[Check, ...]
    skipped: tuple[str, ...] = ()
    calls: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def not_ready(self) -> tuple[Verdict, ...]:
        return tuple(d for d in self.devices if not d.ready)

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def ready(self) -> bool:
        return not self.not_ready and not any(c.blocks for c in self.checks)


def to_json(report: ReadinessReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "source_region": report.source_region,
        "target_region": report.target_region,
        "generated_at": iso(report.generated_at_ms),
        "generated_at_ms": report.generated_at_ms,
        "ready": report.ready,
        "summary": {
            "devices": len(report.devices),
            "ready": len(report.devices) - len(report.not_ready),
            "not_ready": len(report.not_ready),
            "checks": len(report.checks),
            "checks_failed": len(report.failed_checks),
        },
        "devices": [
            {
                "thing": d.thing,
                "certificate": d.certificate_id,
                "ready": d.ready,
                "reasons": list(d.reasons),
                "actions": [
                    {
                        "action": a.question.action_type,
                        "resource": a.question.resource,
                        "source": a.source,
                        "destination": a.destination,
                    }
                    for a in d.actions
                ],
            }
            for d in report.devices
        ],
        "checks": [
            {
                "check": c.check,
                "ok": c.ok,
                "level": c.level,
                "region": c.region,
                "detail": c.detail,
                "fix": c.fix,
            }
            for c in report.checks
        ],
        "skipped": list(report.skipped),
        "calls": {region: dict(counts) for region, counts in report.calls.items()},
    }


def render(report: ReadinessReport, fmt: str, *, limit: int | None = None) -> str:
    """The report in ``fmt`` (one of ``reconcile.report.FORMATS``, the drift report's); the table lists ``TABLE_LIMIT`` devices
    unless told, the other formats every one."""
    if fmt == "json":
        return json_text(to_json(report), indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(report, limit)
    if fmt == "html":
        return _html(report, limit)
    return _table(report, TABLE_LIMIT if limit is None else limit)


# --- what every format shows ---------------------------------------------------------------------


def headline(report: ReadinessReport) -> str:
    devices = len(report.devices)
    ready = devices - len(report.not_ready)
    blocking = sum(c.blocks for c in report.checks)
    state = "ready" if report.ready else "NOT READY"
    return (
        f"{report.source_region} → {report.target_region}: {state}: {ready} of {devices} "
        f"device(s) ready; {blocking} of {len(report.checks)} account check(s) failed"
    )


_DEVICE_HEADER = ["thing", "certificate", "ready", "actions (source → destination)"]
_CHECK_HEADER = ["check", "region", "result", "detail", "fix"]


def _ordered(report: ReadinessReport, limit: int | None) -> tuple[list[Verdict], int]:
    devices = [*report.not_ready, *(d for d in report.devices if d.ready)]
    shown = devices if limit is None else devices[:limit]
    return shown, len(devices) - len(shown)


def _decision(decision: str | None) -> str:
    return decision or "not asked"


def _actions(actions: tuple[ActionVerdict, ...]) -> str:
    return "; ".join(
        f"{a.question}: {_decision(a.source)} → {_decision(a.destination)}" for a in actions
    )


def _device_rows(devices: list[Verdict]) -> list[list[str]]:
    return [
        [
            d.thing,
            d.certificate_id[:_CERTIFICATE_WIDTH],
            "yes" if d.ready else "NO",
            _actions(d.actions),
        ]
        for d in devices
    ]


def _result(check: Check) -> str:
    return "ok" if check.ok else "FAIL" if check.level == "error" else "warning"


def _check_table(report: ReadinessReport) -> tuple[list[str], list[list[str]]]:
    """The account checks' header and rows, failures first; the fix column only when a check
    has a fix (a column of empty cells says nothing)."""
    checks = [*report.failed_checks, *(c for c in report.checks if c.ok)]
    rows = [[c.check, c.region, _result(c), c.detail, c.fix] for c in checks]
    if any(c.fix for c in checks):
        return _CHECK_HEADER, rows
    return _CHECK_HEADER[:-1], [row[:-1] for row in rows]


def _reasons(device: Verdict) -> list[str]:
    return [
        f"{device.thing} ({device.certificate_id[:_CERTIFICATE_WIDTH]}): {r}"
        for r in device.reasons
    ]


# --- formats -------------------------------------------------------------------------------------


def _table(report: ReadinessReport, limit: int) -> str:
    shown, rest = _ordered(report, limit)
    lines = [headline(report), ""]
    if shown:
        rows = [[visible(cell) for cell in row] for row in _device_rows(shown)]
        lines += aligned(_DEVICE_HEADER, rows, numeric=set())
        if rest:
            lines.append(f"… and {rest} more (use --format json)")
    else:
        lines.append("no devices checked")
    for device in report.not_ready:
        if device in shown:
            lines += ["", f"{device.thing} is not ready in {report.target_region}:"]
            lines += [f"  - {visible(reason)}" for reason in device.reasons]
    header, rows = _check_table(report)
    checks = [[visible(cell) for cell in row] for row in rows]
    lines += ["", *aligned(header, checks, numeric=set())]
    if report.skipped:
        skipped = "; ".join(visible(s) for s in report.skipped)
        lines += ["", f"skipped ({len(report.skipped)}): {skipped}"]
    return "\n".join(lines) + "\n"


def _markdown(report: ReadinessReport, limit: int | None) -> str:
    shown, rest = _ordered(report, limit)
    lines = [
        f"# Readiness: {md_cell(headline(report))}",
        "",
        f"Generated {iso(report.generated_at_ms)}. A device is ready when every action allowed in "
        f"{report.source_region} is allowed in {report.target_region} (TestAuthorization).",
        "",
        "## Devices",
        "",
        *(md_table(_DEVICE_HEADER, _device_rows(shown)) if shown else ["No devices checked."]),
    ]
    if rest:
        lines += ["", f"…and {rest} more."]
    reasons = [r for d in report.not_ready if d in shown for r in _reasons(d)]
    if reasons:
        lines += ["", "## What to fix", "", *(f"- {md_cell(r)}" for r in reasons)]
    lines += ["", "## Account checks", "", *md_table(*_check_table(report))]
    if report.skipped:
        lines += ["", "## Skipped", "", *(f"- {md_cell(s)}" for s in report.skipped)]
    return "\n".join(lines) + "\n"


_READINESS_CSS = "td.NO,td.FAIL{color:#b00020;font-weight:bold} td.warning{color:#a66a00}"


def _html(report: ReadinessReport, limit: int | None) -> str:
    def e(text: str) -> str:
        return html.escape(visible(text))

    shown, rest = _ordered(report, limit)
    title = e(f"Readiness: {headline(report)}")
    device_rows = _device_rows(shown)
    check_header, check_rows = _check_table(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{CSS}{_READINESS_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Generated {e(iso(report.generated_at_ms))}. A device is ready when every action "
        f"allowed in {e(report.source_region)} is allowed in {e(report.target_region)} "
        "(TestAuthorization).</p>",
        "<h2>Devices</h2>",
        _classed(html_table(_DEVICE_HEADER, device_rows, ["name", "k", "k", "details"]))
        if device_rows
        else "<p>No devices checked.</p>",
    ]
    if rest:
        parts.append(f"<p>…and {rest} more.</p>")
    reasons = [r for d in report.not_ready if d in shown for r in _reasons(d)]
    if reasons:
        parts.append("<h2>What to fix</h2>")
        parts.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in reasons) + "</ul>")
    parts.append("<h2>Account checks</h2>")
    parts.append(
        _classed(
            html_table(
                check_header, check_rows, ["", "k", "k", "details", "details"][: len(check_header)]
            )
        )
    )
    if report.skipped:
        parts.append("<h2>Skipped</h2>")
        parts.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in report.skipped) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _classed(table: str) -> str:
    """Marks the cells that say NO, FAIL or warning (CSS above)."""
    for word in ("NO", "FAIL", "warning"):
        table = table.replace(f'<td class="k">{word}</td>', f'<td class="k {word}">{word}</td>')
    return table

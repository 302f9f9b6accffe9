"""The drift report for people: console table, Markdown and HTML (``reconcile.report.render``).

Pure functions over a ``DriftReport``, no I/O. Every format lists drifts by root cause
(``reconcile.rootcause``), each cause with where it was lost when the three-way audit explained
it (``reconcile.explain``; the loss points are counted in their own table), a failback's held
drifts first. Values read as people read them (``shown``). Registry text is shown through
``visible``: a character that would act on the viewer instead of showing itself is written as
its escape.
"""

from __future__ import annotations

import html
import json
import textwrap
from datetime import UTC, datetime
from typing import Any

from pipeline.kinds import KINDS
from pipeline.kinds.links import split_link, split_target
from pipeline.model import EntityKind
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER, LOSS_POINTS, Drift, DriftReport
from reconcile.explain import FIXES
from reconcile.rootcause import Cause, by_root_cause

TABLE_LIMIT = 50  # drifts shown on the console unless told otherwise
_VALUE_WIDTH = 60
_CONTEXT = 12  # characters kept before the first difference of two long values


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds (``2023-11-14T22:13:20.123Z``)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def visible(text: str, keep: str = "") -> str:
    """``text`` with each character that is not printable (``str.isprintable``: controls, format
    characters, separators other than the space, unassigned and private ones) but those in
    ``keep`` written as its JSON escape (``\\u202e``; a surrogate pair above U+FFFF), so the
    result is also valid inside a JSON string. Why: U+009B is a terminal's CSI (as ``ESC [``),
    U+202E reverses the text after it ("Trojan Source", CVE-2021-42574); in a report they would
    act on whoever reads it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # a UTF-16 surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


UNSET = "unset"  # a field with no value, as people read it


def shown(value: Any, json_text: bool = False) -> str:
    """A registry value as people read it: text and numbers as JSON writes them (``"2.1.0"``,
    ``3``: quotes tell the string "3" from the number), a flag as ``yes``/``no`` and no value
    as ``unset``, never ``True``/``False``/``None`` or ``true``/``false``/``null``. A value that
    is JSON text (``json_text``: a shadow's sections) shows as that JSON, not quoted again. The
    JSON report keeps the values themselves."""
    if value is None:
        return UNSET
    if json_text and isinstance(value, str):
        return visible(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return visible(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


_JSON_TEXT = frozenset(
    (kind.spec.kind.value, column.name)
    for kind in KINDS.values()
    for column in kind.columns
    if column.json_text
)


def is_json_text(entity: EntityKind | str, field: str) -> bool:
    """Whether a drift's ``field`` of ``entity`` holds JSON text (``Column.json_text``)."""
    return (EntityKind(entity).value, field) in _JSON_TEXT


def unset(value: Any, json_text: bool = False) -> bool:
    """Whether a field's value is no value, an empty map or an empty list (as JSON text too)."""
    read = json.loads(value) if json_text and isinstance(value, str) else value
    return read in (None, {}, [])


def _value(value: Any, json_text: bool) -> str:
    text = shown(value, json_text)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _differing(source: Any, target: Any, json_text: bool) -> tuple[str, str]:
    """Two values as they differ: cut to the same window around their first difference, so
    two long values never show as identical-looking prefixes (JSON holds them whole)."""
    texts = shown(source, json_text), shown(target, json_text)
    if max(map(len, texts)) <= _VALUE_WIDTH:
        return texts
    pairs = enumerate(zip(*texts, strict=False))
    same = next((i for i, (a, b) in pairs if a != b), min(map(len, texts)))
    start = 0 if same < _VALUE_WIDTH - _CONTEXT else same - _CONTEXT
    width = _VALUE_WIDTH - 2  # room for the two ellipses

    def window(text: str) -> str:
        cut = text[start : start + width]
        return ("…" if start else "") + cut + ("…" if start + width < len(text) else "")

    return window(texts[0]), window(texts[1])


def _explain(drift: Drift) -> str:
    """One line: ``field: source → target`` per detail (a missing/extra entity: its fields)."""
    parts = []
    for field, values in drift.details.items():
        json_text = is_json_text(drift.entity, field)
        if drift.kind in ("missing", "extra"):
            value = values.get("source" if drift.kind == "missing" else "target")
            if not unset(value, json_text):  # unset fields say nothing about the entity
                parts.append(f"{field}={_value(value, json_text)}")
        else:
            source, target = values.get("source"), values.get("target")
            source, target = _differing(source, target, json_text)
            parts.append(f"{field}: {source} → {target}")
    if drift.finishes_at is not None:
        parts.append(f"deletion pending: due {iso(drift.finishes_at * 1000)}")
    if drift.refused is not None:
        parts.append(drift.refused)
    return "; ".join(parts)


def _summary_rows(report: DriftReport) -> list[list[str]]:
    summary = report.summary()
    rows = []
    for kind in ENTITY_ORDER:
        counts = summary[kind.value]
        rows.append(
            [kind.value, str(report.counts.get(kind.value, 0))]
            + [str(counts[k]) for k in DRIFT_KINDS]
        )
    return rows


_SUMMARY_HEADER = ["entity", "compared", *DRIFT_KINDS]


def _drift_header(explained: bool) -> list[str]:
    """The drift table's columns: where each root cause was lost when the audit explained it."""
    where = ["where"] if explained else []
    return ["severity", "entity", "kind", *where, "name", "details"]


_EXAMPLES = 3  # dependents named in a root cause's summary row


def _cause_rows(causes: list[Cause], explained: bool) -> list[list[str]]:
    """A row per root cause, then a ``↳`` row per kind of drift it explains (its dependents are
    counted, the first few named; JSON lists every one)."""
    rows = []
    for cause in causes:
        d = cause.drift
        where = [_where(d)] if explained else []
        rows.append([d.severity, d.entity.value, d.kind, *where, d.name, _explain(d)])
        for phrase, entity in zip(cause.consequences(), _dependent_kinds(cause), strict=True):
            names = [_short_name(cause, x) for x in cause.dependents_of(entity)]
            shown = ", ".join(names[:_EXAMPLES]) + (", …" if len(names) > _EXAMPLES else "")
            count, _, rest = phrase.partition(" of ")
            rows.append(["", "", "", *[""] * len(where), f"↳ {count}", f"of {rest}: {shown}"])
    return rows


def _where(drift: Drift) -> str:
    return drift.where or "unexplained"


def _short_name(cause: Cause, dependent: Drift) -> str:
    """A dependent's name without what the phrase already says (a missing group's members are
    listed by thing, a missing certificate's attachments by thing or policy)."""
    if dependent.entity is EntityKind.MEMBERSHIP:
        if cause.drift.entity is EntityKind.THING_GROUP and dependent.thing:
            return dependent.thing
        if cause.drift.entity is EntityKind.THING and dependent.group:
            return dependent.group
    if dependent.entity in (EntityKind.THING_PRINCIPAL, EntityKind.POLICY_TARGET):
        # ``<thing>#<certificate id>``, ``<policy>#cert/<id>``: the half that is not the cause
        first, second = split_link(dependent.name)
        if first == cause.drift.name:
            return second
        if cause.drift.name in (second, split_target(second)[1]):
            return first
    return dependent.name


def _dependent_kinds(cause: Cause) -> list[EntityKind]:
    kinds = {d.entity for d in cause.dependents}
    return [k for k in ENTITY_ORDER if k in kinds]


Section = tuple[str | None, list[Cause]]


def _sections(report: DriftReport, limit: int | None) -> tuple[list[Section], int]:
    """The root causes to list (a ``None`` title: the one list of root causes), a failback's
    held drifts first in their own section; at most ``limit`` root causes in all, and how many
    drift items the ones left out explain.

    Causes are found across loss points: a group lost after the table explains its memberships
    wherever those were lost (each drift's own loss point is in the JSON)."""
    held = report.held
    groups: list[tuple[str | None, tuple[Drift, ...]]] = []
    if held:
        # A failback reconcile's held drifts first: they wait for the operator's decision.
        why = f"held ({len(held)}): {held[0].held}; not repaired (--overwrite to repair)"
        groups.append((why, held))
    others = tuple(d for d in report.drifts if not d.held)
    groups.append((f"not held ({len(others)})" if held else None, others))
    sections: list[Section] = []
    budget, rest = limit, 0
    for title, drifts in groups:
        causes = by_root_cause(drifts)
        shown = causes if budget is None else causes[: max(budget, 0)]
        rest += sum(c.explains for c in causes[len(shown) :])
        if budget is not None:
            budget -= len(shown)
        if shown:
            sections.append((title, shown))
    return sections, rest


_WHERE_HEADER = ["where", "drifts", "what to check"]


def _where_rows(report: DriftReport) -> list[list[str]]:
    counts = report.where_summary()
    return [[where, str(counts[where]), FIXES[where]] for where in LOSS_POINTS]


def _headline(report: DriftReport) -> str:
    if report.in_sync:
        state = "in sync"
    else:
        causes = len(by_root_cause(report.drifts))
        state = f"{len(report.drifts)} drift(s)"
        if causes < len(report.drifts):
            state += f" from {causes} root cause(s)"
    state += "" if report.sweep.whole else f"; {report.sweep}"  # what swept kinds' counts cover
    return f"{report.source_region} → {report.target_region}: {state}"


def aligned(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


TERMINAL_WIDTH = 100  # prose in the console table (advice, section titles) wraps to this


def _wrapped_last(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """``rows`` with their last cell wrapped (continuation rows below it, other cells empty) so
    the aligned table fits ``TERMINAL_WIDTH`` columns."""
    fixed = sum(max(len(r[i]) for r in [header, *rows]) + 2 for i in range(len(header) - 1))
    room = max(TERMINAL_WIDTH - fixed, 20)
    wrapped = []
    for *cells, last in rows:
        first, *more = textwrap.wrap(last, room, break_on_hyphens=False) or [""]
        wrapped.append([*cells, first])
        wrapped += [[""] * len(cells) + [line] for line in more]
    return wrapped


def render_table(report: DriftReport, limit: int) -> str:
    lines = [_headline(report), ""]
    lines += aligned(_SUMMARY_HEADER, _summary_rows(report), numeric={1, 2, 3, 4})
    if report.explained and report.drifts:
        where = _wrapped_last(_WHERE_HEADER, _where_rows(report))
        lines += ["", *aligned(_WHERE_HEADER, where, numeric={1})]
    if report.drifts:
        sections, rest = _sections(report, limit)
        for title, causes in sections:
            shown = (
                textwrap.wrap(
                    visible(title), TERMINAL_WIDTH, subsequent_indent="  ", break_on_hyphens=False
                )
                if title
                else []
            )
            lines += ["", *shown]
            rows = _cause_rows(causes, report.explained)
            lines += aligned(_drift_header(report.explained), rows, numeric=set())
        if rest:
            lines.append(f"… and {rest} more (use --format json)")
    return "\n".join(lines) + "\n"


# Characters a registry value could use to become Markdown syntax: a link or a remote image
# (``![x](https://...)``, fetched by whoever views the report), or a table cell boundary.
_MD_ESCAPED = str.maketrans({c: "\\" + c for c in "\\|[]()!"})


def md_cell(text: str) -> str:
    # Markdown renderers pass inline HTML through, so '<' and '&' are escaped as entities.
    escaped = visible(text).translate(_MD_ESCAPED)
    return (
        escaped.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows),
    ]


def render_markdown(report: DriftReport, limit: int | None) -> str:
    sections, rest = _sections(report, limit)
    lines = [
        f"# Drift report: {md_cell(_headline(report))}",
        "",
        f"Generated {iso(report.generated_at_ms)}; source snapshot "
        f"`{report.source_fingerprint[:12]}`, target snapshot `{report.target_fingerprint[:12]}`.",
        "",
        "## Summary",
        "",
        *md_table(_SUMMARY_HEADER, _summary_rows(report)),
    ]
    if report.explained and report.drifts:
        lines += [
            "",
            "## Where the drift was lost",
            "",
            *md_table(_WHERE_HEADER, _where_rows(report)),
        ]
    if sections:
        lines += ["", "## Drifts by root cause"]
        for title, causes in sections:
            lines += [""] + ([f"### {md_cell(title)}", ""] if title else [])
            lines += md_table(
                _drift_header(report.explained), _cause_rows(causes, report.explained)
            )
        if rest:
            lines += ["", f"…and {rest} more."]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
table{border-collapse:collapse;margin:1em 0;max-width:100%}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
td.k{white-space:nowrap} td.details{font-family:ui-monospace,monospace;font-size:.85em}
td.name,td.details{overflow-wrap:anywhere}
tr.dependent td{border-top:none;color:#444} summary{cursor:pointer}
p.names{font-family:ui-monospace,monospace;font-size:.85em;margin:.4em 0 0}
th{background:#f3f3f3} td.n{text-align:right}
.high{color:#b00020;font-weight:bold} .medium{color:#a66a00} .low{color:#555}
code{font-size:.9em}
"""


def _e(text: str) -> str:
    return html.escape(visible(text))


def html_table(header: list[str], rows: list[list[str]], classes: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{cls}">{_e(cell)}</td>' if cls else f"<td>{_e(cell)}</td>"
            for cell, cls in zip(row, classes, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_causes(causes: list[Cause], explained: bool) -> str:
    """The drift table; a root cause's dependents fold into one row each kind, every name in a
    ``<details>`` (closed: 174 names would push the other causes off the page)."""
    e = _e
    header = _drift_header(explained)
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = []
    for cause in causes:
        d = cause.drift
        where = f'<td class="k">{e(_where(d))}</td>' if explained else ""
        body.append(
            f'<tr><td class="k {e(d.severity)}">{e(d.severity)}</td>'
            f'<td class="k">{e(d.entity.value)}</td><td class="k">{e(d.kind)}</td>{where}'
            f'<td class="name">{e(d.name)}</td>'
            f'<td class="details">{e(_explain(d))}</td></tr>'
        )
        for phrase, entity in zip(cause.consequences(), _dependent_kinds(cause), strict=True):
            names = ", ".join(_short_name(cause, x) for x in cause.dependents_of(entity))
            body.append(
                f'<tr class="dependent"><td></td><td colspan="{len(header) - 1}"><details>'
                f"<summary>↳ {e(phrase)}</summary>"
                f'<p class="names">{e(names)}</p></details></td></tr>'
            )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: DriftReport, limit: int | None) -> str:
    sections, rest = _sections(report, limit)
    title = _e(f"Drift report: {_headline(report)}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Generated {html.escape(iso(report.generated_at_ms))}; source snapshot "
        f"<code>{html.escape(report.source_fingerprint[:12])}</code>, target snapshot "
        f"<code>{html.escape(report.target_fingerprint[:12])}</code>.</p>",
        "<h2>Summary</h2>",
        html_table(_SUMMARY_HEADER, _summary_rows(report), ["", "n", "n", "n", "n"]),
    ]
    if report.explained and report.drifts:
        parts.append("<h2>Where the drift was lost</h2>")
        parts.append(html_table(_WHERE_HEADER, _where_rows(report), ["", "n", ""]))
    if sections:
        parts.append("<h2>Drifts by root cause</h2>")
        for heading, causes in sections:
            if heading:
                parts.append(f"<h3>{_e(heading)}</h3>")
            parts.append(_html_causes(causes, report.explained))
        if rest:
            parts.append(f"<p>…and {rest} more.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

"""Report rendering: the JSON contract and its round trip, table, Markdown, HTML (no network)."""

from __future__ import annotations

import dataclasses
import html
import json
from html.parser import HTMLParser

import mistune
import pytest

from reconcile.diff import diff_snapshots
from reconcile.drift import LOSS_POINTS, DriftReport, LossPoint
from reconcile.report import (
    SCHEMA_VERSION,
    ReportFormatError,
    load_json,
    render,
    to_json,
)
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
NOW = 1_700_000_000_123
EVIL = "<script>alert('x')</script> & co"


def sample_report() -> DriftReport:
    source = Snapshot.from_records(
        SRC,
        1,
        things=[
            {"name": "t1", "attributes": {"colour": "red"}, "thing_type": "sensor"},
            {"name": "t2"},
        ],
        thing_types=[{"name": "sensor", "description": EVIL}],
        thing_groups=[{"name": "g"}],
        memberships=[{"thing": "t1", "group": "g"}],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[
            {"name": "t1", "attributes": {"colour": "blue|green"}, "thing_type": "sensor"},
            {"name": "t3"},
        ],
        thing_types=[{"name": "sensor", "description": "plain"}],
        thing_groups=[{"name": "g"}],
    )
    return diff_snapshots(source, target, clock=lambda: NOW)


def test_json_follows_the_contract() -> None:
    document = to_json(sample_report())

    assert document["schema_version"] == SCHEMA_VERSION == "2"
    assert document["explained"] is False
    assert document["where_summary"] == document["fixes"] == {}
    assert document["held"] == 0
    assert document["source_region"] == SRC
    assert document["target_region"] == DST
    assert document["generated_at"] == "2023-11-14T22:13:20.123Z"
    assert set(document["fingerprints"]) == {"source", "target"}
    assert document["summary"]["thing"] == {"missing": 1, "extra": 1, "changed": 1}
    assert document["summary"]["billing_group"] == {"missing": 0, "extra": 0, "changed": 0}
    assert set(document["summary"]) == {
        "thing",
        "thing_type",
        "thing_group",
        "billing_group",
        "membership",
        "certificate",
        "policy",
        "thing_principal",
        "policy_target",
        "role_alias",
        "authorizer",
        "provisioning_template",
        "ca_certificate",
        "shadow",
        "retained_message",
    }
    by_name = {d["name"]: d for d in document["drifts"]}
    assert by_name["t1"] == {
        "entity": "thing",
        "name": "t1",
        "kind": "changed",
        "severity": "medium",
        "details": {"attributes.colour": {"source": "red", "target": "blue|green"}},
        "where": None,
        "held": None,
    }
    assert by_name["t1#g"] == {
        "entity": "membership",
        "name": "t1#g",
        "kind": "missing",
        "severity": "high",
        "details": {},
        "where": None,
        "held": None,
        "thing": "t1",
        "group": "g",
    }
    # plain JSON all the way down
    assert json.loads(json.dumps(document)) == document


def test_json_round_trips() -> None:
    report = sample_report()
    assert load_json(json.loads(render(report, "json"))) == report
    explained = explained_report()
    assert load_json(json.loads(render(explained, "json"))) == explained


def test_schema_1_reports_still_load() -> None:
    document = to_json(sample_report())
    old = {k: v for k, v in document.items() if k not in ("explained", "where_summary", "fixes")}
    old["schema_version"] = "1"
    old["drifts"] = [{k: v for k, v in d.items() if k != "where"} for d in document["drifts"]]
    assert load_json(old) == sample_report()


def explained_report() -> DriftReport:
    """The sample with each drift given a loss point, as the three-way audit would."""
    report = sample_report()
    cycle: list[LossPoint] = ["lost_before_table", "lost_after_table", "table_only"]
    drifts = tuple(dataclasses.replace(d, where=cycle[i % 3]) for i, d in enumerate(report.drifts))
    return dataclasses.replace(report, drifts=drifts, explained=True)


def test_explained_json_counts_classes_and_names_their_fixes() -> None:
    document = to_json(explained_report())
    assert document["explained"] is True
    assert document["where_summary"] == {
        "lost_before_table": 2,
        "lost_after_table": 2,
        "table_only": 1,
        "type_deletion_pending": 0,
        "not_registrable": 0,
    }
    assert set(document["fixes"]) == set(LOSS_POINTS)
    assert "failure queue" in document["fixes"]["lost_after_table"]
    assert [d["where"] for d in document["drifts"]][:3] == [
        "lost_before_table",
        "lost_after_table",
        "table_only",
    ]


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_human_formats_count_drifts_by_where_they_were_lost(fmt: str) -> None:
    text = render(explained_report(), fmt).replace("\\", "")  # Markdown escapes ( )
    text = " ".join(text.split())  # the console table wraps its prose
    before, after, only = (text.index(point) for point in LOSS_POINTS[:3])
    assert before < after < only
    assert "registry events are enabled" in text
    assert "failure queue" in text
    # unexplained reports say nothing of loss points
    assert "lost_before_table" not in render(sample_report(), fmt)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"schema_version": "3"},
        {**to_json(sample_report()), "schema_version": "3"},
        {
            **to_json(sample_report()),
            "drifts": [{**to_json(sample_report())["drifts"][0], "where": "lost"}],
        },
        {**to_json(sample_report()), "drifts": [{"entity": "widget", "name": "x"}]},
    ],
)
def test_load_json_refuses_other_documents(broken: dict[str, object]) -> None:
    with pytest.raises(ReportFormatError):
        load_json(broken)


def test_table_aligns_and_limits() -> None:
    text = render(sample_report(), "table", limit=2)
    lines = text.splitlines()
    assert lines[0] == f"{SRC} → {DST}: 5 drift(s)"
    summary = lines[2:9]
    assert summary[0].split() == ["entity", "compared", "missing", "extra", "changed"]
    # right-aligned numbers: every summary row ends in the same column
    assert len({len(line) for line in summary}) == 1
    assert "… and 3 more" in text
    assert render(sample_report(), "table").count("\n") > text.count("\n")


def test_in_sync_table() -> None:
    empty = diff_snapshots(Snapshot.from_records(SRC, 1), Snapshot.from_records(DST, 1))
    text = render(empty, "table")
    assert text.startswith(f"{SRC} → {DST}: in sync")
    assert "severity" not in text


def test_markdown_has_tables_and_escapes_pipes() -> None:
    text = render(sample_report(), "markdown")
    assert "| entity | compared | missing | extra | changed |" in text
    assert "| thing | 2 | 1 | 1 | 1 |" in text
    assert "blue\\|green" in text
    assert "&lt;script&gt;" in text  # Markdown viewers would render inline HTML
    assert "<script>" not in text


def test_markdown_values_cannot_become_links_or_remote_images() -> None:
    # GIVEN attribute values written as Markdown: a remote image and a link
    image = "![x](https://evil.example/p.png)"
    link = "[docs](https://evil.example/)"
    source = Snapshot.from_records(SRC, 1, things=[{"name": "t1", "attributes": {"a": image}}])
    target = Snapshot.from_records(DST, 1, things=[{"name": "t1", "attributes": {"a": link}}])
    text = render(diff_snapshots(source, target, clock=lambda: NOW), "markdown")
    # WHEN a Markdown renderer turns the report into HTML
    rendered = mistune.html(text)
    assert isinstance(rendered, str)
    # THEN the values stay text: no image is fetched, no link is made
    assert "<img" not in rendered and "<a " not in rendered
    assert "evil.example/p.png" in rendered


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escaped() -> None:
    text = render(sample_report(), "html")
    parser = _Collector()
    parser.feed(text)

    assert "script" not in parser.tags  # the description did not become markup
    assert "&lt;script&gt;" in text
    assert "&amp; co" in text
    assert any(EVIL in chunk for chunk in parser.text)  # shown as text, intact
    assert parser.tags.count("table") == 2
    assert "<link" not in text and "src=" not in text  # nothing fetched from elsewhere


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ReportFormatError):
        render(sample_report(), "yaml")


def test_drifts_by_root_cause_are_grouped_by_their_cause_across_loss_points() -> None:
    # issue 22 item 14: the section "Drifts by root cause" listed loss classes, each with its
    # own causes, so a group and its memberships lost at different hops were two "causes".
    # GIVEN a missing group (its memberships are missing only because of it) lost after the
    # table, two of its memberships lost before it, and a changed thing
    source = Snapshot.from_records(
        SRC,
        1,
        things=[{"name": n} for n in ("t1", "t2", "t3")]
        + [{"name": "t4", "attributes": {"a": "1"}}],
        thing_groups=[{"name": "floor"}],
        memberships=[{"thing": n, "group": "floor"} for n in ("t1", "t2", "t3")],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[{"name": n} for n in ("t1", "t2", "t3")]
        + [{"name": "t4", "attributes": {"a": "2"}}],
    )
    report = diff_snapshots(source, target, clock=lambda: NOW)
    before = {"t1#floor", "t2#floor"}
    drifts = tuple(
        dataclasses.replace(
            d, where="lost_before_table" if d.name in before else "lost_after_table"
        )
        for d in report.drifts
    )
    explained = dataclasses.replace(report, drifts=drifts, explained=True)

    # WHEN it is rendered, THEN the section lists each cause once with where it was lost, its
    # dependents under it whatever their loss point, and no loss class as a heading
    for fmt in ("table", "markdown", "html"):
        text = render(explained, fmt).replace("\\", "")
        section = text[text.index("by root cause") if fmt != "table" else text.index("severity") :]
        group = section.index("floor")
        assert "lost_after_table" in section[:group]  # the where column, before the name
        assert section.index("3 memberships") > group
        assert section.index("t4", group) > section.index("3 memberships")
        assert "lost_before_table (" not in section and "lost_after_table (" not in section
        assert section.count("lost_before_table") == 0  # its only drifts are the group's
    # a limit counts root causes; the rest is counted in drift items
    limited = render(explained, "table", limit=1)
    assert "t4" not in limited.split("severity")[1]
    assert "… and 1 more" in limited


# U+009B is a terminal's CSI (as ESC [: "\x9b2J" clears the screen of whoever cats the report);
# U+202E reverses the text after it ("Trojan Source", CVE-2021-42574). Registry text (a policy
# document, a description, a name in a saved snapshot) reaches every report format.
CSI, RLO = "\u009b", "\u202e"


def hostile_report() -> DriftReport:
    name = f"gw{RLO}1"
    source = Snapshot.from_records(
        SRC,
        1,
        thing_types=[{"name": "sensor", "description": f"{CSI}2J cleared {RLO}txet"}],
        things=[{"name": name}],
    )
    target = Snapshot.from_records(DST, 1, thing_types=[{"name": "sensor", "description": "x"}])
    return diff_snapshots(source, target, clock=lambda: NOW)


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json"])
def test_no_format_passes_controls_or_bidi_overrides_raw(fmt: str) -> None:
    text = render(hostile_report(), fmt, limit=None if fmt != "table" else 50)
    if fmt == "markdown":  # as a viewer shows it (the Markdown source escapes the backslash)
        rendered = mistune.html(text)
        assert isinstance(rendered, str)
        text = rendered
    # THEN neither character appears raw, and each is shown as its escape
    assert CSI not in text and RLO not in text
    assert "\\u009b2J cleared \\u202etxet" in text
    assert "gw\\u202e1" in text


def test_the_json_report_keeps_the_exact_values() -> None:
    # The JSON report escapes them as JSON does: read back, the values are the registry's.
    text = render(hostile_report(), "json")
    document = json.loads(text)
    names = {d["name"] for d in document["drifts"]}
    assert f"gw{RLO}1" in names
    assert load_json(document).drifts == hostile_report().drifts


# --- long values and narrow terminals (issue 22 item 10) --------------------------------------


def long_value_report() -> DriftReport:
    """Two attribute values 80 characters long that differ only near their end."""
    common = "arn:aws:iot:us-east-1:123456789012:thinggroup/building-north-wing-floor-"
    source = Snapshot.from_records(
        SRC, 1, things=[{"name": "t1", "attributes": {"home": common + "0017-a"}}]
    )
    target = Snapshot.from_records(
        DST, 1, things=[{"name": "t1", "attributes": {"home": common + "0017-b"}}]
    )
    return diff_snapshots(source, target, clock=lambda: NOW)


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_long_values_show_where_they_differ(fmt: str) -> None:
    # GIVEN two long values with a common 78-character prefix
    # WHEN the report is rendered for a person
    text = render(long_value_report(), fmt).replace("\\", "")
    # THEN both sides show the characters that differ, not two identical-looking prefixes
    assert "floor-0017-a" in text
    assert "floor-0017-b" in text


def test_short_values_are_shown_whole() -> None:
    source = Snapshot.from_records(SRC, 1, things=[{"name": "t1", "attributes": {"a": "x1"}}])
    target = Snapshot.from_records(DST, 1, things=[{"name": "t1", "attributes": {"a": "x2"}}])
    text = render(diff_snapshots(source, target, clock=lambda: NOW), "table")
    assert 'attributes.a: "x1" → "x2"' in text


def test_explained_table_fits_a_100_column_terminal() -> None:
    # GIVEN an explained report (the where table's advice is long prose)
    text = render(explained_report(), "table")
    # THEN no line but the drift rows (names and values as they are) is wider than 100
    prose = text.split("severity")[0] + "\n".join(
        line for line in text.splitlines() if line.startswith(LOSS_POINTS)
    )
    assert max(len(line) for line in prose.splitlines()) <= 100
    # and the advice is all there, wrapped
    words = " ".join(text.split())
    assert "(iot-crr enable-events) and the IoT rule's error action / dead-letter queue" in words


# --- shadow sections: JSON text shown as JSON (issue 24) ----------------------------------------


def shadow_report(mode: str = "manual") -> DriftReport:
    """A classic shadow whose desired state differs, and a named one missing."""
    classic = {"name": "gw#~classic", "reported": "{}"}
    source = Snapshot.from_records(
        SRC,
        1,
        shadows=[
            {**classic, "desired": '{"mode":"eco"}'},
            {"name": "gw#config", "desired": '{"uplink":"lte"}', "reported": "{}"},
        ],
    )
    target = Snapshot.from_records(DST, 1, shadows=[{**classic, "desired": f'{{"mode":"{mode}"}}'}])
    return diff_snapshots(source, target, clock=lambda: NOW)


def _as_read(text: str, fmt: str) -> str:
    """A report as its reader sees it: Markdown rendered, HTML's entities resolved."""
    if fmt == "markdown":
        rendered = mistune.html(text)
        assert isinstance(rendered, str)
        text = rendered
    return html.unescape(text) if fmt in ("markdown", "html") else text


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_shadow_sections_show_as_json_not_as_quoted_text(fmt: str) -> None:
    # GIVEN shadow drift, whose sections the state keeps as JSON text
    # WHEN the report is rendered for a person
    text = _as_read(render(shadow_report(), fmt), fmt)
    # THEN the JSON shows itself, not re-escaped inside a JSON string
    assert 'desired: {"mode":"eco"} → {"mode":"manual"}' in text
    assert 'desired={"uplink":"lte"}' in text
    assert '\\"' not in text


def test_long_shadow_sections_are_cut_where_they_differ() -> None:
    # GIVEN a desired state longer than a table cell shows
    long = "x" * 90
    text = render(shadow_report(mode=long), "table")
    # THEN it is cut like any long value, without re-escaping
    assert '{"mode":"eco"} → {"mode":"xxx' in text and "…" in text
    assert '\\"' not in text

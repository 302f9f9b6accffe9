"""The failback guard, pure: a reconcile DR → primary holds the primary's unreplicated changes."""

from __future__ import annotations

from typing import Any

import pytest

from reconcile.diff import diff_snapshots
from reconcile.explain import explain
from reconcile.failback import describe_held, hold_unreplicated, overwrite_rules, repairable
from reconcile.guards import Guards
from reconcile.ignore import IgnorePatternError
from reconcile.planner import build_plan
from reconcile.report import load_json, render, to_json
from reconcile.snapshot import Snapshot

DR, PRIMARY = "eu-west-1", "us-east-1"


def snap(region: str, **things: dict[str, str]) -> Snapshot:
    rows: list[dict[str, Any]] = [
        {"name": name, "thing_type": None, "attributes": attributes}
        for name, attributes in things.items()
    ]
    return Snapshot.from_records(region, 1000, things=rows)


# DR (the source) and the state table agree on everything the DR region did; the primary
# (the target) changed "late" and created "late-new" just before the outage (never in the
# table), and the DR region's "dr-edit" reached the registry but not the table.
SOURCE = snap(DR, shared={"v": "dr"}, late={"v": "0"}, **{"dr-edit": {"v": "dr"}})
TABLE = snap("table", shared={"v": "dr"}, late={"v": "0"}, **{"dr-edit": {"v": "0"}})
TARGET = snap(
    PRIMARY,
    shared={"v": "dr"},
    late={"v": "primary"},
    **{"late-new": {"v": "primary"}, "dr-edit": {"v": "0"}},
)


def audited(overwrite: tuple[str, ...] = ()) -> Any:
    report = diff_snapshots(SOURCE, TARGET)
    report = explain(report, SOURCE, TABLE, TARGET)
    return hold_unreplicated(report, overwrite_rules(overwrite))


def test_the_targets_unreplicated_changes_are_held_and_the_sources_work_is_repaired() -> None:
    report = audited()
    held = {(d.name, d.kind) for d in report.held}
    assert held == {("late", "changed"), ("late-new", "extra")}
    assert all(d.held == "changed in us-east-1 but never replicated" for d in report.held)
    # The DR change that missed the table is the DR region's own work: repaired as usual.
    assert [d.name for d in repairable(report).drifts] == ["dr-edit"]
    plan = build_plan(
        repairable(report), SOURCE, TARGET, Guards(allow_deletes=True), now=SOURCE.taken_at_ms
    )
    assert [(a.op, a.name) for a in plan.actions] == [("upsert", "dr-edit")]


def test_an_overwrite_lets_the_source_win_for_the_entities_it_names() -> None:
    report = audited(("thing:late",))
    assert [d.name for d in report.held] == ["late-new"]
    plan = build_plan(repairable(report), SOURCE, TARGET, Guards(), now=SOURCE.taken_at_ms)
    assert sorted(a.name for a in plan.actions) == ["dr-edit", "late"]


def test_held_drifts_are_listed_with_their_fields_in_every_format() -> None:
    report = audited()
    text = describe_held(report)
    assert "held: 2 (changed in us-east-1 but never replicated; not repaired)" in text
    assert 'held thing        late  attributes.v: "0" → "primary"' in text
    assert "late-new  (created in us-east-1)" in text
    table = render(report, "table")
    assert "held (2): changed in us-east-1 but never replicated" in table
    markdown = render(report, "markdown")
    assert "### held \\(2\\): changed in us-east-1 but never replicated" in markdown
    document = to_json(report)
    assert document["held"] == 2
    assert load_json(document).held == report.held


def test_nothing_is_held_without_the_tables_view() -> None:
    with pytest.raises(ValueError, match="three-way audit"):
        hold_unreplicated(diff_snapshots(SOURCE, TARGET))


def test_an_overwrite_names_whole_entities() -> None:
    with pytest.raises(IgnorePatternError, match="--overwrite"):
        overwrite_rules(["thing:late:attributes.v"])

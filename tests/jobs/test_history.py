"""Drift history over synthetic run indexes (pure pandas, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from jobs import history
from jobs.artefacts import RunRecord, index_frame
from jobs.notebook_data import NoRunsError, choose_run, nonzero
from jobs.notebook_views import bar_chart, repair_time_histogram, table
from reconcile.snapshot import Snapshot

DAY = 86_400_000


def index_of(*runs: tuple[str, bool]) -> pd.DataFrame:
    """Runs a day apart; each ``(run_id, diffed)``."""
    return index_frame(
        [
            RunRecord(
                run_id=run_id,
                prefix=f"runs/{run_id}/",
                status="completed" if diffed else "failed",
                started_at_ms=i * DAY,
                finished_at_ms=i * DAY + 60_000,
                source_region="us-east-1",
                target_region="eu-west-1",
                diffed=diffed,
                drift={"thing.missing": i, "thing.extra": 0, "membership.missing": 1},
                drift_total=i + 1,
                planned=i,
                repairs_emitted=i,
            )
            for i, (run_id, diffed) in enumerate(runs)
        ]
    )


def items_of(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """Drift items ``(run_id, entity, name, kind)``."""
    return pd.DataFrame(
        [
            {
                "run_id": run,
                "entity": entity,
                "name": name,
                "kind": kind,
                "severity": "high",
                "fields": "",
                "details": json.dumps({"attributes.a": {"source": "1", "target": "2"}}),
            }
            for run, entity, name, kind in rows
        ]
    )


def test_an_item_gone_in_the_next_run_was_repaired_then() -> None:
    index = index_of(("r0", True), ("r1", True), ("r2", True))
    items = items_of(("r0", "thing", "a", "missing"), ("r1", "thing", "a", "missing"))

    (episode,) = history.drift_episodes(index, items).to_dict("records")

    assert (episode["first_run"], episode["last_run"], episode["repaired_run"]) == (
        "r0",
        "r1",
        "r2",
    )
    assert episode["runs_seen"] == 2
    assert episode["time_to_repair"] == pd.Timedelta(days=2)
    assert not episode["open"]


def test_an_item_that_comes_back_opens_a_new_episode() -> None:
    index = index_of(("r0", True), ("r1", True), ("r2", True), ("r3", True))
    items = items_of(
        ("r0", "thing", "a", "changed"),
        ("r2", "thing", "a", "changed"),
        ("r3", "thing", "a", "changed"),
    )

    episodes = history.drift_episodes(index, items)

    assert list(episodes["first_run"]) == ["r0", "r2"]
    assert list(episodes["repaired_run"].fillna("-")) == ["r1", "-"]
    assert list(episodes["open"]) == [False, True]
    summary = history.item_history(index, items).iloc[0]
    assert summary["episodes"] == 2
    assert bool(summary["open"])


def test_runs_without_a_report_are_not_observations() -> None:
    # r1 failed before its diff: it says nothing about whether the item was still there
    index = index_of(("r0", True), ("r1", False), ("r2", True))
    items = items_of(("r0", "thing", "a", "missing"), ("r2", "thing", "a", "missing"))

    episodes = history.drift_episodes(index, items)

    assert len(episodes) == 1
    assert bool(episodes["open"].iloc[0])


def test_the_same_name_in_two_entities_or_kinds_is_two_items() -> None:
    index = index_of(("r0", True), ("r1", True))
    items = items_of(
        ("r0", "thing", "a", "missing"),
        ("r0", "thing_group", "a", "missing"),
        ("r1", "thing", "a", "changed"),
    )

    episodes = history.drift_episodes(index, items)

    assert len(episodes) == 3
    repaired = episodes.loc[~episodes["open"], ["entity", "kind"]]
    assert sorted(map(tuple, repaired.to_numpy())) == [
        ("thing", "missing"),
        ("thing_group", "missing"),
    ]


def test_time_to_repair_summary_per_entity_and_kind() -> None:
    index = index_of(("r0", True), ("r1", True), ("r2", True))
    items = items_of(
        ("r0", "thing", "a", "missing"),
        ("r0", "thing", "b", "missing"),
        ("r1", "thing", "b", "missing"),
        ("r2", "thing", "c", "missing"),
    )

    summary = history.time_to_repair_summary(history.drift_episodes(index, items)).iloc[0]

    assert (summary["repaired"], summary["open"]) == (2, 1)
    assert summary["median_time_to_repair"] == pd.Timedelta(days=1.5)
    assert summary["max_time_to_repair"] == pd.Timedelta(days=2)


def test_drift_over_time_and_repair_volume() -> None:
    index = index_of(("r0", True), ("r1", False), ("r2", True))

    over_time = history.drift_over_time(index)
    volume = history.repair_volume(index)

    assert list(over_time["run_id"]) == ["r0", "r2"]
    assert list(over_time["total"]) == [1, 3]
    assert list(history.drift_by_entity_over_time(index)["thing"]) == [0, 2]
    assert list(volume.index) == ["r0", "r1", "r2"]
    assert list(volume["repairs_emitted"]) == [0, 1, 2]


def test_no_runs_give_empty_frames() -> None:
    index = index_frame([])
    items = items_of()

    assert history.drift_episodes(index, items).empty
    assert history.item_history(index, items).empty
    assert history.time_to_repair_summary(history.drift_episodes(index, items)).empty


def test_latest_run_views() -> None:
    items = items_of(
        ("r", "thing", "t1", "changed"),
        ("r", "thing", "t2", "missing"),
        ("r", "membership", "t2#g1", "missing"),
        ("r", "thing_group", "g2", "changed"),
    )
    things = pd.DataFrame({"name": ["t1", "t2"], "thing_type": ["sensor", "sensor"]})
    memberships = pd.DataFrame({"thing": ["t1", "t1"], "group": ["g1", "g2"]})

    by_kind = history.drift_by_kind(items)
    types = history.most_drifted_types(items, things)
    groups = history.most_drifted_groups(items, memberships)
    drill = history.attribute_drill_down(items)

    assert by_kind.loc["thing", "changed"] == 1
    assert by_kind.loc["billing_group"].sum() == 0  # every entity is listed
    assert types.loc["sensor", "drifted_things"] == 2
    assert groups.loc["g1", "total"] == 2  # t1 is a member, t2#g1 membership missing
    assert groups.loc["g2", "total"] == 2  # t1 is a member, the group itself changed
    assert list(drill["field"].unique()) == ["attributes.a"]
    assert history.field_frequency(drill)[("thing", "attributes.a")] == 1


def test_latest_run_views_read_a_snapshots_encoded_columns_as_text() -> None:
    # GIVEN a snapshot's tables, whose types and groups are categorical (reconcile.labels),
    # with a type and a group no drift touches
    items = items_of(("r", "thing", "t1", "changed"), ("r", "thing", "t2", "missing"))
    source = Snapshot.from_records(
        "us-east-1",
        1,
        things=[
            {"name": "t1", "thing_type": "sensor"},
            {"name": "t2"},
            {"name": "t3", "thing_type": "idle"},
        ],
        memberships=[{"thing": "t1", "group": "g1"}, {"thing": "t3", "group": "g9"}],
    )
    assert isinstance(source.things["thing_type"].dtype, pd.CategoricalDtype)

    types = history.most_drifted_types(items, source.things)
    groups = history.most_drifted_groups(items, source.memberships)

    # THEN they rank as text: only the types and groups drift touches
    assert types["drifted_things"].to_dict() == {"sensor": 1, "(none in source)": 1}
    assert groups["drifted_members"].to_dict() == {"g1": 1}


def test_drift_by_where_counts_loss_points_per_run_and_older_runs_as_unexplained() -> None:
    index = index_of(("r0", True), ("r1", False), ("r2", True))
    items = items_of(
        ("r0", "thing", "a", "missing"),
        ("r2", "thing", "a", "changed"),
        ("r2", "thing", "b", "changed"),
        ("r2", "thing", "c", "missing"),
    )
    items["where"] = pd.Series(
        [pd.NA, "lost_before_table", "lost_after_table", "lost_after_table"], dtype="string"
    )

    frame = history.drift_by_where_over_time(index, items)

    assert list(frame.columns) == [
        "lost_before_table",
        "lost_after_table",
        "table_only",
        "type_deletion_pending",
        "not_registrable",
        "unexplained",
    ]
    assert frame.to_dict("records") == [  # r1 made no report: not an observation
        {"lost_before_table": 0, "lost_after_table": 0, "table_only": 0}
        | {"type_deletion_pending": 0, "not_registrable": 0, "unexplained": 1},
        {"lost_before_table": 1, "lost_after_table": 2, "table_only": 0}
        | {"type_deletion_pending": 0, "not_registrable": 0, "unexplained": 0},
    ]
    empty = history.drift_by_where_over_time(index_of(), items_of())
    assert empty.empty


# -- which run the drift report shows ------------------------------------------------------------


def _index(*drift_totals: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(drift_totals))],
            "diffed": [True] * len(drift_totals),
            "drift_total": list(drift_totals),
            "started_at_ms": [1_000 * i for i in range(len(drift_totals))],
        }
    )


def test_the_report_shows_the_latest_run_with_drift_and_says_so() -> None:
    record, why = choose_run(_index(3, 180, 0, 0))
    assert record["run_id"] == "r1"
    assert why == "the latest run that found drift; 2 later run(s) found none"


def test_without_any_drift_the_report_shows_the_latest_clean_run() -> None:
    record, why = choose_run(_index(0, 0))
    assert record["run_id"] == "r1"
    assert "no run found drift" in why


def test_a_run_id_picks_that_run_and_an_unknown_one_is_refused() -> None:
    assert choose_run(_index(3, 0), "r1")[0]["run_id"] == "r1"
    with pytest.raises(NoRunsError, match="no run 'r9'"):
        choose_run(_index(3, 0), "r9")


def test_drift_per_run_lists_entities_in_dependency_order_certificates_included() -> None:
    # The trends notebook stacks a bar per entity: things before their certificates, the
    # certificates before the attachments that name them (not alphabetically).
    counts = {
        "certificate.changed": 1,
        "policy_target.missing": 2,
        "thing.missing": 1,
        "billing_group.missing": 0,
        "thing_principal.missing": 1,
        "policy.missing": 1,
    }
    index = index_frame(
        [
            RunRecord(
                run_id="r0",
                prefix="runs/r0/",
                status="completed",
                started_at_ms=0,
                finished_at_ms=60_000,
                source_region="us-east-1",
                target_region="eu-west-1",
                diffed=True,
                drift=counts,
                drift_total=6,
            )
        ]
    )

    by_entity = history.drift_by_entity_over_time(index)

    assert list(by_entity.columns) == [
        "billing_group",
        "thing",
        "certificate",
        "policy",
        "thing_principal",
        "policy_target",
    ]
    assert by_entity["certificate"].tolist() == [1]


def test_time_to_repair_lists_entities_in_dependency_order() -> None:
    index = index_of(("r0", True), ("r1", True))
    items = items_of(
        ("r0", "certificate", "c" * 64, "changed"),
        ("r0", "policy_target", "p#cert/" + "c" * 64, "missing"),
        ("r0", "thing", "t", "missing"),
        ("r0", "certificate", "d" * 64, "missing"),
    )

    summary = history.time_to_repair_summary(history.drift_episodes(index, items))

    assert list(zip(summary["entity"], summary["kind"], strict=True)) == [
        ("thing", "missing"),
        ("certificate", "missing"),
        ("certificate", "changed"),
        ("policy_target", "missing"),
    ]


def test_a_notebook_table_shows_registry_text_as_text() -> None:
    # GIVEN names as a registry may hold them: a C1 control (a terminal's CSI), a bidi override
    # ("Trojan Source") and markup
    frame = pd.DataFrame(
        {"name": ["\u009b2Jgw", "gw\u202e1", "<img src=x onerror=alert(1)>"], "drifts": [1, 2, 3]}
    )
    # WHEN the notebook shows it  THEN each shows as its escape or as text, never raw
    rendered = table(frame).to_html()
    assert "\u009b" not in rendered and "\u202e" not in rendered
    assert "\\u009b2Jgw" in rendered and "gw\\u202e1" in rendered
    assert "<img" not in rendered and "&lt;img src=x" in rendered


# -- what the notebooks show ------------------------------------------------------------------


def _labels_and_frame(figure: Any) -> tuple[list[Any], Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).draw()
    axes = figure.axes[0]
    return [t for t in axes.texts if t.get_text()], axes.get_window_extent()


@pytest.mark.parametrize(
    ("frame", "stacked"),
    [
        (pd.DataFrame({"drifts": [1]}, index=["lost_after_table"]), True),
        # one bar: the y axis ended at its top, its "1" drawn over the title
        (pd.DataFrame({"drifted_things": [1], "type_drift": [0]}, index=["(none)"]), True),
        (
            pd.DataFrame({"missing": [174, 2], "changed": [0, 1]}, index=["membership", "thing"]),
            False,
        ),
        (pd.DataFrame({"thing": [2, 0], "membership": [174, 0]}, index=["run-1", "run-2"]), True),
    ],
)
def test_every_count_is_drawn_inside_the_chart_frame(frame: pd.DataFrame, stacked: bool) -> None:
    # issue 22 item 14: the tallest bar's count sat on the frame's top edge or above it, over
    # the title; small counts next to large ones must still be read
    figure = bar_chart(frame, "Drift", stacked=stacked)

    labels, box = _labels_and_frame(figure)
    expected = frame.sum(axis=1) if stacked else frame.stack()
    texts = [t.get_text() for t in labels]
    for count in (f"{v:,.0f}" for v in expected if v or stacked):
        assert count in texts  # every bar (every stack) has its count, however small
    for label in labels:
        extent = label.get_window_extent()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, label.get_text()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()
    legend = figure.axes[0].get_legend()
    if legend is not None:  # beside the frame, never over the bars
        assert legend.get_window_extent().x0 >= box.x1


def test_a_histogram_counts_each_bin_inside_the_frame() -> None:
    minutes = [pd.Timedelta(minutes=1)] * 26 + [pd.Timedelta(minutes=4)] * 400
    episodes = pd.DataFrame({"open": [False] * len(minutes), "time_to_repair": minutes})

    labels, box = _labels_and_frame(repair_time_histogram(episodes, "Time to repair"))

    assert sorted(t.get_text() for t in labels) == ["26", "400"]
    for label in labels:
        extent = label.get_window_extent()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, label.get_text()


def test_nothing_to_show_is_no_chart_and_no_table() -> None:
    zeros = pd.DataFrame({"missing": [0, 0]}, index=["thing", "membership"])
    assert bar_chart(zeros, "Drift") is None
    assert bar_chart(pd.Series(dtype="int64"), "Drift") is None
    assert table(zeros.iloc[0:0]) is None
    assert nonzero(pd.DataFrame({"a": [0, 3], "b": [0, 0]}, index=["x", "y"])).to_dict() == {
        "a": {"y": 3}
    }


def test_tables_show_flags_and_gaps_as_people_read_them() -> None:
    frame = pd.DataFrame(
        {
            "open": [True, False],
            "repaired_at": pd.to_datetime([None, 0], unit="ms", utc=True),
            "time_to_repair": pd.to_timedelta([None, 90], unit="s"),
            "note": [None, "x"],
        }
    )
    html = table(frame).to_html()
    for raw in ("True", "False", "None", "NaT", "nan"):
        assert f">{raw}<" not in html
    assert ">yes<" in html and ">no<" in html and ">1m 30s<" in html


def test_the_drill_down_shows_a_missing_entitys_set_fields_only() -> None:
    items = pd.DataFrame(
        [
            {
                "entity": "thing",
                "name": "lost",
                "kind": "missing",
                "severity": "high",
                "fields": "",
                "details": json.dumps(
                    {
                        "thing_type": {"source": "Gateway", "target": None},
                        "attributes": {"source": {}, "target": None},
                        "deprecated": {"source": False, "target": None},
                    }
                ),
            },
            {
                "entity": "thing_group",
                "name": "amer",
                "kind": "changed",
                "severity": "low",
                "fields": "",
                "details": json.dumps({"description": {"source": "Americas", "target": None}}),
            },
        ]
    )
    rows = history.attribute_drill_down(items).to_dict("records")
    assert [(r["field"], r["source"], r["target"]) for r in rows] == [
        ("thing_type", '"Gateway"', ""),  # the destination has no such thing: nothing to show
        ("deprecated", "no", ""),
        ("description", '"Americas"', "unset"),
    ]


def test_the_drill_down_shows_shadow_sections_as_json() -> None:
    # GIVEN a changed and a missing shadow, whose sections the state keeps as JSON text
    def item(name: str, kind: str, details: dict[str, Any]) -> dict[str, Any]:
        row = {"entity": "shadow", "name": name, "kind": kind, "severity": "high", "fields": ""}
        return {**row, "details": json.dumps(details)}

    items = pd.DataFrame(
        [
            item("gw#~classic", "changed", {"desired": {"source": '{"a":1}', "target": "{}"}}),
            item(
                "gw#config",
                "missing",
                {
                    "desired": {"source": '{"b":2}', "target": None},
                    "reported": {"source": "{}", "target": None},
                },
            ),
        ]
    )
    rows = history.attribute_drill_down(items).to_dict("records")
    # THEN the JSON shows itself, and an empty section of a missing shadow says nothing
    assert [(r["name"], r["field"], r["source"], r["target"]) for r in rows] == [
        ("gw#~classic", "desired", '{"a":1}', "{}"),
        ("gw#config", "desired", '{"b":2}', ""),
    ]


def test_a_chart_of_fields_labels_them_as_words_not_tuples() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    frequency = pd.Series({("thing", "attributes.firmware"): 2, ("thing_group", "description"): 1})
    figure = bar_chart(frequency, "Fields")
    FigureCanvasAgg(figure).draw()
    shown = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert shown == ["thing attributes.firmware", "thing_group description"]

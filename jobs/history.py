"""Drift history across nightly runs: pure pandas over the run index and the drift items.

Flow: ``jobs.artefacts.load_index`` + ``load_drift_items`` → here → the notebooks and any
operator's own analysis. No I/O.

A drift item is ``(entity, name, kind)``. Runs that got as far as a report (``diffed``) are the
observations, in start order. An *episode* is a stretch of consecutive observed runs in which
an item is present: it was first seen at the first, last seen at the last, and repaired at the
next observed run (where it is absent). An item that comes back later opens a new episode, so
time to repair is never stretched over a gap in which it was fixed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from pipeline.kinds.links import membership_groups
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER, LOSS_POINTS
from reconcile.reportformats import is_json_text, shown, unset

ITEM_KEY = ["entity", "name", "kind"]
EPISODE_COLUMNS = [
    *ITEM_KEY,
    "severity",
    "first_run",
    "first_seen",
    "last_run",
    "last_seen",
    "runs_seen",
    "repaired_run",
    "repaired_at",
    "time_to_repair",
    "open",
]


def observed_runs(index: pd.DataFrame) -> pd.DataFrame:
    """The runs that produced a report, in start order, numbered 0..n-1 (``position``)."""
    if index.empty or "diffed" not in index:
        return pd.DataFrame({"run_id": [], "started_at": [], "position": []})
    runs = index.loc[index["diffed"].astype(bool), ["run_id", "started_at"]]
    runs = runs.sort_values(["started_at", "run_id"], kind="stable").reset_index(drop=True)
    runs["position"] = range(len(runs))
    return runs


def drift_episodes(index: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per episode (see the module docstring), columns ``EPISODE_COLUMNS``.

    ``repaired_run``/``repaired_at``/``time_to_repair`` are missing while the episode is
    ``open`` (the item was present in the latest observed run).
    """
    runs = observed_runs(index)
    if items.empty or runs.empty:
        return pd.DataFrame({c: [] for c in EPISODE_COLUMNS})
    seen = items.merge(runs, on="run_id", how="inner")
    seen = seen.sort_values([*ITEM_KEY, "position"], kind="stable").reset_index(drop=True)
    # A new episode starts where the item changes or a run is skipped (numpy: plain bools).
    continues = np.zeros(len(seen), dtype=bool)
    continues[1:] = True
    for column in ITEM_KEY:
        values = seen[column].to_numpy(dtype=object)
        continues[1:] &= values[1:] == values[:-1]
    position = seen["position"].to_numpy(dtype=np.int64)
    continues[1:] &= position[1:] == position[:-1] + 1
    seen["episode"] = np.cumsum(~continues)

    grouped = seen.groupby("episode", sort=True)
    episodes = grouped.agg(
        entity=("entity", "first"),
        name=("name", "first"),
        kind=("kind", "first"),
        severity=("severity", "last"),
        first_run=("run_id", "first"),
        first_seen=("started_at", "first"),
        last_run=("run_id", "last"),
        last_seen=("started_at", "last"),
        runs_seen=("position", "size"),
        last_position=("position", "last"),
    ).reset_index(drop=True)

    next_position = episodes["last_position"] + 1
    by_position = runs.set_index("position")
    episodes["open"] = next_position >= len(runs)
    episodes["repaired_run"] = next_position.map(by_position["run_id"])
    episodes["repaired_at"] = next_position.map(by_position["started_at"])
    episodes["time_to_repair"] = episodes["repaired_at"] - episodes["first_seen"]
    return episodes.loc[:, EPISODE_COLUMNS]


def item_history(index: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per drift item: first seen, last seen, the latest repair and total episodes."""
    episodes = drift_episodes(index, items)
    if episodes.empty:
        return pd.DataFrame(
            {c: [] for c in [*ITEM_KEY, "first_seen", "last_seen", "repaired_at", "episodes"]}
        )
    grouped = episodes.groupby(ITEM_KEY, sort=True)
    return grouped.agg(
        first_seen=("first_seen", "min"),
        last_seen=("last_seen", "max"),
        repaired_at=("repaired_at", "last"),
        time_to_repair=("time_to_repair", "last"),
        episodes=("first_run", "size"),
        open=("open", "last"),
    ).reset_index()


def time_to_repair_summary(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per entity and drift kind (dependency order, then missing, extra, changed): repaired and
    open episodes, median and max time to repair."""
    columns = ["entity", "kind", "repaired", "open", "median_time_to_repair", "max_time_to_repair"]
    if episodes.empty:
        return pd.DataFrame({c: [] for c in columns})
    frame = episodes.assign(repaired=~episodes["open"].astype(bool))
    grouped = frame.groupby(["entity", "kind"], sort=True)
    summary = grouped.agg(
        repaired=("repaired", "sum"),
        open=("open", "sum"),
        median_time_to_repair=("time_to_repair", "median"),
        max_time_to_repair=("time_to_repair", "max"),
    ).reset_index()
    ranks = summary["entity"].map(_entity_rank).tolist()
    kinds = [
        DRIFT_KINDS.index(k) if k in DRIFT_KINDS else len(DRIFT_KINDS) for k in summary["kind"]
    ]
    order = sorted(range(len(summary)), key=lambda i: (ranks[i], kinds[i]))
    return summary.iloc[order].reset_index(drop=True).loc[:, columns]


def _entity_rank(entity: str) -> tuple[int, str]:
    """Where an entity sorts in tables and series: dependency order, as the reports list kinds
    (an entity the code no longer knows last)."""
    order = [e.value for e in ENTITY_ORDER]
    return (order.index(entity) if entity in order else len(order), entity)


def drift_over_time(index: pd.DataFrame) -> pd.DataFrame:
    """Drift per observed run, one column per ``entity.kind`` (plus ``total``), indexed by the
    run's start time: ready for ``DataFrame.plot``."""
    runs = index.loc[index["diffed"].astype(bool)] if "diffed" in index else index.iloc[0:0]
    columns = sorted(c for c in index.columns if c.startswith("drift."))
    frame = runs.set_index("started_at")[["run_id", *columns]].copy()
    frame.columns = ["run_id", *(c[len("drift.") :] for c in columns)]
    frame["total"] = frame[[c[len("drift.") :] for c in columns]].sum(axis=1)
    return frame


def drift_by_entity_over_time(index: pd.DataFrame) -> pd.DataFrame:
    """Drift per observed run summed over drift kinds, one column per entity, in dependency
    order (the reports' order; a kind the code no longer knows last)."""
    per_kind = drift_over_time(index).drop(columns=["run_id", "total"])
    entities = sorted({c.split(".", 1)[0] for c in per_kind.columns}, key=_entity_rank)
    return pd.DataFrame(
        {
            e: per_kind[[c for c in per_kind.columns if c.startswith(e + ".")]].sum(axis=1)
            for e in entities
        },
        index=per_kind.index,
    )


def drift_by_where_over_time(index: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Drift per observed run by where it was lost (the three-way audit's loss points, plus
    ``unexplained`` for drift from runs that did not read the state table), indexed by the
    run's start time: is drift lost before the table (events), or after it (replication)?"""
    runs = observed_runs(index)
    columns = [*LOSS_POINTS, "unexplained"]
    if runs.empty:
        return pd.DataFrame({c: [] for c in columns}, index=pd.Index([], name="started_at"))
    where = items.get("where", pd.Series(pd.NA, index=items.index, dtype="string"))
    labelled = pd.DataFrame(
        {"run_id": items["run_id"], "where": where.astype("string").fillna("unexplained")}
    )
    counts = pd.crosstab(labelled["run_id"], labelled["where"])
    counts = counts.reindex(index=runs["run_id"], columns=columns, fill_value=0).fillna(0)
    counts.index = pd.Index(runs["started_at"], name="started_at")
    return counts.astype("int64")


def repair_volume(index: pd.DataFrame) -> pd.DataFrame:
    """Per run (indexed by run id, in start order): when it started, its status, and repairs
    planned, emitted, failed and held back by guards."""
    columns = ["started_at", "status", "planned", "repairs_emitted", "repairs_failed", "held_back"]
    if index.empty:
        return pd.DataFrame({c: [] for c in columns}, index=pd.Index([], name="run_id"))
    return index.set_index("run_id").loc[:, columns]


# -- the latest run (drift report notebook) ----------------------------------------------------


def drift_by_kind(items: pd.DataFrame) -> pd.DataFrame:
    """Counts of one run's drift items: a row per entity, a column per drift kind (every one,
    zeros included, in dependency order)."""
    entities = [e.value for e in ENTITY_ORDER]
    table = pd.crosstab(items["entity"], items["kind"]) if len(items) else pd.DataFrame()
    table = table.reindex(index=entities, columns=list(DRIFT_KINDS), fill_value=0)
    table.index.name, table.columns.name = "entity", None
    return table.astype(int)


def most_drifted_types(items: pd.DataFrame, things: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Thing types ranked by drifted things (by the source snapshot's type of each thing),
    plus drift of the type entity itself."""
    thing_drift = items.loc[items["entity"] == "thing", ["name"]]
    typed = thing_drift.merge(things.loc[:, ["name", "thing_type"]], on="name", how="left")
    # As text: a snapshot's type is categorical (reconcile.labels), whose counts list every type.
    types = typed["thing_type"].astype("string").fillna("(none in source)")
    counts = types.value_counts().rename("drifted_things")
    own = items.loc[items["entity"] == "thing_type", "name"].value_counts().rename("type_drift")
    ranked = pd.concat([counts, own], axis=1).fillna(0).astype(int)
    ranked["total"] = ranked.sum(axis=1)
    ranked.index.name = "thing_type"
    return ranked.sort_values(["total"], ascending=False, kind="stable").head(top)


def most_drifted_groups(
    items: pd.DataFrame, memberships: pd.DataFrame, top: int = 10
) -> pd.DataFrame:
    """Thing groups ranked by drift touching them: drifted member things (source snapshot),
    drifted memberships of the group, and drift of the group entity itself."""
    thing_drift = items.loc[items["entity"] == "thing", ["name"]].rename(columns={"name": "thing"})
    groups = thing_drift.merge(memberships, on="thing", how="inner")["group"]
    members = groups.astype("string").value_counts()  # as text, as ``most_drifted_types``
    links = membership_groups(items.loc[items["entity"] == "membership", "name"])
    ranked = pd.concat(
        [
            members.rename("drifted_members"),
            links.value_counts().rename("membership_drift"),
            items.loc[items["entity"] == "thing_group", "name"]
            .value_counts()
            .rename("group_drift"),
        ],
        axis=1,
    ).fillna(0)
    ranked = ranked.astype(int)
    ranked["total"] = ranked.sum(axis=1)
    ranked.index.name = "thing_group"
    return ranked.sort_values(["total"], ascending=False, kind="stable").head(top)


def attribute_drill_down(items: pd.DataFrame) -> pd.DataFrame:
    """One row per differing field of each drift: entity, name, kind, field, source, target."""
    rows: list[dict[str, Any]] = []
    for entity, name, kind, details in zip(
        items["entity"], items["name"], items["kind"], items["details"], strict=True
    ):
        for field_name, values in json.loads(str(details) or "{}").items():
            side = {"missing": "source", "extra": "target"}.get(str(kind))
            as_json = is_json_text(str(entity), field_name)
            if side is not None and unset(values.get(side), as_json):
                continue  # an unset field of a missing or extra entity says nothing about it
            rows.append(
                {
                    "entity": entity,
                    "name": name,
                    "kind": kind,
                    "field": field_name,
                    "source": shown(values.get("source"), as_json) if kind != "extra" else "",
                    "target": shown(values.get("target"), as_json) if kind != "missing" else "",
                }
            )
    return pd.DataFrame(rows, columns=["entity", "name", "kind", "field", "source", "target"])


def field_frequency(drill_down: pd.DataFrame) -> pd.Series:
    """How often each field differs among changed entities (attributes key by key)."""
    changed = drill_down.loc[drill_down["kind"] == "changed"]
    return changed.groupby(["entity", "field"]).size().sort_values(ascending=False)

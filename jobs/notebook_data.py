"""What the notebooks load: the latest run's report and the history, ready to display.

Flow: ``notebooks/drift_report.ipynb`` calls ``latest_run``; ``notebooks/drift_trends.ipynb``
calls ``trends``. Both read artefacts through ``jobs.artefacts`` and compute through
``jobs.history``, so the notebooks hold no logic of their own: a cell per view, a plot per cell
(``jobs.notebook_views`` draws and displays them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from jobs import history
from jobs.artefacts import (
    ArtefactError,
    RunArtefacts,
    Store,
    load_drift_items,
    load_index,
    open_store,
)
from pipeline import aws
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER
from reconcile.report import load_json
from reconcile.rootcause import by_root_cause


class NoRunsError(ArtefactError):
    """The location holds no run that got as far as a report."""


def open_location(location: str, region: str | None = None) -> Store:
    """The artefact store at ``location`` (a directory or ``s3://bucket/prefix``)."""
    return open_store(location, lambda: aws.client("s3", region or "us-east-1"))


@dataclass(frozen=True)
class LatestRun:
    """The most recent run that produced a report, with everything the report notebook shows."""

    record: dict[str, Any]
    report: dict[str, Any]
    items: pd.DataFrame
    things: pd.DataFrame  # the source snapshot's things (for "most drifted types")
    memberships: pd.DataFrame  # the source snapshot's memberships (for "most drifted groups")
    why: str = "the latest run"  # why this run is the one shown (``choose_run``)
    # The latest run when it found no drift and none was asked for (``latest_if_clean``): the
    # report says "in sync" first, then shows the run that last found drift, if any.
    latest: dict[str, Any] | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.report["drifts"])

    def summary(self) -> pd.DataFrame:
        """Entities compared and drift per kind, as the report's summary table."""
        rows = [
            {
                "entity": entity.value,
                "compared": self.report["counts"].get(entity.value, 0),
                **{k: self.report["summary"].get(entity.value, {}).get(k, 0) for k in DRIFT_KINDS},
            }
            for entity in ENTITY_ORDER
        ]
        return pd.DataFrame(rows).set_index("entity")

    def headline(self) -> str:
        """What the report says first: "in sync" after a clean latest run (then which run the
        views below show, if one found drift), else the run shown and what it found."""
        shown = _run_line(self.record)
        if self.latest is None:
            state = "in sync" if not self.drifted else f"{len(self.report['drifts'])} drift(s)"
            return (
                f"run {shown}; {self.why}): "
                f"{self.report['source_region']} → {self.report['target_region']}: {state}; "
                f"{self.record['repairs_emitted']} repair(s) emitted, "
                f"{self.record['held_back']} held back by guards"
            )
        regions = f"{self.latest['source_region']} → {self.latest['target_region']}"
        first = (
            f"**In sync**: {regions}: the latest run, {_run_line(self.latest)}), found no drift."
        )
        if not self.drifted:
            return first + " No run has found drift."
        return (
            f"{first}\n\nBelow: run {shown}; {self.why}): "
            f"{len(self.report['drifts'])} drift(s); {self.record['repairs_emitted']} repair(s) "
            f"emitted, {self.record['held_back']} held back by guards."
        )

    def root_causes(self) -> pd.DataFrame:
        """Drift by root cause (``reconcile.rootcause``): one row per cause, what it explains."""
        causes = by_root_cause(load_json(self.report).drifts)
        return pd.DataFrame(
            [
                {
                    "severity": c.drift.severity,
                    "entity": c.drift.entity.value,
                    "kind": c.drift.kind,
                    "name": c.drift.name,
                    "drift items": c.explains,
                    "explains": "; ".join(c.consequences()),
                }
                for c in causes
            ],
            columns=["severity", "entity", "kind", "name", "drift items", "explains"],
        )

    def drift_by_kind(self) -> pd.DataFrame:
        """Drift per entity (rows) and kind (columns), only those with drift."""
        return nonzero(history.drift_by_kind(self.items))

    def drift_by_where(self) -> pd.DataFrame:
        """Drift per loss point (three-way audit) with what to check for each."""
        from reconcile.explain import FIXES

        where = self.items.get("where")
        counts = (where.value_counts() if where is not None else pd.Series(dtype="int64")).to_dict()
        rows = [
            {"where": point, "drifts": int(counts.get(point, 0)), "what to check": FIXES[point]}
            for point in FIXES
        ]
        if not any(row["drifts"] for row in rows):  # in sync, or a run without the table's view
            rows = []
        return pd.DataFrame(rows, columns=["where", "drifts", "what to check"]).set_index("where")

    def most_drifted_types(self, top: int = 10) -> pd.DataFrame:
        return history.most_drifted_types(self.items, self.things, top)

    def most_drifted_groups(self, top: int = 10) -> pd.DataFrame:
        return history.most_drifted_groups(self.items, self.memberships, top)

    def drill_down(self) -> pd.DataFrame:
        return history.attribute_drill_down(self.items)


def choose_run(index: pd.DataFrame, run_id: str | None = None) -> tuple[dict[str, Any], str]:
    """The run the drift report shows, and why that one (pure, over the run index).

    ``run_id`` if given; otherwise the latest run that found drift: a clean run after it has
    nothing to show, so the report says how many clean runs followed instead. With no drift in
    any run, the latest run (clean)."""
    runs = index.loc[index["diffed"].astype(bool)] if "diffed" in index else index.iloc[0:0]
    if runs.empty:
        raise NoRunsError("no run with a report")
    if run_id is not None:
        chosen = runs.loc[runs["run_id"] == run_id]
        if chosen.empty:
            known = ", ".join(runs["run_id"].astype(str).tolist()[-5:])
            raise NoRunsError(f"no run {run_id!r} with a report (latest: {known})")
        return _record(chosen.iloc[-1]), f"run {run_id}, as asked"
    drifted = runs.loc[runs["drift_total"].astype(int) > 0]
    if drifted.empty:
        return _record(runs.iloc[-1]), "the latest run; no run found drift"
    record = _record(drifted.iloc[-1])
    later = int((runs["started_at_ms"] > record["started_at_ms"]).sum())
    why = "the latest run that found drift"
    if later:
        why += f"; {later} later run(s) found none"
    return record, why


def latest_if_clean(index: pd.DataFrame) -> dict[str, Any] | None:
    """The latest run with a report, if it found no drift (the report then says "in sync"
    first, whichever run it shows below)."""
    runs = index.loc[index["diffed"].astype(bool)] if "diffed" in index else index.iloc[0:0]
    if runs.empty or int(runs.iloc[-1]["drift_total"]):
        return None
    return _record(runs.iloc[-1])


def _run_line(record: Mapping[str, Any]) -> str:
    started = pd.Timestamp(record["started_at_ms"], unit="ms", tz="UTC")
    return f"{record['run_id']} ({record['status']}, started {started:%Y-%m-%d %H:%M} UTC"


def _record(row: pd.Series) -> dict[str, Any]:
    return {str(k): v for k, v in row.to_dict().items()}


def latest_run(store: Store, run_id: str | None = None) -> LatestRun:
    """The run the drift report shows (``choose_run``), loaded from its artefacts."""
    index = load_index(store)
    try:
        record, why = choose_run(index, run_id)
    except NoRunsError as error:
        raise NoRunsError(f"{error} at {store.location}") from error
    artefacts = RunArtefacts(store, str(record["prefix"]))
    source = artefacts.load_snapshot("source")
    return LatestRun(
        record=record,
        report=artefacts.read_report_json(),
        items=artefacts.read_drift_items(),
        things=source.things,
        memberships=source.memberships,
        why=why,
        latest=None if run_id is not None else latest_if_clean(index),
    )


@dataclass(frozen=True)
class Trends:
    """The run index, every run's drift items and the drift episodes derived from them."""

    index: pd.DataFrame
    items: pd.DataFrame
    episodes: pd.DataFrame

    def headline(self) -> str:
        """The latest run first: in sync (and since when), or how much drift it found."""
        diffed = self.index.get("diffed", pd.Series(False, index=self.index.index))
        runs = self.index.loc[diffed.astype(bool)]
        if runs.empty:
            return "No run got as far as a report yet."
        latest = _record(runs.iloc[-1])
        found = int(latest["drift_total"])
        if found:
            return f"The latest run, {_run_line(latest)}), found {found} drift(s)."
        drifted = runs.loc[runs["drift_total"].astype(int) > 0]
        if drifted.empty:
            since = "no run has found drift"
        else:
            last = drifted.iloc[-1]["started_at_ms"]
            clean = int((runs["started_at_ms"] > last).sum())
            since = f"{clean} clean run(s) since the last drift"
        return f"**In sync**: the latest run, {_run_line(latest)}), found no drift; {since}."

    def drift_over_time(self) -> pd.DataFrame:
        return history.drift_over_time(self.index)

    def runs(self) -> pd.DataFrame:
        """Every run, oldest first: when, how long, what it found and repaired."""
        frame = self.index.assign(took=self.index["finished_at"] - self.index["started_at"])
        columns = ["run_id", "status", "started_at", "took", "drift_total", "repairs_emitted"]
        return frame.loc[:, columns].reset_index(drop=True)

    def drift_by_entity(self) -> pd.DataFrame:
        return history.drift_by_entity_over_time(self.index)

    def drift_by_where(self) -> pd.DataFrame:
        """Drift per observed run by where it was lost, indexed by the run's id (a bar per run)."""
        by_where = history.drift_by_where_over_time(self.index, self.items)
        runs = self.drift_over_time()["run_id"]
        return by_where.set_axis(runs.astype(str).tolist(), axis=0).rename_axis("run")

    def drift_per_run(self) -> pd.DataFrame:
        """Drift per observed run by entity, indexed by the run's id (a bar per run)."""
        by_entity = self.drift_by_entity()
        runs = self.drift_over_time()["run_id"]
        return by_entity.set_axis(runs.astype(str).tolist(), axis=0).rename_axis("run")

    def time_to_repair(self) -> pd.DataFrame:
        return history.time_to_repair_summary(self.episodes)

    def repair_volume(self) -> pd.DataFrame:
        return history.repair_volume(self.index)

    def item_history(self) -> pd.DataFrame:
        return history.item_history(self.index, self.items)

    def slowest_repairs(self, top: int = 20) -> pd.DataFrame:
        """The drift items that took longest to repair, open ones first (they are not done)."""
        items = self.item_history()
        if items.empty:
            return items
        ranked = items.assign(_open=items["open"].astype(bool)).sort_values(
            ["_open", "time_to_repair"], ascending=False, na_position="first", kind="stable"
        )
        return ranked.drop(columns="_open").head(top).reset_index(drop=True)


def trends(store: Store) -> Trends:
    index = load_index(store)
    if index.empty:
        raise NoRunsError(f"no runs at {store.location}")
    items = load_drift_items(store, index)
    return Trends(index=index, items=items, episodes=history.drift_episodes(index, items))


def nonzero(frame: pd.DataFrame, *, rows: bool = True) -> pd.DataFrame:
    """``frame`` without the numeric columns (and, with ``rows``, the rows) that are all zero:
    one run's drift shows what drifted, not thirteen entities of which two did. Over runs,
    keep the rows: a clean run is a bar of nothing, which is the news."""
    numeric = frame.select_dtypes("number")
    kept = numeric.ne(0).any(axis=1) if rows else pd.Series(True, index=frame.index)
    columns = [c for c in frame.columns if c not in numeric or numeric[c].ne(0).any()]
    return frame.loc[kept, columns]

"""How the notebooks show what ``jobs.notebook_data`` loads: charts, tables and sections.

Each notebook cell hands a view (a table from ``table``, a figure from ``bar_chart`` or
``repair_time_histogram``) to ``section`` or ``show``; a view with nothing to show is None and
is left out, so a clean night reads "in sync", not a page of empty tables and charts.
"""

from __future__ import annotations

from collections.abc import Hashable
from io import BytesIO
from typing import Any

import pandas as pd

from reconcile.humanize import fitting_unit, format_duration
from reconcile.reportformats import visible

# -- plots (matplotlib, Agg) ---------------------------------------------------------------------
# Figures are rendered to PNG and displayed as images, so they show under the Agg backend (no
# GUI, no inline backend needed) in papermill runs and in the nbconvert HTML.


def _figure(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


HEADROOM = 1.18  # the y axis reaches past the tallest bar, so its count stays inside the frame
SEGMENT_LABEL_MIN = 0.08  # a stack's part labelled inside it from this share of the tallest


def bar_chart(
    frame: pd.DataFrame | pd.Series, title: str, *, stacked: bool = True, ylabel: str = ""
) -> Any:
    """A (stacked) bar chart of ``frame``'s numeric columns per index label, or None when there
    is nothing to draw (no empty charts). One bar per label, so a handful of runs read as a
    handful of bars, not a line implying values between them. Each bar (a stack: its total) has
    its count on it, inside the frame: 2 things next to 174 memberships show as "2" even where
    the bar is a sliver. Series that are zero throughout are left out (and from the legend)."""
    numeric = frame.select_dtypes("number") if isinstance(frame, pd.DataFrame) else frame
    if isinstance(numeric, pd.DataFrame):
        numeric = numeric.loc[:, numeric.ne(0).any(axis=0)]
    if numeric.empty or not numeric.to_numpy().any():
        return None
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(title)
    # a two-level index (entity, field) reads as "thing attributes.firmware", not a tuple
    labels = [" ".join(map(str, x)) if isinstance(x, tuple) else str(x) for x in numeric.index]
    long = max(map(len, labels)) > 12
    numeric.plot.bar(ax=axes, stacked=stacked, rot=30 if long else 0, legend=False)
    axes.set_xticklabels(labels, ha="right" if long else "center")
    axes.set_xlabel("")
    axes.set_ylabel(ylabel)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 of a thing
    table = isinstance(numeric, pd.DataFrame)
    totals = numeric.sum(axis="columns") if isinstance(numeric, pd.DataFrame) and stacked else None
    tallest = float(totals.max() if totals is not None else numeric.to_numpy().max())
    if totals is not None and isinstance(numeric, pd.DataFrame) and numeric.shape[1] > 1:
        # a stack's parts where they are tall enough to hold their count; the table beside
        # the chart has every one (a part of 2 under 400 is a sliver)
        parts = numeric.ne(0).sum(axis="columns")  # a stack of one part has its total only
        for container, column in zip(axes.containers, numeric.columns, strict=True):
            roomy = [
                f"{v:,.0f}" if v >= tallest * SEGMENT_LABEL_MIN and n > 1 else ""
                for v, n in zip(numeric[column], parts, strict=True)
            ]
            axes.bar_label(container, labels=roomy, label_type="center", fontsize="x-small")
    containers = axes.containers[-1:] if stacked else axes.containers
    for container in containers:
        if totals is not None:  # a stack's total, 0 included: a clean run is the news
            texts = [f"{v:,.0f}" for v in totals.tolist()]
        else:  # side by side: an empty slot needs no "0"
            texts = [f"{v:,.0f}" if v else "" for v in container.datavalues]
        axes.bar_label(container, labels=texts, fontsize="small")
    axes.set_ylim(0, tallest * HEADROOM)
    if table and numeric.shape[1] > 1:
        # beside the frame, not over the bars or their counts
        axes.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return figure


def repair_time_histogram(episodes: pd.DataFrame, title: str) -> Any:
    """Time to repair over the repaired episodes, in the unit that fits the longest; None when
    nothing was repaired yet."""
    repaired = episodes.loc[~episodes["open"].astype(bool), "time_to_repair"]
    seconds = pd.to_timedelta(repaired).dt.total_seconds()
    if seconds.empty:
        return None
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(title)
    size, unit = fitting_unit(float(seconds.max()))
    counts, _, bars = axes.hist(seconds / size, bins=min(20, max(1, seconds.nunique())))
    # each bin's count on it, inside the frame: 26 repaired in a minute next to 400 in four
    axes.bar_label(bars, labels=[f"{c:,.0f}" if c else "" for c in counts], fontsize="small")
    axes.set_ylim(0, float(max(counts)) * HEADROOM)
    axes.set_xlabel(f"{unit} from first seen to repaired")
    axes.set_ylabel("drift items")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for people: durations as ``3m 47s``, times as ``2026-12-01 14:18 UTC``, flags
    as yes/no and nothing as an empty cell (never ``True``, ``None``, ``NaT`` or ``nan``)."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_timedelta64_dtype(values):
            seconds = values.dt.total_seconds()
            shown[column] = seconds.map(lambda v: format_duration(v) if pd.notna(v) else "")
        elif pd.api.types.is_datetime64_any_dtype(values):
            shown[column] = values.dt.strftime("%Y-%m-%d %H:%M UTC").fillna("")
        elif pd.api.types.is_bool_dtype(values) or (
            values.dtype == object and values.map(lambda v: isinstance(v, bool)).any()
        ):
            shown[column] = values.map(lambda v: ("yes" if v else "no") if pd.notna(v) else "")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            shown[column] = values.map(lambda v: "" if v is None or v is pd.NA else v)
    return shown


def table(frame: pd.DataFrame) -> Any:
    """``frame`` as a table people read, or None when it has no rows (no empty tables): text
    left-aligned, numbers right, no row numbers (a 0..n index says nothing), durations, times
    and flags written out."""
    if frame.empty:
        return None
    shown = readable(frame)
    text: list[Hashable] = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    for column in text:  # registry text: shown, never markup, controls or bidi overrides
        shown[column] = shown[column].map(lambda v: visible(v) if isinstance(v, str) else v)
    styler = shown.style.format(precision=0, thousands=",", na_rep="", escape="html")
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_table_styles(
        [{"selector": "th", "props": [("text-align", "left")]}], overwrite=False
    )
    if isinstance(shown.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler


def section(title: str, intro: str, *views: Any) -> None:
    """A section of a notebook: its heading, what it shows, then each view (a table from
    ``table``, a figure from ``bar_chart``), or nothing at all when every view is None: after
    a clean night the report is "in sync", not a page of empty tables and charts."""
    from IPython.display import Markdown, display

    views = tuple(view for view in views if view is not None)
    if not views:
        return
    display(Markdown(f"## {title}" + (f"\n\n{intro}" if intro else "")))
    for view in views:
        show(view)


def say(text: str) -> None:
    """Display ``text`` as a paragraph (Markdown), not as code output."""
    from IPython.display import Markdown, display

    display(Markdown(visible(text, keep="\n")))


def show(view: Any) -> None:
    """Display a figure as a PNG image (works under the Agg backend), a table as itself, and
    nothing for None (an empty view, ``table``/``bar_chart``)."""
    from IPython.display import Image, display

    if view is None:
        return
    if not hasattr(view, "savefig"):
        display(view)
        return
    buffer = BytesIO()
    view.savefig(buffer, format="png", dpi=90)
    display(Image(data=buffer.getvalue(), format="png"))

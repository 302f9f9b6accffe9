"""The files and directories an ``iot-crr`` command writes (a report, a plan, a snapshot),
checked when its options are parsed, before it reads anything: learning that a path cannot be
written after a long snapshot is the worst time."""

from __future__ import annotations

import os
from pathlib import Path

import click

from reconcile.snapshot import MANIFEST


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file, or ``None`` when it can (as far as this process
    can tell before writing: the directory exists and lets it create or replace a file)."""
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "is not writable"
    parent = path.parent
    if not parent.is_dir():
        return f"its directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"its directory {parent} is not writable"
    return None


def writable_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback: the report or plan file a command writes at its end, refused before
    the audit runs (learning it after a long snapshot is the worst time) with the path and why."""
    if value is not None and (reason := unwritable(value)):
        raise click.BadParameter(f"{value}: {reason}")
    return value


def snapshot_directory(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    """A click callback: ``snapshot --out`` writes into a new or empty directory, or replaces a
    snapshot saved there before; a directory holding anything else is refused (it would mix a
    snapshot into unrelated files)."""
    if value is None:
        return None
    if value.exists() and not value.is_dir():
        raise click.BadParameter(f"{value}: is a file, not a directory")
    if value.is_dir():
        others = sorted(p.name for p in value.iterdir() if not _snapshot_file(p))
        if others:
            shown = ", ".join(others[:3]) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            raise click.BadParameter(
                f"{value}: not empty and not a snapshot ({shown}); use a new or empty directory"
            )
        if not os.access(value, os.W_OK | os.X_OK):
            raise click.BadParameter(f"{value}: is not writable")
    elif reason := unwritable(value):
        raise click.BadParameter(f"{value}: {reason}")
    return value


def holds_snapshot(directory: Path) -> bool:
    """Whether ``directory`` holds a snapshot saved before (``snapshot --out`` replaces it)."""
    return (directory / MANIFEST).is_file()


def _snapshot_file(path: Path) -> bool:
    return path.is_file() and (path.name == MANIFEST or path.suffix == ".parquet")

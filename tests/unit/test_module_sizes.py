"""No module over 450 lines in pipeline/, reconcile/, jobs/ or sandbox/ (issue 21, "Done when"),
counted as ``wc -l`` counts (newline characters), so a long module cannot come back unnoticed."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("pipeline", "reconcile", "jobs", "sandbox")
MAX_LINES = 450


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_no_module_is_over_450_lines() -> None:
    over = {
        path.relative_to(ROOT).as_posix(): lines
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := line_count(path)) > MAX_LINES
    }
    assert not over, f"modules over {MAX_LINES} lines (split them along a seam): {over}"

"""`make screenshots` captures whole pages (scripts/fullpage.py), in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = 2400  # the window `make screenshots` used to capture, and cut pages at

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="needs Chromium (Debian: apt-get install chromium)"
)


def test_a_screenshot_holds_the_whole_page(tmp_path: Path) -> None:
    # issue 22 item 14: screenshots were the window's 2400 pixels, whatever the page's length
    page = tmp_path / "tall.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<div style="height:{WINDOW + 600}px;background:#eee">top</div>'
        '<div style="height:50px;background:#f00">the end</div></body></html>'
    )
    out = tmp_path / "tall.png"

    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/fullpage.py"),
            str(BROWSER),
            "800",
            str(page),
            str(out),
        ],
        check=True,
        timeout=120,
    )

    from PIL import Image

    with Image.open(out) as shot:
        assert shot.size == (800, WINDOW + 650)
        red = shot.convert("RGB").getpixel((400, WINDOW + 640))
    assert red == (255, 0, 0)  # the page's last line is in the picture


def test_make_screenshots_uses_the_full_page_capture() -> None:
    script = (ROOT / "scripts/screenshots.sh").read_text()
    assert "fullpage.py" in script
    assert "--screenshot" not in script  # Chromium's own flag captures the window only

"""Full-page screenshots in headless Chromium: ``python scripts/fullpage.py BROWSER WIDTH PAGE OUT``.

``chromium --screenshot`` captures only the window (``--window-size``): a report longer than the
window was cut at its bottom edge and nothing said so. This drives the browser over the
DevTools protocol on a pipe (``--remote-debugging-pipe``: messages are JSON, each ended by a NUL
byte, read from file descriptor 3 and written to 4; no port, no websocket, standard library
only): it lays the page out at ``WIDTH``, measures the content (``Page.getLayoutMetrics``),
sizes the viewport to all of it and captures that (``Page.captureScreenshot`` with
``captureBeyondViewport``). Chrome DevTools Protocol: https://chromedevtools.github.io/devtools-protocol/
(domains Target, Page, Emulation). Used by ``scripts/screenshots.sh`` (``make screenshots``).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 60.0
FIRST_HEIGHT = 800  # the viewport the page is first laid out in, before it is measured


class ScreenshotError(RuntimeError):
    """The browser did not answer, or answered with an error."""


class Browser:
    """One headless Chromium with the DevTools protocol on a pipe."""

    def __init__(self, executable: str) -> None:
        # fds 3 and 4 in the child: the browser reads commands from 3 and writes to 4
        self._to_child_r, self._to_browser = os.pipe()
        self._from_browser, self._from_child_w = os.pipe()
        self._profile = tempfile.TemporaryDirectory(prefix="fullpage-", ignore_cleanup_errors=True)
        reads, writes = self._to_child_r, self._from_child_w
        # The shell puts the two pipe ends on 3 and 4 (a preexec_fn's dup2 would be undone by
        # subprocess closing every descriptor but pass_fds after it).
        plumb = f'exec "$0" "$@" 3<&{reads} 4>&{writes}'
        self._process = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                plumb,
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            pass_fds=(reads, writes),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(reads)
        os.close(writes)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def close(self) -> None:
        # Ask the browser to quit so its helper processes stop writing into the profile; a kill
        # of the main process left them writing while the profile was removed (rmtree failed
        # with "Directory not empty").
        try:
            self.send("Browser.close")
            self._process.wait(timeout=10)
        except (OSError, ScreenshotError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise ScreenshotError("the browser did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ScreenshotError("the browser closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Call ``method`` and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ScreenshotError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._events.append(answer)

    def wait_for(self, event: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            for seen in self._events:
                if seen.get("method") == event and seen.get("sessionId") == session:
                    self._events.remove(seen)
                    return
            self._events.append(self._read(deadline))


def capture(browser: Browser, url: str, width: int) -> bytes:
    """The whole page at ``url`` laid out ``width`` CSS pixels wide, as PNG."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    browser.send("Page.enable", session)
    metrics = {"width": width, "deviceScaleFactor": 1, "mobile": False}
    browser.send("Emulation.setDeviceMetricsOverride", session, height=FIRST_HEIGHT, **metrics)
    browser.send("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired", session)
    content = browser.send("Page.getLayoutMetrics", session)["cssContentSize"]
    height = max(1, math.ceil(content["height"]))
    browser.send("Emulation.setDeviceMetricsOverride", session, height=height, **metrics)
    shot = browser.send(
        "Page.captureScreenshot",
        session,
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    )
    browser.send("Target.closeTarget", targetId=target)
    return base64.b64decode(shot["data"])


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    executable, width, page, out = argv
    browser = Browser(executable)
    try:
        png = capture(browser, Path(page).resolve().as_uri(), int(width))
    except ScreenshotError as error:
        print(f"screenshots: {page}: {error}", file=sys.stderr)
        return 1
    finally:
        browser.close()
    Path(out).write_bytes(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

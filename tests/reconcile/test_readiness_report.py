"""The readiness report: its JSON contract, and the formats for people escaping what they show."""

from __future__ import annotations

import json

from reconcile.readiness.checks import Check
from reconcile.readiness.devices import ActionVerdict, Question, Verdict
from reconcile.readiness.report import ReadinessReport, render, to_json

CONNECT = Question("CONNECT", "client/dev-1")
PUBLISH = Question("PUBLISH", "topic/a|b<script>\nx")


def _report(ready: bool = False) -> ReadinessReport:
    devices = (
        Verdict("dev-ok", "cd" * 32, True, (), (ActionVerdict(CONNECT, "ALLOWED", "ALLOWED"),)),
        Verdict(
            "dev-1",
            "ab" * 32,
            ready,
            () if ready else ("policy p | <b>x</b>\nnext: fix it",),
            (ActionVerdict(PUBLISH, "ALLOWED", "ALLOWED" if ready else None),),
        ),
    )
    checks = (
        Check("topic rules", ready, "eu-west-1", "rule r is missing", "create it"),
        Check("role aliases", False, "eu-west-1", "role alias x names y", "update", "warning"),
    )
    return ReadinessReport("us-east-1", "eu-west-1", 1_700_000_000_123, devices, checks)


def test_json_follows_the_contract() -> None:
    document = json.loads(render(_report(), "json"))
    assert document["ready"] is False
    assert document["generated_at"] == "2023-11-14T22:13:20.123Z"
    assert document["summary"] == {
        "devices": 2,
        "ready": 1,
        "not_ready": 1,
        "checks": 2,
        "checks_failed": 2,
    }
    assert document["devices"][1] == {
        "thing": "dev-1",
        "certificate": "ab" * 32,
        "ready": False,
        "reasons": ["policy p | <b>x</b>\nnext: fix it"],
        "actions": [
            {
                "action": "PUBLISH",
                "resource": PUBLISH.resource,
                "source": "ALLOWED",
                "destination": None,
            }
        ],
    }
    assert document["checks"][1] == {
        "check": "role aliases",
        "ok": False,
        "level": "warning",
        "region": "eu-west-1",
        "detail": "role alias x names y",
        "fix": "update",
    }
    assert to_json(_report(ready=True))["ready"] is True  # a failed warning does not block


def test_the_table_lists_devices_not_ready_first_with_their_reasons() -> None:
    table = render(_report(), "table")
    lines = table.splitlines()
    assert lines[0] == (
        "us-east-1 → eu-west-1: NOT READY: 1 of 2 device(s) ready; 1 of 2 account check(s) failed"
    )
    assert lines[4].startswith("dev-1 ")
    # What is not printable is shown escaped (reportformats.visible): a row stays one line
    assert "PUBLISH topic/a|b<script>\\u000ax: ALLOWED → not asked" in table
    assert "policy p | <b>x</b>\\u000anext: fix it" in table
    assert "dev-1 is not ready in eu-west-1:" in table
    assert "FAIL" in table and "warning" in table
    assert render(_report(ready=True), "table").startswith("us-east-1 → eu-west-1: ready: 2 of 2")


def test_markdown_escapes_cells_as_the_drift_report_does() -> None:
    markdown = render(_report(), "markdown")
    assert "<script>" not in markdown and "<b>" not in markdown
    # pipe and parentheses escaped, the newline shown escaped, the tag disarmed
    assert "a\\|b&lt;script&gt;\\\\u000ax" in markdown
    assert "- dev-1 \\(abababababab\\): policy p \\| &lt;b&gt;x&lt;/b&gt;\\\\u000anext" in markdown


def test_html_escapes_everything_it_shows() -> None:
    page = render(_report(), "html")
    assert "<script>" not in page and "<b>x" not in page
    assert "&lt;script&gt;" in page
    assert '<td class="k NO">NO</td>' in page
    assert '<td class="k FAIL">FAIL</td>' in page


def test_no_empty_column_or_table_is_shown() -> None:
    # issue 22 item 14: every check passed, yet each format showed a "fix" column of empty
    # cells; with no device sampled, a devices table of headers only
    passed = (Check("topic rules", True, "eu-west-1", "0 enabled in the source, all present", ""),)
    report = ReadinessReport("us-east-1", "eu-west-1", 1_700_000_000_123, (), passed)
    for fmt in ("table", "markdown", "html"):
        text = render(report, fmt)
        assert "fix" not in text.split("check", 1)[1], fmt
        assert "certificate" not in text, fmt  # the devices table's header
        assert "o devices checked" in text, fmt
    # a fix to show keeps its column
    assert "| fix |" in render(_report(), "markdown")

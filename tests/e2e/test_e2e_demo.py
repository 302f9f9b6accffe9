"""The demo's story as a test: found drift of every injected kind, repaired to a clean audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.demo import run_demo
from sandbox.emulation import FUNCTION_LOG


def test_the_demo_story_ends_with_a_clean_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the functions' metrics on (they print EMF lines, as in Lambda)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # The demo runs its own sandbox; a small fleet keeps this test quick.
    assert run_demo(tmp_path, things=40, echo=print)
    report = json.loads((tmp_path / "drift.json").read_text())
    kinds = {(d["entity"], d["kind"]) for d in report["drifts"]}
    assert {("thing", "extra"), ("thing", "changed"), ("thing_group", "missing")} <= kinds
    # The hand-edited shadow: found by the nightly run (the gateways' shadows listed), repaired
    assert ("shadow", "gateway-01#~classic", "changed") in {
        (d["entity"], d["name"], d["kind"]) for d in report["drifts"]
    }
    assert json.loads((tmp_path / "final.json").read_text())["drifts"] == []
    # AND the story is all the operator sees: the EMF lines are in the functions' log
    out = capsys.readouterr().out
    assert "6. next nightly run" in out
    # Device credentials: created+attached in the source -> ACTIVE and attached in the
    # destination; a revocation and a policy change follow through the streaming path.
    assert "3 ACTIVE (same ids), 3 attached" in out
    assert "REVOKED in the destination" in out
    assert "3c. onboarding streamed: CA ACTIVE (SNI_ONLY" in out
    assert (
        "role alias device-credentials → arn:aws:iam::123456789012:role/iot-device-credentials "
        "(3600 s)" in out
    )
    assert "CA set INACTIVE in the source → INACTIVE in the destination" in out
    assert "arn:aws:iot:eu-west-1:123456789012:topic/telemetry-v2/*" in out
    # Device shadows: a gateway's classic and named shadow, written and changed in the source,
    # are the same in the destination; a hand edit there is step 5's shadow drift
    assert (
        "3d. device shadows streamed: gateway-01's classic and config shadows written and changed "
        'in the source → in the destination the same: classic desired {"interval":60,'
        '"mode":"boost"} reported {"fw":"1.4","mode":"eco"}, config desired {"uplink":"lte"}' in out
    )
    assert "a destination-only thing, a hand-edited shadow" in out
    assert "1 shadow changed" in out
    # Readiness: every device ready, then the one broken by hand named with the fix
    assert (
        "7. iot-crr readiness --publish 'telemetry-v2/{thing}': us-east-1 → eu-west-1: ready: 3 of 3"
        in out
    )
    assert "new-device-1: certificate " in out and "is INACTIVE in eu-west-1" in out
    broken = json.loads((tmp_path / "readiness-not-ready.json").read_text())
    assert [d["thing"] for d in broken["devices"] if not d["ready"]] == ["new-device-1"]
    assert [line for line in out.splitlines() if '"_aws"' in line] == []
    assert any('"_aws"' in line for line in FUNCTION_LOG.lines())

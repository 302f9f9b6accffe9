"""The demo's step 7 (``sandbox.demo``): ``iot-crr readiness`` on the demo's devices, ready in
the destination; then a hand edit there that readiness names with the fix, undone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconcile.readiness.assess import assess
from reconcile.readiness.devices import Probes
from reconcile.readiness.report import ReadinessReport, headline
from reconcile.readiness.report import render as render_readiness
from sandbox.stack import Sandbox

# The device policy's topic after step 3b (sandbox.demo_devices).
READINESS_PUBLISH = "telemetry-v2/{thing}"


def readiness(box: Sandbox, out: Path, *, echo: Callable[[str], None]) -> bool:
    """Step 7: ``iot-crr readiness`` on the demo's devices (ready: exit 0); then a hand edit in
    the destination, a device's certificate set INACTIVE, which readiness names with the fix;
    then the certificate set ACTIVE again. True when both answers are as expected."""
    regions = (box.source_region, box.destination_region)
    probes = Probes(publish=(READINESS_PUBLISH,))

    def check(stem: str) -> ReadinessReport:
        report = assess(box.client, regions, probes)
        for fmt, suffix in (("json", "json"), ("markdown", "md"), ("html", "html")):
            (out / f"{stem}.{suffix}").write_text(render_readiness(report, fmt))
        return report

    ready = check("readiness")
    command = f"iot-crr readiness --publish '{READINESS_PUBLISH}'"
    echo(f"7. {command}: {headline(ready)} (exit {0 if ready.ready else 1})")
    destination = box.iot(box.destination_region)
    broken = "new-device-1"
    (principal,) = destination.list_thing_principals(thingName=broken)["principals"]
    certificate = principal.rpartition("/")[2]
    destination.update_certificate(certificateId=certificate, newStatus="INACTIVE")
    try:
        not_ready = check("readiness-not-ready")
    finally:
        destination.update_certificate(certificateId=certificate, newStatus="ACTIVE")
    echo(
        f"   hand edit in {box.destination_region}: {broken}'s certificate INACTIVE → "
        f"{headline(not_ready)} (exit {0 if not_ready.ready else 1})"
    )
    for device in not_ready.not_ready:
        echo(f"   {device.thing}: {device.reasons[0]}")
    echo("   certificate set ACTIVE again; reports in readiness.html, readiness-not-ready.html")
    return ready.ready and [d.thing for d in not_ready.not_ready] == [broken]

"""`iot-crr doctor`: its comparison, a pure function over the two regions' configurations, and
the command's options and errors, which are every command's."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from pipeline.eventconfig import REGISTRY_EVENT_TYPES
from reconcile.cli import main
from reconcile.context import Factory
from reconcile.doctor import findings, render

ON = dict.fromkeys(REGISTRY_EVENT_TYPES, True)
OFF = dict.fromkeys(REGISTRY_EVENT_TYPES, False)


def _indexing(mode: str = "OFF", **extra: Any) -> dict[str, Any]:
    return {"thingIndexingConfiguration": {"thingIndexingMode": mode, **extra}}


def test_ready_when_source_streams_and_the_destination_indexes_as_widely() -> None:
    found = findings(
        "a", "b", {"a": ON, "b": ON}, {"a": _indexing("REGISTRY"), "b": _indexing("REGISTRY")}
    )
    assert found == []
    assert "ready" in render("a", "b", found)


def test_source_without_registry_events_is_an_error_naming_the_fix() -> None:
    (finding,) = findings("a", "b", {"a": OFF, "b": ON}, {"a": _indexing(), "b": _indexing()})
    assert finding.level == "error"
    assert finding.region == "a"
    assert finding.fix == "iot-crr enable-events --region a"


def test_destination_without_events_is_an_error_as_the_failover_needs_them() -> None:
    # The README and the deploy guide enable events in both regions, and a failover records the
    # DR region's changes through them (docs/failover.md): not "only for active-active".
    (finding,) = findings("a", "b", {"a": ON, "b": OFF}, {"a": _indexing(), "b": _indexing()})
    assert (finding.level, finding.region) == ("error", "b")
    assert "failover" in finding.problem and "active-active" not in finding.problem


def test_warnings_alone_read_ready_as_the_exit_code_says() -> None:
    found = findings("a", "b", {"a": ON, "b": ON}, {"a": _WIDE_ONLY, "b": _indexing("REGISTRY")})
    assert {f.level for f in found} == {"warning"}
    text = render("a", "b", found)
    assert text.splitlines()[0] == (
        "a -> b: ready (registry events and fleet indexing as needed), 1 warning(s)"
    )
    assert "to fix" not in text and "fix:" not in text
    errors = findings("a", "b", {"a": OFF, "b": ON}, {"a": _WIDE_ONLY, "b": _indexing("REGISTRY")})
    assert render("a", "b", errors).splitlines()[0] == "a -> b: 1 to fix, 1 warning(s)"


_WIDE_ONLY = _indexing("REGISTRY_AND_SHADOW")


_WIDE = _indexing(
    "REGISTRY_AND_SHADOW",
    thingConnectivityIndexingMode="STATUS",
    customFields=[{"name": "attributes.floor", "type": "Number"}],
)


def test_narrower_destination_index_and_missing_custom_fields_are_errors() -> None:
    indexing = {"a": _WIDE, "b": _indexing("REGISTRY")}
    found = findings("a", "b", {"a": ON, "b": ON}, indexing, dynamic_groups=["hot"])
    problems = " | ".join(f.problem for f in found)
    assert [f.level for f in found] == ["error", "error", "error"]
    assert "thingIndexingMode=REGISTRY" in problems
    assert "thingConnectivityIndexingMode=OFF" in problems
    assert "attributes.floor:Number" in problems
    assert "dynamic thing group(s) (hot)" in problems


def test_a_narrower_index_without_dynamic_groups_is_only_a_warning() -> None:
    # Nothing of the pipeline needs the destination's index then (issue 22, item 6).
    found = findings("a", "b", {"a": ON, "b": ON}, {"a": _WIDE, "b": _indexing("REGISTRY")})
    assert [f.level for f in found] == ["warning", "warning", "warning"]


def test_dynamic_groups_with_the_destination_index_off_are_an_error_naming_them() -> None:
    # Issue 22, item 6: a lenient sandbox held dynamic groups with fleet indexing off in both
    # regions and the doctor said ready. Dynamic groups need thing indexing in the destination
    # whatever the source's configuration says.
    dynamic = ["cold", "hot", "warm", "windy"]
    for source_mode in ("OFF", "REGISTRY"):
        indexing = {"a": _indexing(source_mode), "b": _indexing("OFF")}
        (finding,) = findings("a", "b", {"a": ON, "b": ON}, indexing, dynamic_groups=dynamic)
        assert (finding.level, finding.region) == ("error", "b")
        assert "4 dynamic thing group(s) (cold, hot, warm, ...)" in finding.problem
        assert finding.fix.endswith("(thingIndexingMode=REGISTRY)")
        assert "to fix" in render("a", "b", [finding])
    indexing = {"a": _indexing("REGISTRY"), "b": _indexing("REGISTRY")}
    assert findings("a", "b", {"a": ON, "b": ON}, indexing, dynamic_groups=dynamic) == []


def test_the_command_reads_the_regions_as_every_command_and_names_the_region_of_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the regions in the environment (SOURCE_REGION, TARGET_REGION, as for the audit) and
    # a source region that refuses the call (a stubbed real client: botocore's answer shape)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("iot", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_event_configurations",
            service_error_code="AccessDeniedException",
            service_message="not allowed",
            http_status_code=403,
        )
        result = CliRunner().invoke(
            main,
            ["doctor"],
            obj=Factory(client=lambda service, region: client),
            env={"SOURCE_REGION": "us-east-1", "TARGET_REGION": "eu-west-1"},
        )
    # THEN one line naming the region and the call, exit 2
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "Error: us-east-1: DescribeEventConfigurations failed: AccessDeniedException: not allowed"
    ]


def test_the_command_checks_its_regions_as_every_command() -> None:
    result = CliRunner().invoke(
        main, ["doctor", "--source-region", "us-east-1"], env={"TARGET_REGION": None}
    )
    assert result.exit_code == 2
    assert "--source-region and --target-region are required" in result.stderr

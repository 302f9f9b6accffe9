"""`iot-crr doctor`'s comparison, as a pure function over the two regions' configurations."""

from __future__ import annotations

from typing import Any

from pipeline.eventconfig import REGISTRY_EVENT_TYPES
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


def test_destination_without_events_is_only_a_warning() -> None:
    (finding,) = findings("a", "b", {"a": ON, "b": OFF}, {"a": _indexing(), "b": _indexing()})
    assert finding.level == "warning"


def test_narrower_destination_index_and_missing_custom_fields_are_errors() -> None:
    source = _indexing(
        "REGISTRY_AND_SHADOW",
        thingConnectivityIndexingMode="STATUS",
        customFields=[{"name": "attributes.floor", "type": "Number"}],
    )
    found = findings("a", "b", {"a": ON, "b": ON}, {"a": source, "b": _indexing("REGISTRY")})
    problems = " | ".join(f.problem for f in found)
    assert [f.level for f in found] == ["error", "error", "error"]
    assert "thingIndexingMode=REGISTRY" in problems
    assert "thingConnectivityIndexingMode=OFF" in problems
    assert "attributes.floor:Number" in problems

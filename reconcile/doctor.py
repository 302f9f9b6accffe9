"""`iot-crr doctor`: a preflight check of the two regions' configuration, before any data flows.

The pipeline needs what AWS leaves off by default:
- registry events in the source region (AWS IoT guide, "Registry events": "These events,
  however, are not available by default"), and in the destination too: during a failover the
  DR region's changes reach the state table as registry events (docs/failover.md), which is
  why the deploy guide enables them in both regions;
- fleet indexing in the destination wherever the source relies on it: dynamic thing groups
  "require fleet indexing enabled" (AWS IoT guide, "Dynamic thing groups":
  https://docs.aws.amazon.com/iot/latest/developerguide/dynamic-thing-groups.html), so a
  dynamic group replicated into a region without the index is refused there (and one whose
  query uses what the destination does not index matches nothing). With dynamic groups in the
  source, a destination index that is off or narrower is an error; without, only a warning
  (fleet-index queries answer differently after a failover, the pipeline is not affected).

``findings`` is the pure comparison; ``dynamic_thing_groups`` lists the source's dynamic groups;
``doctor_command`` reads both regions and prints what to fix. Exit codes like the audit's: 0
nothing to fix, 1 something to fix, 2 error (one line naming the region, as every command's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import click

from pipeline.eventconfig import REGISTRY_EVENT_TYPES, describe_events, indexing_configuration
from pipeline.iot import Iot
from pipeline.kinds import KINDS
from pipeline.model import EntityKind
from reconcile.context import Factory, in_region, pass_factory
from reconcile.exits import EXIT_DRIFT, EXIT_IN_SYNC
from reconcile.options import Regions, region_options

Level = Literal["error", "warning"]

# GetIndexingConfiguration modes, from off to the widest (AWS IoT API Reference,
# ThingIndexingConfiguration).
_THING_MODES = ("OFF", "REGISTRY", "REGISTRY_AND_SHADOW")
_OPTIONAL_MODES = (
    "thingConnectivityIndexingMode",
    "namedShadowIndexingMode",
    "deviceDefenderIndexingMode",
)


@dataclass(frozen=True)
class Finding:
    level: Level
    region: str
    problem: str
    fix: str


def findings(
    source: str,
    target: str,
    events: Mapping[str, Mapping[str, bool]],
    indexing: Mapping[str, Mapping[str, Any]],
    dynamic_groups: Sequence[str] = (),
) -> list[Finding]:
    """What stands between this configuration and a working pipeline (``events`` and
    ``indexing`` by region: DescribeEventConfigurations and GetIndexingConfiguration;
    ``dynamic_groups``: the source's, ``dynamic_thing_groups``)."""
    found: list[Finding] = []
    off = [t for t in REGISTRY_EVENT_TYPES if not events[source].get(t, False)]
    if off:
        found.append(
            Finding(
                "error",
                source,
                f"registry events off: {', '.join(off)} (changes will not stream)",
                f"iot-crr enable-events --region {source}",
            )
        )
    off = [t for t in REGISTRY_EVENT_TYPES if not events[target].get(t, False)]
    if off:
        found.append(
            Finding(
                "error",
                target,
                f"registry events off: {', '.join(off)} (changes made here during a failover "
                "would never reach the state table: docs/failover.md)",
                f"iot-crr enable-events --region {target}",
            )
        )
    found.extend(
        _indexing_findings(source, target, indexing[source], indexing[target], dynamic_groups)
    )
    return found


def _indexing_findings(
    source: str,
    target: str,
    src: Mapping[str, Any],
    dst: Mapping[str, Any],
    dynamic_groups: Sequence[str],
) -> list[Finding]:
    found: list[Finding] = []
    src_things = src.get("thingIndexingConfiguration") or {}
    dst_things = dst.get("thingIndexingConfiguration") or {}
    src_mode = str(src_things.get("thingIndexingMode") or "OFF")
    dst_mode = str(dst_things.get("thingIndexingMode") or "OFF")
    fix = f"aws iot update-indexing-configuration --region {target} ..."
    # Dynamic groups need thing indexing on, whatever the source says (a source cannot hold
    # them without it; a lenient emulation could).
    wanted_mode = max(src_mode, "REGISTRY", key=_rank) if dynamic_groups else src_mode
    level: Level = "error" if dynamic_groups else "warning"
    if dynamic_groups:
        shown = ", ".join(dynamic_groups[:3]) + (", ..." if len(dynamic_groups) > 3 else "")
        effect = (
            f"the source's {len(dynamic_groups)} dynamic thing group(s) ({shown}) cannot be "
            "created or evaluated here"
        )
    else:
        effect = "fleet-index queries answer differently here after a failover"
    if _rank(dst_mode) < _rank(wanted_mode):
        found.append(
            Finding(
                level,
                target,
                f"fleet indexing thingIndexingMode={dst_mode}, the source has {src_mode}: {effect}",
                f"{fix} (thingIndexingMode={wanted_mode})",
            )
        )
    for mode in _OPTIONAL_MODES:
        wanted, have = src_things.get(mode) or "OFF", dst_things.get(mode) or "OFF"
        if wanted != "OFF" and have == "OFF":
            found.append(
                Finding(
                    level,
                    target,
                    f"fleet indexing {mode}=OFF, the source has {wanted}: queries using it "
                    "match nothing here",
                    f"{fix} ({mode}={wanted})",
                )
            )
    missing = sorted(
        f"{name}:{kind}" for name, kind in _custom_fields(src_things) - _custom_fields(dst_things)
    )
    if missing:
        found.append(
            Finding(
                level,
                target,
                f"custom index fields missing: {', '.join(missing)}",
                f"{fix} (customFields as in {source})",
            )
        )
    src_groups = (src.get("thingGroupIndexingConfiguration") or {}).get("thingGroupIndexingMode")
    dst_groups = (dst.get("thingGroupIndexingConfiguration") or {}).get("thingGroupIndexingMode")
    if (src_groups or "OFF") != "OFF" and (dst_groups or "OFF") == "OFF":
        found.append(
            Finding(
                "warning",
                target,
                "thing group indexing is off, the source has it on",
                f"{fix} (thingGroupIndexingMode=ON)",
            )
        )
    return found


def _rank(mode: str) -> int:
    return _THING_MODES.index(mode) if mode in _THING_MODES else 0


def _custom_fields(configuration: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(field.get("name")), str(field.get("type")))
        for field in configuration.get("customFields") or []
    }


def dynamic_thing_groups(iot_client: Any) -> list[str]:
    """The region's dynamic thing groups. They are never part of a hierarchy (AWS IoT guide,
    "Dynamic thing groups"), so only root groups are described: ListThingGroups with
    ``recursive`` false ("If true, return child groups as well", AWS IoT API Reference), then
    the thing group kind's read (DescribeThingGroup: a ``queryString`` makes it dynamic)."""
    iot = Iot(iot_client)
    groups = KINDS[EntityKind.THING_GROUP]
    names = (str(listed["groupName"]) for listed in iot.items("ListThingGroups", recursive=False))
    return sorted(
        name for name in names if (state := groups.read(iot, name)) is not None and state["query"]
    )


def render(source: str, target: str, found: list[Finding]) -> str:
    """The report; its first line agrees with the exit code: errors are "to fix" (exit 1),
    warnings alone leave the regions "ready" (exit 0)."""
    errors = sum(f.level == "error" for f in found)
    warnings = len(found) - errors
    noted = f"{warnings} warning(s)" if warnings else ""
    if errors:
        head = f"{errors} to fix" + (f", {noted}" if noted else "")
    else:
        head = "ready (registry events and fleet indexing as needed)" + (
            f", {noted}" if noted else ""
        )
    lines = [f"{source} -> {target}: {head}"]
    for finding in found:
        lines.append(f"{finding.level:<7}  {finding.region}  {finding.problem}")
        lines.append(
            f"         {'fix' if finding.level == 'error' else 'if needed'}: {finding.fix}"
        )
    return "\n".join(lines)


@click.command(name="doctor")
@region_options
@pass_factory
def doctor_command(factory: Factory, regions: Regions) -> None:
    """Check registry events and fleet indexing in both regions; say what to fix.

    Exit codes: 0 ready, 1 something to fix (errors only; warnings alone exit 0), 2 error.

    \b
    Example:
      iot-crr doctor --source-region us-east-1 --target-region eu-west-1
    """
    source, target = regions.pair()
    events: dict[str, dict[str, bool]] = {}
    indexing: dict[str, dict[str, Any]] = {}
    for region in (source, target):
        with in_region(region):
            iot = factory.aws_client("iot", region)
            events[region] = describe_events(iot)
            indexing[region] = indexing_configuration(iot)
    with in_region(source):
        dynamic = dynamic_thing_groups(factory.aws_client("iot", source))
    found = findings(source, target, events, indexing, dynamic)
    click.echo(render(source, target, found))
    to_fix = any(f.level == "error" for f in found)
    raise click.exceptions.Exit(EXIT_DRIFT if to_fix else EXIT_IN_SYNC)

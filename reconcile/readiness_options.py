"""The options of ``iot-crr readiness``: which devices it checks, what it asks each in both
regions, and where its report goes; reaching the command as one ``ReadinessOptions``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from reconcile.options import (
    REGION_OPTIONS,
    REPORT_OPTIONS,
    Regions,
    grouped,
    policy_account_option,
)


@dataclass(frozen=True)
class ReadinessOptions:
    """Which devices ``readiness`` checks and what it asks each (``{thing}``: the thing's name),
    and where its report goes."""

    regions: Regions
    things: tuple[str, ...]
    sample: int | None
    client_id_template: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    receive: tuple[str, ...]
    policy_accounts: Mapping[str, str]
    fmt: str
    output: Path | None


def _readiness_options(
    *,
    source_region: str | None,
    target_region: str | None,
    things: tuple[str, ...],
    sample: int | None,
    client_id_template: str,
    publish: tuple[str, ...],
    subscribe: tuple[str, ...],
    receive: tuple[str, ...],
    policy_accounts: dict[str, str],
    fmt: str,
    output: Path | None,
) -> ReadinessOptions:
    if things and sample is not None:
        raise click.UsageError("--thing and --sample are alternatives; pick one")
    return ReadinessOptions(
        Regions(source_region, target_region),
        things,
        sample,
        client_id_template,
        publish,
        subscribe,
        receive,
        policy_accounts,
        fmt,
        output,
    )


readiness_options = grouped(
    "readiness",
    _readiness_options,
    *REGION_OPTIONS,
    click.option(
        "--thing",
        "things",
        multiple=True,
        metavar="NAME",
        help="Check this thing's device(s), one per certificate (repeatable). Default: every "
        "thing with a certificate.",
    ),
    click.option(
        "--sample",
        type=click.IntRange(min=1),
        metavar="N",
        help="Check the things of N certificates picked at random.",
    ),
    click.option(
        "--client-id-template",
        default="{thing}",
        show_default=True,
        help="The MQTT client id each device connects with.",
    ),
    click.option(
        "--publish", multiple=True, metavar="TOPIC", help="Ask iot:Publish on TOPIC (repeatable)."
    ),
    click.option(
        "--subscribe",
        multiple=True,
        metavar="FILTER",
        help="Ask iot:Subscribe on the topic filter FILTER (repeatable).",
    ),
    click.option(
        "--receive", multiple=True, metavar="TOPIC", help="Ask iot:Receive on TOPIC (repeatable)."
    ),
    policy_account_option,
    *REPORT_OPTIONS,
)

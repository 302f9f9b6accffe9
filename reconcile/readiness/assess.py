"""One readiness assessment, composed once for the command and the nightly job: read both
regions (``gather``), decide (``devices``, ``checks``), report (``report``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from pipeline.aws import AwsCalls, ClientFactory
from pipeline.clock import Clock, now_ms
from pipeline.iot import Iot
from pipeline.policyrewrite import ArnMapping
from reconcile.context import in_region
from reconcile.ratelimit import RateLimiter
from reconcile.readiness.checks import account_checks
from reconcile.readiness.devices import Probes, verdict
from reconcile.readiness.gather import (
    WORKERS,
    DeviceReader,
    account_facts,
    applied_quotas,
    lambda_function_exists,
    select_devices,
)
from reconcile.readiness.report import ReadinessReport


def assess(
    client: ClientFactory,
    regions: tuple[str, str],
    probes: Probes,
    *,
    things: Sequence[str] = (),
    sample: int | None = None,
    rng: random.Random | None = None,
    accounts: Mapping[str, str] | None = None,
    clock: Clock = now_ms,
    limiter: Callable[[], RateLimiter] = RateLimiter,
    workers: int = WORKERS,
    refused: Mapping[str, str] | None = None,
) -> ReadinessReport:
    """Devices (``things`` named, else every certificate's things, or a ``sample`` of the
    certificates) and account checks, ``regions`` = (source, destination); ``accounts`` maps
    source to destination accounts in ARNs (``POLICY_ACCOUNT_MAP``); ``refused``: certificate
    id -> why the destination refused to register it (the state table's records,
    ``certificate_refusal.refusals``). Errors name the region."""
    source, destination = regions
    accounts = dict(accounts or {})
    iot = {
        region: Iot(client("iot", region), factory=client, before=limiter().acquire)
        for region in regions
    }
    others = AwsCalls()  # Lambda and Service Quotas: a few calls per region
    facts = {}
    for region in regions:
        with in_region(region):
            exists = lambda_function_exists(others, client("lambda", region))
            quotas = applied_quotas(others, client("service-quotas", region))
            facts[region] = account_facts(iot[region], exists, region, quotas)
    with in_region(source):
        selection = select_devices(iot[source], things, sample, rng or random.Random())
    reader = DeviceReader(iot[source], iot[destination], regions, probes, refused)
    devices = reader.facts(selection.devices, workers)
    mapping = ArnMapping({source: destination}, accounts)
    return ReadinessReport(
        source,
        destination,
        clock(),
        tuple(verdict(device, mapping) for device in devices),
        tuple(account_checks(facts[source], facts[destination], accounts)),
        selection.skipped,
        calls={region: dict(iot[region].calls) for region in regions},
    )

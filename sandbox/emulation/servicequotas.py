"""Service Quotas' ListServiceQuotas for AWS IoT Core (``iotcore``), which moto lacks (moto 5.2
serves only default VPC quotas): ``iot-crr readiness`` compares the applied quotas of both
regions.

AWS (Service Quotas API Reference, ListServiceQuotas): "Lists the applied quota values for the
specified AWS service. For some quotas, only the default values are available. If the applied
quota value is not available for a quota, the quota is not retrieved." Which IoT Core quotas an
account lists is only an account's to say (an assumption here: none, until a test or the demo
applies a value with ``apply_quota``); an unknown service code is AWS's NoSuchResourceException.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.servicequotas.exceptions import NoSuchResource
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

SERVICE_CODE = "iotcore"


def _applied(backend: ServiceQuotasBackend) -> dict[str, dict[str, Any]]:
    applied: dict[str, dict[str, Any]] = vars(backend).setdefault("iot_crr_applied", {})
    return applied


def _list_service_quotas(self: ServiceQuotasBackend, service_code: str) -> list[dict[str, Any]]:
    if service_code != SERVICE_CODE:
        raise NoSuchResource
    return [dict(quota) for _, quota in sorted(_applied(self).items())]


def _response_list_service_quotas(self: ServiceQuotasResponse) -> str:
    params = json.loads(self.body)
    quotas = _list_service_quotas(self.backend, str(params.get("ServiceCode")))
    return json.dumps({"Quotas": quotas})  # one page: a handful of applied quotas


def apply_quota(
    region: str, code: str, name: str, value: float, account: str = DEFAULT_ACCOUNT_ID
) -> None:
    """An applied IoT Core quota in ``region`` (as an approved increase makes one)."""
    backend = servicequotas_backends[account][region]
    _applied(backend)[code] = {
        "ServiceCode": SERVICE_CODE,
        "ServiceName": "AWS IoT Core",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": float(value),
        "Adjustable": True,
        "GlobalQuota": False,
    }


def clear_quotas(region: str, account: str = DEFAULT_ACCOUNT_ID) -> None:
    """No applied IoT Core quota in ``region`` (the default)."""
    _applied(servicequotas_backends[account][region]).clear()


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {"list_service_quotas": _list_service_quotas}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "list_service_quotas": _response_list_service_quotas
}

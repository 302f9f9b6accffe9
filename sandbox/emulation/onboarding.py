"""The onboarding kinds' emulation in one list: CA certificates (``cacertificates``), device
certificates registered with or without them (``devicecertificates``), provisioning templates (``provisioning``), role aliases (``rolealiases``)
and custom authorizers (``authorizers``). ``install`` applies these patches to moto after the
others; each module says what it emulates and on which AWS source (docs/onboarding-kinds.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.emulation import (
    authorizers,
    cacertificates,
    devicecertificates,
    provisioning,
    rolealiases,
)

BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    **devicecertificates.BACKEND_PATCHES,
    **cacertificates.BACKEND_PATCHES,
    **provisioning.BACKEND_PATCHES,
    **rolealiases.BACKEND_PATCHES,
    **authorizers.BACKEND_PATCHES,
}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    **cacertificates.RESPONSE_PATCHES,
    **provisioning.RESPONSE_PATCHES,
    **rolealiases.RESPONSE_PATCHES,
    **authorizers.RESPONSE_PATCHES,
}
CLASS_PATCHES: tuple[tuple[type, str, Callable[..., Any]], ...] = devicecertificates.CLASS_PATCHES
# The calls of a replicated kind that plain moto does not implement at all (a snapshot lists
# every kind): served to in-process ``mock_aws`` users too (``install.served_in_process``).
# None of them calls moto's own method, so installing the whole emulation over them is safe.
MISSING_IN_MOTO: tuple[tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]], ...] = (
    (authorizers.BACKEND_PATCHES, authorizers.RESPONSE_PATCHES),
    (provisioning.BACKEND_PATCHES, provisioning.RESPONSE_PATCHES),
    ({}, {"list_ca_certificates": cacertificates.RESPONSE_PATCHES["list_ca_certificates"]}),
)

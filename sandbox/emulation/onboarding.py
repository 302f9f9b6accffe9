"""The onboarding kinds' emulation in one list: CA certificates and certificate registration
(``cacertificates``), provisioning templates (``provisioning``), role aliases (``rolealiases``)
and custom authorizers (``authorizers``). ``install`` applies these patches to moto after the
others; each module says what it emulates and on which AWS source (docs/onboarding-kinds.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.emulation import authorizers, cacertificates, provisioning, rolealiases

BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
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
CLASS_PATCHES: tuple[tuple[type, str, Callable[..., Any]], ...] = cacertificates.CLASS_PATCHES

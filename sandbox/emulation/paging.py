"""Pages of the list calls the sandbox serves itself (``sandbox.emulation.onboarding``).

AWS IoT's list calls page with a marker (``marker``/``nextMarker``, ``pageSize``: ListCACertificates,
ListCertificatesByCA, ListRoleAliases, ListAuthorizers) or a token (``nextToken``, ``maxResults``:
ListProvisioningTemplates, ListProvisioningTemplateVersions); botocore's iot service model and
paginators name them (a page holds 1..250 items; the sandbox does not check the bound). A marker matches the model's pattern
``[A-Za-z0-9+/]+={0,2}`` (base64). [assumption] What a marker encodes is AWS's own business: here,
the offset of the page's first item in the listing's order, so a listing changed between two
calls may skip or repeat an item, as any offset paging does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from moto.iot.exceptions import InvalidRequestException

T = TypeVar("T")

# ListCACertificates: "The results are paginated with a default page size of 25" (AWS IoT API
# Reference). [assumption] The other listings' defaults are not documented: the same 25, so a
# client that never pages fails on the sandbox first.
DEFAULT_PAGE_SIZE = 25


def page(items: Sequence[T], size: int | None, marker: str | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (already in the listing's order) and the marker of the next page,
    ``None`` after the last."""
    start = _offset(marker)
    end = start + (size or DEFAULT_PAGE_SIZE)
    following = _marker(end) if end < len(items) else None
    return list(items[start:end]), following


def _marker(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        return int(base64.b64decode(marker, validate=True).decode())
    except (binascii.Error, ValueError) as error:
        raise InvalidRequestException(f"marker {marker!r} is not one this listing gave") from error

"""The one IoT adapter: every AWS IoT call of the pipeline and of reconciliation goes through here.

One ``Iot`` per region and purpose, wrapping that region's boto3 client (retries are botocore's,
configured in ``pipeline.aws``). It knows no entity kind: the kinds (``pipeline.kinds``) name
the operations and translate AWS's shapes; this class makes the calls. The Device Shadow
service's operations (GetThingShadow, UpdateThingShadow, DeleteThingShadow,
ListNamedShadowsForThing) are the data plane's, ``iot-data`` in botocore: they go to that
region's iot-data client (made when first needed by ``pipeline.aws.data_client``: by the
``factory`` the caller's clients come from, if one was injected), the same way.

- ``call(op, **params)``: one call, by its API operation name (``"DescribeThing"``);
- ``maybe(op, **params)``: the same, ``None`` when the resource does not exist;
- ``pages(op, **params)``: every page of a listing, as its items, driven by botocore's
  paginator for ``op`` (its tokens, result key and page-size parameter come from botocore's
  paginator model for IoT, ``paginators-1.json``);
- ``apply(calls)``: a list of ``Call`` values (``pipeline.kinds.base``) in order.

Every request, each page included, goes through ``pipeline.aws.AwsCalls``: counted by operation
(``calls``), paced by ``before`` (the snapshot's rate limiter), botocore's errors turned into
the project's retryable/permanent ones.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore import xform_name
from botocore.loaders import create_loader
from botocore.paginate import Paginator

from pipeline.aws import AwsCalls, ClientFactory, data_client

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

PAGE_SIZE = 250  # the documented maximum of every IoT List* call used here

# The iot-data listing botocore's iot-data paginators lack (they have ListRetainedMessages'). AWS
# IoT API Reference, ListNamedShadowsForThing: ``nextToken`` in and out, ``pageSize`` 1-100,
# the shadow names in ``results``.
_DATA_PAGING: dict[str, dict[str, Any]] = {
    "ListNamedShadowsForThing": {
        "input_token": "nextToken",
        "output_token": "nextToken",
        "limit_key": "pageSize",
        "result_key": "results",
    }
}
# The iot-data listings' page maxima (botocore's iot-data model: ListRetainedMessages'
# ``maxResults`` 1-200).
_PAGE_MAX = {"ListNamedShadowsForThing": 100, "ListRetainedMessages": 200}

# A delete, detach or remove of something already gone has reached its goal (AWS's DeleteThing
# succeeds silently too, AWS IoT API Reference): such calls are made with ``maybe``.
_DONE_WHEN_ABSENT = ("Delete", "Detach", "Remove")


@dataclass(frozen=True)
class Call:
    """One call to make (``op`` is the API operation name): the entity kinds' decisions are
    lists of these (``pipeline.kinds``), which ``Iot.apply`` makes."""

    op: str
    params: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _paginators() -> dict[str, Any]:
    """botocore's paginator models for IoT and iot-data: per operation, its tokens, result and
    limit keys."""
    loader = create_loader()
    return {
        operation: config
        for service in ("iot", "iot-data")
        for operation, config in loader.load_service_model(service, "paginators-1")[
            "pagination"
        ].items()
    }


@functools.cache
def _data_operations() -> frozenset[str]:
    """The operations of botocore's iot-data model (the data plane's)."""
    model: dict[str, Any] = create_loader().load_service_model("iot-data", "service-2")
    return frozenset(model["operations"])


def _paging(operation: str) -> dict[str, Any]:
    config: dict[str, Any] = _DATA_PAGING.get(operation) or _paginators()[operation]
    return config


class Iot:
    """One region's IoT API. ``before(operation)`` runs before every request (a rate limiter);
    ``page_size`` exists so tests can force many pages."""

    def __init__(
        self,
        client: IoTClient,
        *,
        factory: ClientFactory | None = None,
        before: Callable[[str], object] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}, got {page_size}")
        self.client = client
        # The factory the caller's clients come from, if one was injected: the iot-data client
        # is made by it too (``pipeline.aws.data_client``), when first needed.
        self._factory = factory
        self._data: Any = None
        self._aws = AwsCalls(before)
        self._page_size = page_size

    @property
    def calls(self) -> Counter[str]:
        """API calls made, by operation (the benchmarks' and the operator's evidence of cost)."""
        return self._aws.counts

    def call(self, op: str, /, **params: Any) -> Any:
        return self._aws(op, self._method(op), **params)

    def maybe(self, op: str, /, **params: Any) -> Any:
        """The call's answer; ``None`` when the resource does not exist."""
        return self._aws.maybe(op, self._method(op), **params)

    def pages(self, op: str, /, **params: Any) -> Iterator[list[Any]]:
        """The items of each page of listing ``op``, one request per page, lazily."""
        config = _paging(op)
        method = self._method(op)

        def page(**request: Any) -> Any:
            return self._aws(op, method, **request)

        # No PageSize (which needs the operation model): the limit key is set below. (The stubs
        # type ``method`` as a name; botocore's own get_paginator passes the bound method.)
        paginator: Paginator[dict[str, Any]] = Paginator(page, config, None)  # type: ignore[arg-type]
        size = min(self._page_size, _PAGE_MAX.get(op, PAGE_SIZE))
        for response in paginator.paginate(**params, **{config["limit_key"]: size}):
            yield list(response.get(config["result_key"]) or [])

    def items(self, op: str, /, **params: Any) -> Iterator[Any]:
        for items in self.pages(op, **params):
            yield from items

    def apply(self, calls: Iterable[Call]) -> None:
        """Make ``calls`` in order; a delete, detach or remove of something gone is fine."""
        for call in calls:
            if call.op.startswith(_DONE_WHEN_ABSENT):
                self.maybe(call.op, **call.params)
            else:
                self.call(call.op, **call.params)

    def _method(self, op: str) -> Callable[..., Any]:
        # The client's methods are the operations' names as botocore transforms them.
        method: Callable[..., Any] = getattr(self._client_for(op), xform_name(op))
        return method

    def _client_for(self, op: str) -> Any:
        if op not in _data_operations():
            return self.client
        if self._data is None:
            self._data = data_client(self.client, self._factory)
        return self._data

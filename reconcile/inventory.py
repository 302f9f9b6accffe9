"""The read-only IoT adapter behind a snapshot: the only module in ``reconcile`` that calls IoT.

Flow: ``take_snapshot`` (reconcile.snapshot) asks an ``Inventory`` for each entity kind and
builds DataFrames from the plain dicts it yields. The inventory uses the cheapest calls
(docs/design.md, "Reconciliation"): ``ListThings`` at 250 a page, ``ListThingTypes``, ``ListThingGroups`` plus one
``DescribeThingGroup`` per group, ``ListThingsInThingGroup`` per static group,
``ListBillingGroups`` plus ``DescribeBillingGroup`` and ``ListThingsInBillingGroup`` per billing
group; never one call per Thing. Every call goes through ``pipeline.aws.AwsCalls``: it first
takes a token from the ``RateLimiter`` and is counted in ``calls`` (the benchmark's and the
operator's evidence of cost). One inventory may
serve several listings at once from different threads (``take_snapshot`` runs them
concurrently): boto3 clients are thread-safe ("Multithreading or multiprocessing with clients",
https://boto3.amazonaws.com/v1/documentation/api/latest/guide/clients.html), and the counters
here are updated under a lock.

Listings survive concurrent deletes: a ``nextToken`` can point at an entity deleted between two
pages (moto's token is the next item's ARN and fails with ``InvalidToken``); that listing starts
again from the first page and skips names it already yielded. Other failures are the project's
classified errors (``pipeline.errors``), raised ``from`` botocore's.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pipeline.aws import AwsCalls
from pipeline.errors import AwsError, AwsRequestError, NotFoundError
from pipeline.iot import thing_group_state
from pipeline.policyrewrite import canonical_document
from pipeline.security import canonical_pem
from reconcile.ratelimit import RateLimiter

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

PAGE_SIZE = 250  # the documented maximum for every List* call used here
MAX_RESTARTS = 5  # a listing that keeps losing its token is a real fault, not churn

# AWS IoT documents no token error code; moto uses ``InvalidToken``. Accept the likely spellings.
_INVALID_TOKEN_CODES = frozenset({"InvalidToken", "InvalidTokenException"})


class ListingRestartError(AwsRequestError):
    """A listing lost its page token more than ``MAX_RESTARTS`` times (churn that never settles)."""


# Descriptions: an empty string and no description are the same state (AWS and moto differ in
# which one they return), so both are read as None and never show up as drift.


def _canonical_attributes(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}


class Inventory:
    """Read-only listings of one region's registry, as plain dicts.

    ``client`` is a boto3 IoT client for the region (``pipeline.aws.client("iot", region)``);
    ``limiter`` paces the calls. ``page_size`` exists so tests can force many pages.
    """

    def __init__(
        self, client: IoTClient, limiter: RateLimiter | None = None, *, page_size: int = PAGE_SIZE
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}, got {page_size}")
        self._client = client
        self._limiter = limiter or RateLimiter()
        self._page_size = page_size
        self._aws = AwsCalls(before=self._limiter.acquire)
        self.restarts: Counter[str] = Counter()
        self._restarts_lock = threading.Lock()

    @property
    def calls(self) -> Counter[str]:
        return self._aws.counts

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    # -- listings -------------------------------------------------------------------------

    def things(self) -> Iterator[dict[str, Any]]:
        """Every thing: ``name``, ``thing_type`` (or None), ``attributes`` (dict), ``version``.

        No billing group: ListThings does not return it in AWS (moto does; we do not rely on
        it). ``billing_memberships`` supplies it.
        """
        for raw in self._paginate("ListThings", self._client.list_things, "things", {}):
            yield {
                "name": raw["thingName"],
                "thing_type": raw.get("thingTypeName") or None,
                "attributes": _canonical_attributes(raw.get("attributes")),
                "version": raw.get("version"),
            }

    def thing_types(self) -> Iterator[dict[str, Any]]:
        """Every thing type: ``name``, ``description``, ``searchable_attributes``, ``deprecated``,
        ``propagating_attributes`` (``mqtt5Configuration``; AWS IoT API Reference,
        ThingTypeProperties)."""
        for raw in self._paginate(
            "ListThingTypes", self._client.list_thing_types, "thingTypes", {}
        ):
            props = raw.get("thingTypeProperties") or {}
            meta = raw.get("thingTypeMetadata") or {}
            yield {
                "name": raw["thingTypeName"],
                "description": props.get("thingTypeDescription") or None,
                "searchable_attributes": sorted(props.get("searchableAttributes") or []),
                "deprecated": bool(meta.get("deprecated", False)),
                "propagating_attributes": list(
                    (props.get("mqtt5Configuration") or {}).get("propagatingAttributes") or []
                ),
            }

    def thing_groups(self) -> Iterator[dict[str, Any]]:
        """Every thing group, described: ``name``, ``parent``, ``description``, ``attributes``,
        ``version`` and ``query`` (a dict for dynamic groups, else None).

        A group deleted between the listing and its describe is skipped: it no longer exists,
        which is exactly what the snapshot should say.
        """
        listed = self._paginate(
            "ListThingGroups", self._client.list_thing_groups, "thingGroups", {}
        )
        for entry in listed:
            name = entry["groupName"]
            try:
                raw = self._aws(
                    "DescribeThingGroup", self._client.describe_thing_group, thingGroupName=name
                )
            except NotFoundError:
                continue
            state = thing_group_state(raw)
            yield {
                "name": name,
                "parent": state["parent"],
                "description": state["description"],
                "attributes": _canonical_attributes(state["attributes"]),
                "version": raw.get("version"),
                "query": state["query"],
            }

    def billing_groups(self) -> Iterator[dict[str, Any]]:
        """Every billing group, described: ``name``, ``description``."""
        listed = self._paginate(
            "ListBillingGroups", self._client.list_billing_groups, "billingGroups", {}
        )
        for entry in listed:
            name = entry["groupName"]
            try:
                raw = self._aws(
                    "DescribeBillingGroup",
                    self._client.describe_billing_group,
                    billingGroupName=name,
                )
            except NotFoundError:
                continue
            props = raw.get("billingGroupProperties") or {}
            yield {"name": name, "description": props.get("billingGroupDescription") or None}

    def memberships(self, groups: Iterable[str]) -> Iterator[dict[str, str]]:
        """``{"thing", "group"}`` for the direct (non-recursive) members of each named group.

        Pass static groups only: a dynamic group's members are computed per region and never
        replicated. A group deleted meanwhile yields nothing.
        """
        for group in groups:
            try:
                for thing in self._paginate(
                    "ListThingsInThingGroup",
                    self._client.list_things_in_thing_group,
                    "things",
                    {"thingGroupName": group, "recursive": False},
                    key=str,
                ):
                    yield {"thing": thing, "group": group}
            except NotFoundError:
                continue

    def billing_memberships(self, billing_groups: Iterable[str]) -> Iterator[dict[str, str]]:
        """``{"thing", "billing_group"}`` for the things in each named billing group."""
        for group in billing_groups:
            try:
                for thing in self._paginate(
                    "ListThingsInBillingGroup",
                    self._client.list_things_in_billing_group,
                    "things",
                    {"billingGroupName": group},
                    key=str,
                ):
                    yield {"thing": thing, "billing_group": group}
            except NotFoundError:
                continue

    def certificates(self) -> Iterator[dict[str, Any]]:
        """Every certificate, described: ``name`` (its id), ``status``, ``pem`` (canonical)
        and ``things``: ``[{"thing", "exclusive"}]`` attached to it (ListPrincipalThingsV2;
        ``exclusive`` None where the type is not reported). A certificate deleted between the
        listing and its describe is skipped."""
        listed = self._paginate_marker(
            "ListCertificates", self._client.list_certificates, "certificates", {}
        )
        for entry in listed:
            cert_id = entry["certificateId"]
            try:
                described = self._aws(
                    "DescribeCertificate", self._client.describe_certificate, certificateId=cert_id
                )["certificateDescription"]
                things = [
                    {
                        "thing": raw["thingName"],
                        "exclusive": _exclusive(raw.get("thingPrincipalType")),
                    }
                    for raw in self._paginate(
                        "ListPrincipalThingsV2",
                        self._client.list_principal_things_v2,
                        "principalThingObjects",
                        {"principal": described["certificateArn"]},
                    )
                ]
            except NotFoundError:
                continue
            yield {
                "name": cert_id,
                "status": described["status"],
                "pem": canonical_pem(described["certificatePem"]),
                "things": things,
            }

    def policies(self) -> Iterator[dict[str, Any]]:
        """Every policy: ``name``, ``document`` (the default version's, canonical JSON) and
        ``targets``: ``cert/<id>`` and ``thinggroup/<name>`` (other principals are not
        replicated). A policy deleted meanwhile is skipped."""
        listed = self._paginate_marker("ListPolicies", self._client.list_policies, "policies", {})
        for entry in listed:
            name = entry["policyName"]
            try:
                policy = self._aws("GetPolicy", self._client.get_policy, policyName=name)
                targets = [
                    target
                    for arn in self._paginate_marker(
                        "ListTargetsForPolicy",
                        self._client.list_targets_for_policy,
                        "targets",
                        {"policyName": name},
                    )
                    if (target := policy_target_of(str(arn))) is not None
                ]
            except NotFoundError:
                continue
            yield {
                "name": name,
                "document": canonical_document(policy["policyDocument"]),
                "targets": targets,
            }

    # -- plumbing -------------------------------------------------------------------------

    def _paginate_marker(
        self,
        operation: str,
        method: Callable[..., Any],
        result_key: str,
        params: dict[str, Any],
    ) -> Iterator[Any]:
        """Every item of a ``marker``/``nextMarker`` listing (ListCertificates, ListPolicies,
        ListTargetsForPolicy: botocore's IoT model)."""
        marker: str | None = None
        while True:
            request = dict(params, pageSize=self._page_size)
            if marker:
                request["marker"] = marker
            page = self._aws(operation, method, **request)
            yield from page.get(result_key) or []
            marker = page.get("nextMarker")
            if not marker:
                return

    def _paginate(
        self,
        operation: str,
        method: Callable[..., Any],
        result_key: str,
        params: dict[str, Any],
        key: Callable[[Any], str] | None = None,
    ) -> Iterator[Any]:
        """Yield every item of a ``nextToken`` listing, restarting when a token goes stale."""
        name_of = key or _item_name
        seen: set[str] = set()
        restarts = 0
        token: str | None = None
        while True:
            request = dict(params, maxResults=self._page_size)
            if token:
                request["nextToken"] = token
            try:
                page = self._aws(operation, method, **request)
            except AwsError as error:
                if not (token and error.code in _INVALID_TOKEN_CODES):
                    raise
                restarts += 1
                with self._restarts_lock:
                    self.restarts[operation] += 1
                if restarts > MAX_RESTARTS:
                    raise ListingRestartError(
                        operation, error.code, f"page token lost {restarts} times"
                    ) from error.__cause__  # botocore's last refusal, as for every AWS error
                token = None  # start again; ``seen`` drops what was already yielded
                continue
            for item in page.get(result_key) or []:
                name = name_of(item)
                if name in seen:
                    continue
                seen.add(name)
                yield item
            token = page.get("nextToken")
            if not token:
                return


_CERT_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]+:[^:]+:cert/(?P<id>[0-9a-fA-F]{64})")
_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]+:[^:]+:thinggroup/(?P<name>[^/]+)")


def policy_target_of(arn: str) -> str | None:
    """``cert/<id>`` or ``thinggroup/<name>`` for a policy target's ARN; None for others."""
    if (cert := _CERT_ARN.fullmatch(arn)) is not None:
        return f"cert/{cert['id'].lower()}"
    if (group := _GROUP_ARN.fullmatch(arn)) is not None:
        return f"thinggroup/{group['name']}"
    return None


def _exclusive(principal_type: Any) -> bool | None:
    return None if principal_type is None else principal_type == "EXCLUSIVE_THING"


def _item_name(item: dict[str, Any]) -> str:
    for field in ("thingName", "thingTypeName", "groupName"):
        if field in item:
            return str(item[field])
    raise KeyError(f"listing item without a name: {sorted(item)}")

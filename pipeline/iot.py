"""IoT registry adapter: the only code in the pipeline that calls the AWS IoT API.

One ``IotRegistry`` per region, wrapping that region's boto3 client (retries are botocore's,
configured in ``pipeline.aws``). It speaks the state dicts of ``pipeline.model.STATE_FIELDS``
(``{"thing_type", "attributes", "billing_group"}`` for a thing, and so on), validates names and
values against AWS's documented rules before any call (moto validates nothing), and makes every
call through ``pipeline.aws.AwsCalls`` (counted by operation, botocore's errors turned into the
project's retryable/permanent ones).

Adding a call: a method here that validates its input, calls
``self._aws("OperationName", self._iot.operation_name, **params)`` (``self._aws.maybe`` where a
missing resource is fine) and returns plain dicts, never boto3's response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.aws import AwsCalls
from pipeline.errors import NotFoundError
from pipeline.rules import validate_attributes, validate_description, validate_name

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

PAGE_SIZE = 250


class IotRegistry:
    """The registry of one region. ``calls`` counts API calls by operation (for benchmarks)."""

    def __init__(self, iot_client: IoTClient) -> None:
        self._iot = iot_client
        self._aws = AwsCalls()

    @property
    def calls(self) -> Counter[str]:
        return self._aws.counts

    @property
    def client(self) -> Any:
        """The boto3 client (``pipeline.security`` speaks to the same region through it)."""
        return self._iot

    # --- things -------------------------------------------------------------------------------
    def describe_thing(self, name: str) -> dict[str, Any] | None:
        response = self._aws.maybe("DescribeThing", self._iot.describe_thing, thingName=name)
        if response is None:
            return None
        return {
            "thing_type": response.get("thingTypeName") or None,
            "attributes": dict(response.get("attributes") or {}),
            "billing_group": response.get("billingGroupName") or None,
        }

    def create_thing(
        self,
        name: str,
        thing_type: str | None,
        attributes: dict[str, str] | None,
        billing_group: str | None = None,
    ) -> None:
        validate_name("thingName", name)
        kwargs: dict[str, Any] = {"thingName": name}
        if billing_group:
            kwargs["billingGroupName"] = validate_name("billingGroupName", billing_group)
        if thing_type:
            kwargs["thingTypeName"] = validate_name("thingTypeName", thing_type)
        if attributes is not None:
            checked = validate_attributes("attributes", attributes, typed=thing_type is not None)
            kwargs["attributePayload"] = {"attributes": checked}
        self._aws("CreateThing", self._iot.create_thing, **kwargs)

    def update_thing(
        self,
        name: str,
        *,
        thing_type: str | None = None,
        remove_thing_type: bool = False,
        attributes: dict[str, str] | None = None,
        typed: bool = True,
        previous_attributes: dict[str, str] | None = None,
    ) -> None:
        """Update type and/or replace the attribute set (``None`` leaves that part alone)."""
        kwargs: dict[str, Any] = {"thingName": validate_name("thingName", name)}
        if thing_type:
            kwargs["thingTypeName"] = validate_name("thingTypeName", thing_type)
        if remove_thing_type:
            kwargs["removeThingType"] = True
        if attributes is not None:
            checked = validate_attributes("attributes", attributes, typed=typed)
            # merge=True with "" for each removed key changes exactly what differs and behaves
            # the same on AWS and moto (merge=False "overwrites" only on AWS).
            payload = dict(checked)
            for key in previous_attributes or {}:
                payload.setdefault(key, "")
            kwargs["attributePayload"] = {"attributes": payload, "merge": True}
        self._aws("UpdateThing", self._iot.update_thing, **kwargs)

    def delete_thing(self, name: str) -> None:
        """Detach the thing's principals, then delete; a thing already gone is fine (AWS succeeds
        silently too). AWS refuses DeleteThing while principals are attached ("Cannot delete.
        Thing ... is still attached to one or more principals": rebuy-de/aws-nuke#374,
        getmoto/moto#4616), and detaching is asynchronous (aws/aws-connected-device-framework#76):
        that refusal is a wait (``pipeline.aws.WAIT_REFUSALS``)."""
        for principal in self.list_thing_principals(name):
            self._aws.maybe(
                "DetachThingPrincipal",
                self._iot.detach_thing_principal,
                thingName=name,
                principal=principal,
            )
        self._aws.maybe("DeleteThing", self._iot.delete_thing, thingName=name)

    def list_thing_principals(self, name: str) -> list[str]:
        principals: list[str] = []
        try:
            for page in self._pages(
                "ListThingPrincipals", self._iot.list_thing_principals, thingName=name
            ):
                principals.extend(page.get("principals", []))
        except NotFoundError:
            return []
        return principals

    def list_thing_groups_for_thing(self, name: str) -> list[str]:
        groups: list[str] = []
        for page in self._pages(
            "ListThingGroupsForThing", self._iot.list_thing_groups_for_thing, thingName=name
        ):
            groups.extend(group["groupName"] for group in page.get("thingGroups", []))
        return groups

    def iter_things_of_type(self, thing_type: str) -> Iterator[str]:
        for page in self._pages("ListThings", self._iot.list_things, thingTypeName=thing_type):
            for thing in page.get("things", []):
                yield thing["thingName"]

    # --- billing groups -----------------------------------------------------------------------
    def add_thing_to_billing_group(self, thing: str, group: str) -> None:
        self._aws(
            "AddThingToBillingGroup",
            self._iot.add_thing_to_billing_group,
            thingName=thing,
            billingGroupName=validate_name("billingGroupName", group),
        )

    def remove_thing_from_billing_group(self, thing: str, group: str) -> None:
        self._aws.maybe(
            "RemoveThingFromBillingGroup",
            self._iot.remove_thing_from_billing_group,
            thingName=thing,
            billingGroupName=group,
        )

    def describe_billing_group(self, name: str) -> dict[str, Any] | None:
        response = self._aws.maybe(
            "DescribeBillingGroup", self._iot.describe_billing_group, billingGroupName=name
        )
        if response is None:
            return None
        properties = response.get("billingGroupProperties") or {}
        return {"description": properties.get("billingGroupDescription") or None}

    def create_billing_group(self, name: str, description: str | None) -> None:
        kwargs: dict[str, Any] = {"billingGroupName": validate_name("billingGroupName", name)}
        if description:
            kwargs["billingGroupProperties"] = {
                "billingGroupDescription": validate_description("description", description)
            }
        self._aws("CreateBillingGroup", self._iot.create_billing_group, **kwargs)

    def update_billing_group(self, name: str, description: str | None) -> None:
        self._aws(
            "UpdateBillingGroup",
            self._iot.update_billing_group,
            billingGroupName=name,
            billingGroupProperties={
                "billingGroupDescription": validate_description("description", description) or ""
            },
        )

    def delete_billing_group(self, name: str) -> None:
        self._aws.maybe("DeleteBillingGroup", self._iot.delete_billing_group, billingGroupName=name)

    # --- thing types --------------------------------------------------------------------------
    def describe_thing_type(self, name: str) -> dict[str, Any] | None:
        response = self._aws.maybe(
            "DescribeThingType", self._iot.describe_thing_type, thingTypeName=name
        )
        if response is None:
            return None
        properties = response.get("thingTypeProperties") or {}
        metadata = response.get("thingTypeMetadata") or {}
        mqtt5 = properties.get("mqtt5Configuration") or {}
        return {
            "description": properties.get("thingTypeDescription") or None,
            "searchable_attributes": sorted(properties.get("searchableAttributes") or []),
            "deprecated": bool(metadata.get("deprecated", False)),
            "propagating_attributes": list(mqtt5.get("propagatingAttributes") or []),
        }

    def create_thing_type(
        self,
        name: str,
        description: str | None,
        searchable_attributes: list[str],
        propagating_attributes: list[dict[str, str]] | None = None,
    ) -> None:
        properties = _type_properties(description, searchable_attributes)
        if propagating_attributes:
            properties["mqtt5Configuration"] = {"propagatingAttributes": propagating_attributes}
        self._aws(
            "CreateThingType",
            self._iot.create_thing_type,
            thingTypeName=validate_name("thingTypeName", name),
            thingTypeProperties=properties,
        )

    def update_thing_type_mqtt5(
        self, name: str, propagating_attributes: list[dict[str, str]]
    ) -> None:
        """UpdateThingType can change only ``mqtt5Configuration`` (AWS answers anything else
        with InvalidRequestException "Can only update mqtt5Configuration.": aws/aws-cli#9884;
        CloudFormation's AWS::IoT::ThingType marks description and searchable attributes
        "Update requires: Replacement"). Other property changes are a re-create
        (``pipeline.converge``)."""
        self._aws(
            "UpdateThingType",
            self._iot.update_thing_type,
            thingTypeName=name,
            thingTypeProperties={
                "mqtt5Configuration": {"propagatingAttributes": list(propagating_attributes)}
            },
        )

    def deprecate_thing_type(self, name: str, *, undo: bool = False) -> None:
        self._aws(
            "DeprecateThingType",
            self._iot.deprecate_thing_type,
            thingTypeName=name,
            undoDeprecate=undo,
        )

    def delete_thing_type(self, name: str) -> None:
        self._aws.maybe("DeleteThingType", self._iot.delete_thing_type, thingTypeName=name)

    # --- thing groups -------------------------------------------------------------------------
    def describe_thing_group(self, name: str) -> dict[str, Any] | None:
        response = self._aws.maybe(
            "DescribeThingGroup", self._iot.describe_thing_group, thingGroupName=name
        )
        return None if response is None else thing_group_state(response)

    def create_thing_group(
        self,
        name: str,
        *,
        parent: str | None,
        description: str | None,
        attributes: dict[str, str],
        query: dict[str, str] | None = None,
    ) -> None:
        properties = _group_properties(description, attributes, merge=None)
        if query:
            self._aws(
                "CreateDynamicThingGroup",
                self._iot.create_dynamic_thing_group,
                thingGroupName=validate_name("thingGroupName", name),
                thingGroupProperties=properties,
                queryString=query["query_string"],
                indexName=query.get("index_name") or "AWS_Things",
                queryVersion=query.get("query_version") or "2017-09-30",
            )
            return
        kwargs: dict[str, Any] = {
            "thingGroupName": validate_name("thingGroupName", name),
            "thingGroupProperties": properties,
        }
        if parent:
            kwargs["parentGroupName"] = validate_name("parentGroupName", parent)
        self._aws("CreateThingGroup", self._iot.create_thing_group, **kwargs)

    def update_thing_group(
        self,
        name: str,
        *,
        description: str | None,
        attributes: dict[str, str],
        previous_attributes: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> None:
        """Set description and the whole attribute set.

        Attributes go as merge=True with "" for each removed key, as for things: AWS ignores an
        empty attribute map (getmoto/moto#5318, "AWS will simply ignore it"), so merge=False
        with ``{}`` would never clear the last attributes.
        """
        payload = dict(validate_attributes("attributes", attributes, typed=None))
        for key in previous_attributes or {}:
            payload.setdefault(key, "")
        # An empty description clears it; leaving it out would keep the old one.
        properties = _group_properties(description or "", payload, merge=True)
        if query:
            self._aws(
                "UpdateDynamicThingGroup",
                self._iot.update_dynamic_thing_group,
                thingGroupName=name,
                thingGroupProperties=properties,
                queryString=query["query_string"],
                indexName=query.get("index_name") or "AWS_Things",
                queryVersion=query.get("query_version") or "2017-09-30",
            )
            return
        self._aws(
            "UpdateThingGroup",
            self._iot.update_thing_group,
            thingGroupName=name,
            thingGroupProperties=properties,
        )

    def delete_thing_group(self, name: str, *, dynamic: bool = False) -> None:
        if dynamic:
            self._aws.maybe(
                "DeleteDynamicThingGroup",
                self._iot.delete_dynamic_thing_group,
                thingGroupName=name,
            )
        else:
            self._aws.maybe("DeleteThingGroup", self._iot.delete_thing_group, thingGroupName=name)

    def list_child_groups(self, name: str) -> list[str]:
        children: list[str] = []
        for page in self._pages(
            "ListThingGroups", self._iot.list_thing_groups, parentGroup=name, recursive=False
        ):
            children.extend(group["groupName"] for group in page.get("thingGroups", []))
        return children

    def add_thing_to_thing_group(self, thing: str, group: str) -> None:
        # The source holds this static membership, so there it won over dynamic groups at the
        # 10-group limit; overrideDynamicGroups lets it win here too (AWS IoT API Reference,
        # AddThingToThingGroup).
        self._aws(
            "AddThingToThingGroup",
            self._iot.add_thing_to_thing_group,
            thingName=validate_name("thingName", thing),
            thingGroupName=validate_name("thingGroupName", group),
            overrideDynamicGroups=True,
        )

    def remove_thing_from_thing_group(self, thing: str, group: str) -> None:
        self._aws.maybe(
            "RemoveThingFromThingGroup",
            self._iot.remove_thing_from_thing_group,
            thingName=thing,
            thingGroupName=group,
        )

    # --- plumbing -----------------------------------------------------------------------------
    def _pages(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token: str | None = None
        while True:
            extra = {"nextToken": token} if token else {}
            page = self._aws(operation, method, maxResults=PAGE_SIZE, **kwargs, **extra)
            yield page
            token = page.get("nextToken")
            if not token:
                return


def thing_group_state(description: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeThingGroup response as the group's state dict (``STATE_FIELDS``)."""
    properties = description.get("thingGroupProperties") or {}
    metadata = description.get("thingGroupMetadata") or {}
    query = None
    if description.get("queryString"):
        query = {
            "query_string": description["queryString"],
            "index_name": description.get("indexName") or "AWS_Things",
            "query_version": description.get("queryVersion") or "2017-09-30",
        }
    return {
        "parent": metadata.get("parentGroupName") or None,
        "description": properties.get("thingGroupDescription") or None,
        "attributes": dict((properties.get("attributePayload") or {}).get("attributes") or {}),
        "query": query,
    }


def _type_properties(description: str | None, searchable: list[str]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if description:
        properties["thingTypeDescription"] = validate_description("description", description)
    if searchable:
        properties["searchableAttributes"] = list(searchable)
    return properties


def _group_properties(
    description: str | None, attributes: dict[str, str], *, merge: bool | None
) -> dict[str, Any]:
    checked = validate_attributes("attributes", attributes, typed=None)
    payload: dict[str, Any] = {"attributes": checked}
    if merge is not None:
        payload["merge"] = merge
    properties: dict[str, Any] = {"attributePayload": payload}
    if description is not None:
        properties["thingGroupDescription"] = validate_description("description", description)
    return properties

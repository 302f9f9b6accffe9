"""Billing groups: a name and a description (a thing's billing group is a field of the thing).

AWS publishes no registry events for billing groups, so they (and a thing's billing group)
reach the destination only through reconciliation. AWS IoT API Reference: CreateBillingGroup,
DescribeBillingGroup (``billingGroupProperties.billingGroupDescription``), UpdateBillingGroup,
DeleteBillingGroup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline import rules
from pipeline.errors import NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import Call, EntitySpec, Kind, Listing, Reader, text
from pipeline.kinds.parse import description
from pipeline.model import EntityKind


def state_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeBillingGroup response as the billing group's state."""
    properties = raw.get("billingGroupProperties") or {}
    return {"description": properties.get("billingGroupDescription") or None}


class BillingGroup(Kind):
    spec = EntitySpec(
        EntityKind.BILLING_GROUP,
        frame="billing_groups",
        rank=2,
        fields={"description": "low"},
        noun=("billing group", "billing groups"),
        alias="billing",
    )
    columns = (text("name"), text("description"))
    listing = Listing("ListBillingGroups", name="groupName", describe=("DescribeBillingGroup",))
    quotas = {"ListBillingGroups": 10, "DescribeBillingGroup": 100}  # L-BB923BC2, L-23DF46E7

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        return description(f"state.{key}", value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeBillingGroup", billingGroupName=name)
        return None if response is None else state_of(response)

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        name = listed["groupName"]
        try:
            response = reader.call("DescribeBillingGroup", billingGroupName=name)
        except NotFoundError:
            return None  # deleted since it was listed
        return {"name": name, **state_of(response)}

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        if desired is None:
            return (
                [] if actual is None else [Call("DeleteBillingGroup", {"billingGroupName": name})]
            )
        text_ = desired.get("description")
        if actual is None:
            params: dict[str, Any] = {
                "billingGroupName": rules.validate_name("billingGroupName", name)
            }
            if text_:
                params["billingGroupProperties"] = {
                    "billingGroupDescription": rules.validate_description("description", text_)
                }
            return [Call("CreateBillingGroup", params)]
        if (text_ or None) == actual.get("description"):
            return []
        return [
            Call(
                "UpdateBillingGroup",
                {
                    "billingGroupName": name,
                    "billingGroupProperties": {
                        "billingGroupDescription": rules.validate_description("description", text_)
                        or ""
                    },
                },
            )
        ]


KIND = BillingGroup()
KINDS = (KIND,)

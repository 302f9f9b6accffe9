"""The thing-group refusals the emulation claims AWS makes beyond the quotas: a call of the other
kind of group (static or dynamic; AWS has no call that converts one into the other) and a thing
in two groups of one hierarchy. Part of ``refusals.REFUSALS``; ``registry_fixes`` raises them."""

from __future__ import annotations

from sandbox.emulation.refusal import API as _API
from sandbox.emulation.refusal import GUIDE as _GUIDE
from sandbox.emulation.refusal import Refusal

_NOT_DYNAMIC = "This operation does not support dynamic thing groups. Thing group arn: {arn}"
_STATIC_GUIDE = (
    f"{_GUIDE}thing-groups.html ('you can't add a thing to more than one group in the same "
    "hierarchy. (In other words, you can't add a thing to two groups which share a common "
    "parent.)')"
)

GROUP_REFUSALS: dict[str, Refusal] = {
    "delete_thing_group_dynamic": Refusal(
        "DeleteThingGroup",
        "InvalidRequestException",
        _NOT_DYNAMIC,
        "https://github.com/rebuy-de/aws-nuke/issues/1199 (AWS's answer in CloudTrail: "
        f"DeleteThingGroup of a dynamic group); {_API}DeleteDynamicThingGroup.html",
        message_seen=True,
    ),
    "update_thing_group_dynamic": Refusal(
        "UpdateThingGroup",
        "InvalidRequestException",
        _NOT_DYNAMIC,
        "[assumption] as DeleteThingGroup answers for a dynamic group "
        "(rebuy-de/aws-nuke#1199); a dynamic group's properties are updated with "
        f"{_API}UpdateDynamicThingGroup.html (InvalidRequestException)",
        message_seen=False,
    ),
    "update_dynamic_thing_group_static": Refusal(
        "UpdateDynamicThingGroup",
        "InvalidRequestException",
        "{name} is not a dynamic thing group",
        f"[assumption] {_API}UpdateDynamicThingGroup.html ('Updates a dynamic thing group'; "
        "InvalidRequestException, 'The request is not valid'); no call turns a static group "
        "into a dynamic one",
        message_seen=False,
    ),
    "delete_dynamic_thing_group_static": Refusal(
        "DeleteDynamicThingGroup",
        "InvalidRequestException",
        "{name} is not a dynamic thing group",
        f"[assumption] {_API}DeleteDynamicThingGroup.html ('Deletes a dynamic thing group'; "
        "InvalidRequestException), as DeleteThingGroup refuses a dynamic group",
        message_seen=False,
    ),
    "sibling_thing_groups": Refusal(
        "AddThingToThingGroup",
        "InvalidRequestException",
        "Thing {name} cannot be added to {group}: it is already in {other}, in the same "
        "hierarchy (root {root})",
        f"{_STATIC_GUIDE}: two groups with the same parent",
        message_seen=False,
    ),
    "cousin_thing_groups": Refusal(
        "AddThingToThingGroup",
        "InvalidRequestException",
        "Thing {name} cannot be added to {group}: it is already in {other}, in the same "
        "hierarchy (root {root})",
        f"{_STATIC_GUIDE}: the rule's first sentence, 'the same hierarchy' (one root group), "
        "read as the rule; [assumption] that it also covers groups whose nearest common "
        "ancestor is not their parent (cousins, a group and its ancestor), which the "
        "parenthesis does not name: the probe (two cousins) settles it on an account",
        message_seen=False,
    ),
}

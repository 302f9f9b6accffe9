"""From a parsed control-plane call to the ``Change`` persist stores (``pipeline.cloudtrail``).

CloudTrail records what was *asked*; some state is only in the origin region's registry: a
created certificate's PEM and status, the document of the version SetDefaultPolicyVersion made
the default. ``control_change`` reads exactly that, in the origin region, like
``persist.resolve_dynamic_query`` reads a dynamic group's query, and returns the ``Change``. An
entity deleted since the call has nothing to read: ``None`` (its own delete call follows).

A certificate read later than its call may show a newer status than the call set: it is still
stamped with the call's ``eventTime``, so any status change recorded after that second outranks
it, and one recorded before it is already outranked (``pipeline.state``).
"""

from __future__ import annotations

from pipeline.cloudtrail import ControlChange, LookupKind
from pipeline.errors import EventValidationError
from pipeline.model import Change, EntityKind
from pipeline.policyrewrite import canonical_document
from pipeline.security import IotSecurity


def control_change(result: ControlChange, origin: IotSecurity) -> Change | None:
    """The change ``result`` stores, after the lookups it asks for in the ``origin`` region."""
    fields = dict(result.fields)
    lookup = result.lookup
    if lookup is not None and lookup.kind is LookupKind.CERTIFICATE:
        described = origin.describe_certificate(result.name)
        if described is None:
            if "status" not in fields:
                return None
        else:
            fields["pem"] = described["pem"]
            fields.setdefault("status", described["status"])
    elif lookup is not None and lookup.kind is LookupKind.POLICY_VERSION:
        if lookup.key is None:
            raise EventValidationError("policyVersionId", "missing")
        document = origin.get_policy_version(result.name, lookup.key)
        if document is None:
            return None
        fields["document"] = canonical_document(document)
    return Change(
        EntityKind(result.kind.value),
        result.name,
        result.origin,
        fields=fields,
        deleted=result.deleted,
    )

"""The thing-principal link kind: a certificate attached to a thing (its name grammar:
``pipeline.kinds.links``).

AWS behaviours relied on (AWS IoT API Reference, one page per action):
- AttachThingPrincipal takes ``thingPrincipalType`` EXCLUSIVE_THING or NON_EXCLUSIVE_THING (the
  default, ThingPrincipalObject); ListThingPrincipalsV2 and ListPrincipalThingsV2 report it.
- Attach/DetachThingPrincipal send ``principal`` as an HTTP header (``x-amzn-principal``,
  botocore's iot service model), which a CloudTrail record may leave out of
  ``requestParameters`` [assumption: no public record shows either way]. An attach without it
  is looked up in the origin region (``ThingPrincipal.resolve``: the thing's one certificate);
  a detach without it names nothing left to read, and is skipped for the reconciliation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from pipeline import rules
from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Converging,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    flag,
    text,
)
from pipeline.kinds.certificate import certificate_id
from pipeline.kinds.links import (
    CERT_ARN,
    certificate_arn,
    link_outcome,
    parse_link,
    split_link,
    thing_principal_name,
)
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, SkipCode, request_text, skip
from pipeline.model import Change, EntityKind, Item, Lookup

# --- CloudTrail calls ----------------------------------------------------------------------------


def _thing_principal(call: ApiCall, *, deleted: bool) -> ParseResult:
    thing = rules.validate_name("requestParameters.thingName", call.request.get("thingName"))
    fields: dict[str, Any] = {}
    if not deleted:
        kind = call.request.get("thingPrincipalType", "NON_EXCLUSIVE_THING")
        if kind not in ("EXCLUSIVE_THING", "NON_EXCLUSIVE_THING"):
            raise EventValidationError(
                "requestParameters.thingPrincipalType",
                "must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING",
            )
        fields["exclusive"] = kind == "EXCLUSIVE_THING"
    if call.request.get("principal") is None:
        if deleted:
            return skip(
                call,
                SkipCode.NO_PRINCIPAL,
                "the record does not name the principal, and once detached none is left to look "
                "up: the next reconciliation repairs it",
            )
        # Named once persist has looked the thing's certificate up (``resolve``).
        return Change(
            EntityKind.THING_PRINCIPAL,
            thing_principal_name(thing, ""),
            call.origin,
            fields=fields,
            lookup=Lookup(),
        )
    cert = CERT_ARN.fullmatch(request_text(call, "principal"))
    if cert is None:
        return skip(
            call,
            SkipCode.UNSUPPORTED_PRINCIPAL,
            "only certificate principals are replicated (not Cognito or federated identities)",
        )
    return Change(
        EntityKind.THING_PRINCIPAL,
        thing_principal_name(thing, cert["id"].lower()),
        call.origin,
        fields=fields,
        deleted=deleted,
    )


# --- the kind ------------------------------------------------------------------------------------


class ThingPrincipal(Kind):
    spec = EntitySpec(
        EntityKind.THING_PRINCIPAL,
        frame="thing_principals",
        rank=9,  # after its thing and its certificate
        fields={"exclusive": "medium"},
        noun=("thing principal", "thing principals"),
        alias="principal",
    )
    # ``exclusive`` is nullable: a listing may not report the type (moto); read as the default.
    columns = (text("name"), flag("exclusive", dtype="boolean"))
    # The things attached to each listed certificate: one listing per certificate, a fleet's
    # worth, 4 at once on threads of their own (one after another they waited for each other's
    # round trips: bench B5); the snapshot's bound for a large fleet. Listing from the thing side
    # (ListThingPrincipalsV2) is one call per thing, as many for one certificate per thing; both
    # page at up to 250 (RegistryMaxResults), which a thing's few certificates never fill, and
    # no bulk call returns them (ListThings' ThingAttribute has no principals): README, limits;
    # a run may list one slice of the certificates (``reconcile.sweep``).
    listing = Listing(
        "ListPrincipalThingsV2",
        parent=EntityKind.CERTIFICATE,
        workers=4,
        dangling=EntityKind.THING,
        swept=True,
    )
    # 10 TPS: Service Quotas' "ListPrincipalThings API TPS" (L-C481616A, adjustable) as a public
    # dump of its defaults lists it, and the archived "AWS IoT Throttling Limits" table;
    # [assumption] the V2 call counts against it.
    quotas = {"ListPrincipalThingsV2": 10}
    api_calls: Mapping[str, CallParser] = {
        "AttachThingPrincipal": lambda call: _thing_principal(call, deleted=False),
        "DetachThingPrincipal": lambda call: _thing_principal(call, deleted=True),
    }

    def check_name(self, field_name: str, name: object) -> str:
        form = "a thing principal is '<thing>#<certificate id>'"
        thing, cert = parse_link(field_name, name, form)
        return thing_principal_name(
            rules.validate_name(field_name, thing), certificate_id(field_name, cert)
        )

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        if not isinstance(value, bool):
            raise EventValidationError(f"state.{key}", "must be a boolean")
        return value

    def links(self, reader: Reader, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """``name``, ``thing`` and ``exclusive`` (None where the type is not reported)."""
        listed = reader.items("ListPrincipalThingsV2", key="thingName", principal=parent["arn"])
        for raw in listed:
            kind = raw.get("thingPrincipalType")
            yield {
                "name": thing_principal_name(raw["thingName"], parent["name"]),
                "thing": raw["thingName"],
                "exclusive": None if kind is None else kind == "EXCLUSIVE_THING",
            }

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """``{"exclusive": bool | None, "principal": arn}`` if the certificate is attached
        (``exclusive`` None where the type is not reported)."""
        thing, cert_id = split_link(name)
        described = iot.maybe("DescribeCertificate", certificateId=cert_id)
        if described is None:
            return None
        arn = str(described["certificateDescription"]["certificateArn"])
        attached = self._attached(iot, thing, arn)
        return None if attached is None else {**attached, "principal": arn}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """An attach whose record does not name the principal: the thing's certificate in the
        origin region (ListThingPrincipalsV2), when it has exactly one; ``None`` when it has
        none (detached since: that detach follows). With several, which one this call attached
        cannot be read: a permanent error, which the reconciliation repairs."""
        if change.lookup is None:
            return change
        thing, _ = split_link(change.name)
        try:
            entries = [
                e for page in origin.pages("ListThingPrincipalsV2", thingName=thing) for e in page
            ]
        except NotFoundError:
            return None
        certificates = [
            (match["id"].lower(), entry)
            for entry in entries
            if (match := CERT_ARN.fullmatch(str(entry.get("principal", "")))) is not None
        ]
        if not certificates:
            return None
        if len(certificates) > 1:
            raise EventValidationError(
                "requestParameters.principal",
                f"absent, and {thing!r} has {len(certificates)} certificates in "
                f"{change.origin.region}: which one was attached is unknown (the next "
                "reconciliation repairs it)",
            )
        ((cert_id, entry),) = certificates
        kind = entry.get("thingPrincipalType")
        fields = dict(change.fields)
        if kind is not None:
            fields["exclusive"] = kind == "EXCLUSIVE_THING"
        return replace(
            change, name=thing_principal_name(thing, cert_id), fields=fields, lookup=None
        )

    def _attached(self, iot: Iot, thing: str, arn: str) -> dict[str, Any] | None:
        try:
            entries = [
                e for page in iot.pages("ListThingPrincipalsV2", thingName=thing) for e in page
            ]
        except NotFoundError:
            return None
        for entry in entries:
            if entry.get("principal") == arn:
                kind = entry.get("thingPrincipalType")
                return {"exclusive": None if kind is None else kind == "EXCLUSIVE_THING"}
        return None

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        """Attach, re-attach (exclusivity changed) or detach; ``actual["principal"]`` or
        ``desired["principal"]`` is the certificate's ARN in the destination."""
        thing, _ = split_link(name)
        principal = (actual or {}).get("principal") or (desired or {}).get("principal")
        detach = Call("DetachThingPrincipal", {"thingName": thing, "principal": principal})
        if desired is None:
            return [] if actual is None else [detach]
        exclusive = bool(desired.get("exclusive", False))
        attach = Call(
            "AttachThingPrincipal",
            {
                "thingName": thing,
                "principal": principal,
                "thingPrincipalType": "EXCLUSIVE_THING" if exclusive else "NON_EXCLUSIVE_THING",
            },
        )
        if actual is None:
            return [attach]
        if actual.get("exclusive") is None or actual["exclusive"] == exclusive:
            return []
        return [detach, attach]

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        thing, cert_id = split_link(name)
        return ((EntityKind.THING, thing), (EntityKind.CERTIFICATE, cert_id))

    def converge(self, ctx: Converging, item: Item) -> Result:
        thing, cert_id = split_link(item.name)
        arn = certificate_arn(ctx, cert_id, needed=not item.deleted)
        if arn is None:
            return Result("noop", "certificate absent, so nothing is attached")
        actual = self._attached(ctx.iot, thing, arn)
        desired = None if item.deleted else {**item.state, "principal": arn}
        calls = self.calls(
            item.name, desired, None if actual is None else {**actual, "principal": arn}
        )
        try:
            ctx.iot.apply(calls)
        except NotFoundError:
            # The thing is not in the destination yet: converge it, then attach.
            ctx.converge_key(EntityKind.THING, thing)
            ctx.iot.apply(calls)
        return link_outcome(calls, item)


THING_PRINCIPAL = ThingPrincipal()
KINDS = (THING_PRINCIPAL,)

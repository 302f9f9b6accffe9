"""CA certificates, by id, with their status, auto-registration and JITP configuration.

AWS publishes no registry events for CA certificates (the CA_CERTIFICATE event configuration
publishes only device certificates JITR registered: docs/onboarding-kinds.md, fact 8); their
control-plane calls reach persist as CloudTrail records (``pipeline.cloudtrail``), parsed here.
AWS behaviours relied on (AWS IoT API Reference, one page per action; docs/onboarding-kinds.md,
"CA certificates", with every source):
- RegisterCACertificate in DEFAULT mode needs a verification certificate signed by the CA's
  private key; in SNI_ONLY mode none, and several accounts may register one CA in a region
  (fact 1). **The tool holds no CA key**: a CA missing in the destination is registered there in
  SNI_ONLY mode; a DEFAULT-mode copy is the operator's (their key, the destination's
  registration code), which the kind finds by id (a CA's id, like a certificate's, is the
  SHA-256 of its DER: ``certificate.certificate_id_from_pem``) and then converges like any other.
  So ``certificateMode`` is not replicated: it may differ by design (fact 2).
- A CA is INACTIVE unless ``setAsActive``; UpdateCACertificate sets ``newStatus`` (ACTIVE or
  INACTIVE; REGISTER_INACTIVE is deprecated), ``newAutoRegistrationStatus`` (ENABLE, DISABLE),
  ``registrationConfig`` or ``removeAutoRegistration``. Deactivating a CA stops new device
  registrations only (fact 4): its device certificates keep their own status.
- A JITP CA names a template of type JITP by ``registrationConfig.templateName``, or carries an
  inline ``templateBody`` and ``roleArn`` (fact 6): the template exists first (its rank is
  lower; a registration refused for want of it creates it from the table), and the role ARN is
  an IAM role's, which the account map rewrites.
- DeleteCACertificate refuses an ACTIVE CA (CertificateStateException; deactivated first) and,
  the sandbox assumes, a CA with registered device certificates: those are deleted first (their
  rank is higher, so a repair deletes them before their CA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

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
    json_or_none,
    label,
    text,
)
from pipeline.kinds.certificate import canonical_pem, certificate_id, certificate_id_from_pem
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, SkipCode, skip
from pipeline.kinds.provisioning_template import mapped_arn, template_name
from pipeline.model import Change, EntityKind, Item, Lookup
from pipeline.policyrewrite import ArnMapping

STATUSES = ("ACTIVE", "INACTIVE")
AUTO_REGISTRATION = ("ENABLE", "DISABLE")
# The only mode the tool can register a CA in: it holds no CA private key (fact 1).
COPY_MODE = "SNI_ONLY"
_CONFIG_KEYS = ("templateName", "templateBody", "roleArn")


def registration_config(field_name: str, raw: object) -> dict[str, str] | None:
    """A RegistrationConfig with its given keys only (``None``: no JITP configuration)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - set(_CONFIG_KEYS):
        raise EventValidationError(field_name, f"must be an object of {', '.join(_CONFIG_KEYS)}")
    config = {key: str(raw[key]) for key in _CONFIG_KEYS if raw.get(key)}
    if "templateName" in config:
        template_name(f"{field_name}.templateName", config["templateName"])
    return config or None


def state_of(response: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeCACertificate response as the CA's state (``mode`` for information only)."""
    description = response["certificateDescription"]
    return {
        "status": description["status"],
        "pem": canonical_pem(description["certificatePem"]),
        "auto_registration": description.get("autoRegistrationStatus") or "DISABLE",
        "registration_config": registration_config(
            "registrationConfig", response.get("registrationConfig")
        ),
        "mode": description.get("certificateMode"),
    }


# --- CloudTrail calls ----------------------------------------------------------------------------


def _registered(call: ApiCall) -> ParseResult:
    """RegisterCACertificate: the id from the response, else from the PEM; the rest described
    in the origin region (the request says the status only as ``setAsActive``)."""
    response = call.response or {}
    if "certificateId" in response:
        ca_id = certificate_id("responseElements.certificateId", response["certificateId"])
    elif isinstance(call.request.get("caCertificate"), str):
        ca_id = certificate_id_from_pem(call.request["caCertificate"])
    else:
        return skip(
            call,
            SkipCode.NO_CERTIFICATE_ID,
            "the event names no CA certificate; the next reconciliation registers it",
        )
    return Change(EntityKind.CA_CERTIFICATE, ca_id, call.origin, lookup=Lookup())


def _updated(call: ApiCall) -> ParseResult:
    """UpdateCACertificate names only what changed: its ``newStatus`` (the call's own, which
    orders it: ``pipeline.state``) and the rest described in the origin region."""
    ca_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    status = call.request.get("newStatus")
    fields: dict[str, Any] = {}
    if status is not None:
        if status not in STATUSES:
            return skip(
                call,
                SkipCode.UNKNOWN_STATUS,
                f"status {status!r} is not replicated (ACTIVE, INACTIVE)",
            )
        fields["status"] = status
    return Change(EntityKind.CA_CERTIFICATE, ca_id, call.origin, fields=fields, lookup=Lookup())


def _deleted(call: ApiCall) -> ParseResult:
    ca_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    return Change(EntityKind.CA_CERTIFICATE, ca_id, call.origin, deleted=True)


# --- the pure decision ---------------------------------------------------------------------------


def ca_calls(
    ca_id: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring CA ``ca_id`` from ``actual`` (``read``; ``None``: absent) to
    ``desired`` (as written for the destination; ``None``: deleted)."""
    if desired is None:
        if actual is None:
            return []
        calls = []
        if actual.get("status") == "ACTIVE":
            calls.append(
                Call("UpdateCACertificate", {"certificateId": ca_id, "newStatus": "INACTIVE"})
            )
        return [*calls, Call("DeleteCACertificate", {"certificateId": ca_id})]
    if "pem" not in desired or "status" not in desired:
        return []  # a stub: nothing known yet
    config = desired.get("registration_config")
    if actual is None:
        params: dict[str, Any] = {
            "caCertificate": desired["pem"],
            "certificateMode": COPY_MODE,
            "setAsActive": desired["status"] == "ACTIVE",
            "allowAutoRegistration": desired.get("auto_registration") == "ENABLE",
        }
        if config:
            params["registrationConfig"] = dict(config)
        return [Call("RegisterCACertificate", params)]
    update: dict[str, Any] = {}
    if desired["status"] != actual.get("status"):
        update["newStatus"] = desired["status"]
    auto = desired.get("auto_registration") or "DISABLE"
    if auto != actual.get("auto_registration"):
        update["newAutoRegistrationStatus"] = auto
    if config != actual.get("registration_config"):
        if config:
            update["registrationConfig"] = dict(config)
        else:
            update["removeAutoRegistration"] = True
    return [Call("UpdateCACertificate", {"certificateId": ca_id, **update})] if update else []


# --- the kind --------------------------------------------------------------------------------------


class CaCertificate(Kind):
    spec = EntitySpec(
        EntityKind.CA_CERTIFICATE,
        frame="ca_certificates",
        rank=6,  # after its JITP template, before the device certificates registered with it
        # A CA ACTIVE in the destination and INACTIVE in the source keeps registering devices
        # the source refuses: high, as its JITP configuration. ``pem`` registers the copy (the
        # id is its hash: two regions' PEMs of one id never differ).
        fields={
            "status": "high",
            "auto_registration": "high",
            "registration_config": "high",
            "pem": "low",
        },
        noun=("CA certificate", "CA certificates"),
        alias="ca",
    )
    columns = (
        text("name"),
        label("status"),
        text("auto_registration"),
        json_or_none("registration_config"),
        text("pem"),
    )
    listing = Listing(
        "ListCACertificates", name="certificateId", describe=("DescribeCACertificate",)
    )
    api_calls: Mapping[str, CallParser] = {
        "RegisterCACertificate": _registered,
        "UpdateCACertificate": _updated,
        "DeleteCACertificate": _deleted,
    }
    arn_fields = ("registration_config",)
    # [assumption] Service Quotas L-15185D92, L-E72BB356: defaults not read here; 10 TPS.
    quotas = {"ListCACertificates": 10, "DescribeCACertificate": 10}

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """An inline JITP configuration's role (IAM: the account map)."""
        if not value.get("roleArn"):
            return value
        return {**value, "roleArn": mapped_arn(value["roleArn"], mapping)}

    def check_name(self, field_name: str, name: object) -> str:
        return certificate_id(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        allowed = {"status": STATUSES, "auto_registration": AUTO_REGISTRATION}.get(key)
        if allowed is not None:
            if value not in allowed:
                raise EventValidationError(field, f"must be one of {', '.join(allowed)}")
            return value
        if key == "registration_config":
            return registration_config(field, value)
        if not isinstance(value, str):
            raise EventValidationError(field, "must be a PEM certificate")
        return canonical_pem(value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeCACertificate", certificateId=name)
        return None if response is None else state_of(response)

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        ca_id = listed["certificateId"]
        try:
            response = reader.call("DescribeCACertificate", certificateId=ca_id)
        except NotFoundError:
            return None
        state = state_of(response)
        del state["mode"]
        return {"name": ca_id, **state}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The CA described in the origin region (a status the event carries wins: it is the
        call's own); ``None`` when it is gone and the event says no status."""
        if change.lookup is None:
            return change
        described = self.read(origin, change.name)
        fields = dict(change.fields)
        if described is None:
            if "status" not in fields:
                return None
        else:
            del described["mode"]
            fields = {**described, **fields}
        return replace(change, fields=fields, lookup=None)

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        template = (state.get("registration_config") or {}).get("templateName")
        return ((EntityKind.PROVISIONING_TEMPLATE, template),) if template else ()

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return ca_calls(name, desired, actual)

    def converge(self, ctx: Converging, item: Item) -> Result:
        desired = None if item.deleted else self.as_written(item.state, ctx.arn_mapping(item))
        actual = self.read(ctx.iot, item.name)
        calls = self.calls(item.name, desired, actual)
        if not calls:
            return Result("noop", "already as desired")
        ctx.with_dependencies(self, item, lambda: ctx.iot.apply(calls))
        verb = "deleted" if item.deleted else "created" if actual is None else "updated"
        return Result(verb, ", ".join(call.op for call in calls))


KIND = CaCertificate()
KINDS = (KIND,)

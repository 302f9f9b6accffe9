"""Patch bookkeeping: the moto gaps this package closes and what it replaced on moto (the
emulation receiving events is ``registry._Installed``)."""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]


# The moto gaps this package closes, one line each (the tests name the same behaviours). Each
# cites its public source in the patch that supplies it; the refusals are listed, with their
# sources, in ``sandbox.emulation.refusals.REFUSALS``. "[assumption]" marks what no public
# source states exactly (the behaviour or the text of AWS's answer).
MOTO_GAPS = (
    "DeleteThing on a missing thing succeeds (moto: 404)",
    "DeleteThing removes the thing from its thing groups (moto: stays listed)",
    "A thing's version starts at 1 and goes up by 1 on each UpdateThing (moto: always 1)",
    "CreateThing on an existing name: same config is idempotent, else ResourceAlreadyExists "
    "(moto: silently replaces)",
    "CreateThingType on an existing name: same properties idempotent, else ResourceAlreadyExists "
    "(moto: overwrites)",
    "UpdateThingGroup: merge=false replaces all attributes, '' removes a key, {} changes nothing "
    "(moto: stores '')",
    "Create/Update/DeleteDynamicThingGroup store queryString, indexName, queryVersion and "
    "DescribeThingGroup reports them (moto: not implemented; no membership is computed)",
    "UpdateThingType changes only mqtt5Configuration; anything else is refused "
    "(moto: not implemented)",
    "DeprecateThingType records deprecationDate on the emulation's clock (moto: only the flag)",
    "DeleteThingType refuses a type not deprecated, deprecated less than 5 minutes ago (on the "
    "injectable clock), or still used by things (moto: deletes at once)",
    "A thing without a type may have at most 3 attributes (moto: any number), and an UpdateThing "
    "of one at most 3 keys in its attribute payload, removals included ([assumption] "
    "AttributePayload's 'up to three key-value pair' counts per request)",
    "The registry's quotas and requirements (sandbox.emulation.quotas; values in pipeline.rules): "
    "a thing in at most 10 groups, a hierarchy at most 7 deep, at most 100 children per group, "
    "a dynamic group never a parent nor a policy target, dynamic groups only with thing "
    "indexing on (which then cannot be turned off) and at most 100 of them, at most 50 "
    "attributes on a typed thing or a group, attribute names and values as botocore's model "
    "says, at most 3 searchable attributes per type (moto: none). Fleet indexing starts off, "
    "as in a new account. [assumption] UpdateThingGroupsForThing adds before it removes, as "
    "moto does, so each add meets the limit of the groups the thing is in at that moment",
    "SearchIndex of the AWS_Things index is refused with AWS's ResourceNotFoundException while "
    "thing indexing is OFF, and of AWS_ThingGroups while thing group indexing is OFF "
    "(moto: searches its things whatever the index and the configuration say); "
    "[assumption] an omitted indexName is AWS_Things, another name is a missing index",
    "[not emulated] SearchIndex of AWS_ThingGroups answers '*' and thingGroupName:<glob> "
    "queries only; any other query is refused as InvalidQueryException",
    "ListThingGroups lists dynamic groups as root groups (moto: never, their parent was '')",
    "[sandbox only] no dynamic group has members (no fleet index), so overrideDynamicGroups "
    "never evicts a thing from one",
    "AddThingToThingGroup refuses a second group of the same hierarchy, i.e. under the same "
    "root group (moto: allows it); [assumption] cousins and a group with its ancestor count "
    "as one hierarchy (the guide's rule; its parenthesis names only a common parent)",
    "A call for the other kind of thing group is refused: UpdateThingGroup and DeleteThingGroup "
    "of a dynamic group, UpdateDynamicThingGroup and DeleteDynamicThingGroup of a static one "
    "(moto: no dynamic groups; the codes and sources in REFUSALS)",
    "[assumption] the text of these refusals where REFUSALS says message_seen=False; their "
    "code is the API reference's (REFUSALS.code)",
    "Describe/UpdateEventConfigurations keep each region's event configuration and registry "
    "events are published only for enabled types (moto: not implemented). The sandbox starts "
    "with the six registry types enabled, as if `iot-crr enable-events` had run in each region",
    "StartExecution on an EXPRESS state machine always starts a new execution with an ARN of its "
    "own, even under a name already used (moto: Standard's name idempotency and "
    "ExecutionAlreadyExists); [assumption] the ARN's shape",
    "A Retrier or Catcher on States.ALL does not match States.Runtime or "
    "States.DataLimitExceeded: the execution fails (moto: States.ALL matches every error)",
    "[sandbox only, more lenient than AWS] ListExecutions and DescribeExecution answer for the "
    "EXPRESS persist state machine (AWS: its CloudWatch Logs are the record); only the sandbox's "
    "pump and tests observe executions so, the product never calls either",
    "A certificate's id is the SHA-256 of its DER encoding, so the same certificate has the same "
    "id in every region (moto: of the PEM text, unless its iot.use_valid_cert option is on; the "
    "sandbox turns it on). Source: getmoto/moto#3321 (confirmed with AWS Support), #7866",
    "Certificate, policy and attachment calls publish the CloudTrail event EventBridge would "
    "deliver ('AWS API Call via CloudTrail', sandbox.emulation.controlplane; moto: none). "
    "[assumption] which response fields CloudTrail keeps for IoT calls",
    "UpdateCertificate refuses to change a REVOKED certificate's status with "
    "CertificateStateException (moto: allows it)",
    "DeletePolicy refuses, with DeleteConflictException, a policy a target was detached from "
    "less than POLICY_DELETE_AFTER_DETACH_SECONDS (5 s) ago on the injectable clock (moto: deletes "
    "at once; AWS: 'up to five minutes'). [assumption] 5 s is one instance of AWS's range, "
    "chosen so tests exercise the retry without waiting; and the refusal's text",
    "DeleteCertificate checks only the certificate's own attachments (moto: HTTP 500, "
    "AttributeError, whenever a policy is attached to a thing group in the region)",
    "TestAuthorization evaluates the certificate's and its thing's groups' policies as the AWS "
    "IoT Developer Guide documents them (sandbox.emulation.authorization, each rule cited); "
    "what it does not evaluate is refused with SandboxCannotEvaluate (moto: not implemented). "
    "[assumption] the thing is the one the clientId names; an inactive certificate is an "
    "IMPLICIT_DENY; each policy is listed once; missingContextValues names the variables",
    # The onboarding kinds (sandbox.emulation.onboarding; sources in each module and in
    # docs/onboarding-kinds.md; refusals in REFUSALS).
    "RegisterCACertificate keeps certificateMode (DEFAULT needs a verificationCertificate whose "
    "common name is the registration code and which the CA signed; SNI_ONLY takes none), "
    "autoRegistrationStatus, a registrationConfig naming an existing JITP template, and refuses "
    "a CA registered already; the ARN names cacert/ (moto: cert/, none of these)",
    "GetRegistrationCode answers the same 64-hex code on every call (moto: a new UUID)",
    "UpdateCACertificate applies newAutoRegistrationStatus and removeAutoRegistration and moves "
    "customerVersion, generationId and lastModifiedDate (moto: status and config only)",
    "DeleteCACertificate refuses an ACTIVE CA and, [assumption], one device certificates are "
    "still registered with (moto: the ACTIVE check only)",
    "DescribeCACertificate answers CACertificateDescription (certificateMode, "
    "autoRegistrationStatus, customerVersion, generationId, the certificate's own validity)",
    "ListCACertificates (moto: not implemented) and ListCertificatesByCA page with marker and "
    "pageSize (default 25), by creation date, ListCACertificates filtered by templateName",
    "RegisterCertificate needs the device certificate to be signed by a registered, ACTIVE CA "
    "(named or found by issuer) and takes its id and certificate mode; RegisterCertificate and "
    "RegisterCertificateWithoutCA without a status register INACTIVE (moto: links a CA only on "
    "identical PEM text, checks nothing, leaves the status null)",
    "[assumption] Off unless a test turns it on (RegistryEmulation.shared_certificate_rule): "
    "RegisterCertificateWithoutCA refuses, with InvalidRequestException and our wording, an "
    "AWS-issued certificate of another region (DEFAULT mode, no CA) and one a CA registered in "
    "the region signed, as the guide's 2022 text reads; AWS's current rule and code are not "
    "published (docs/onboarding-kinds.md, fact 5): being stricter than AWS would break the demo",
    "DescribeCertificate and ListCertificates answer certificateMode (DEFAULT; SNI_ONLY when "
    "registered without a CA; the CA's when registered with one) and caCertificateId",
    "Provisioning templates and their versions: Create/Describe/List/Update/Delete"
    "ProvisioningTemplate, Create/List/Describe/DeleteProvisioningTemplateVersion (moto: not "
    "implemented). [assumption] enabled false unless given, at most 5 versions, ids not reused",
    "Custom authorizers: Create/Describe/List/Update/DeleteAuthorizer, Set/Describe/Clear"
    "DefaultAuthorizer (moto: not implemented). [assumption] status ACTIVE unless given",
    "CreateRoleAlias and UpdateRoleAlias bound credentialDurationSeconds to 900..43200 and to "
    "the role's MaxSessionDuration when IAM knows the role; ListRoleAliases pages with marker "
    "and pageSize (moto: any duration, every alias at once)",
    # Device shadows (sandbox.emulation.shadows; sources there and in pipeline.kinds.shadow).
    "UpdateThingShadow and DeleteThingShadow publish the update/documents and delete/accepted "
    "messages on the shadow's reserved topics (moto: nothing). [assumption] no 'previous' for a "
    "new shadow; delete/accepted carries moto's version of the deleted shadow",
    "UpdateThingShadow refuses a result over 8 KB of desired and reported state with "
    "RequestEntityTooLargeException (moto: any size); [assumption] counted as the sections' "
    "compact JSON bytes",
    "DeleteThingShadow of a deleted shadow is ResourceNotFoundException (moto: deletes it again) "
    "and ListNamedShadowsForThing lists live shadows only (moto: deleted ones too)",
    "[not emulated] ListNamedShadowsForThing's pageSize/nextToken (moto: every name at once), "
    "the Device Shadow quotas (per-thing TPS, JSON depth)",
    # Retained messages (sandbox.emulation.retained; sources there and in
    # pipeline.kinds.retained_message).
    "Publish with retain=true keeps the topic's one retained message (payload, QoS, MQTT 5 user "
    "properties, the time) and an empty payload deletes it; ListRetainedMessages and "
    "GetRetainedMessage serve them (moto: none of it). [assumption] listed in topic order, 25 a "
    "page unless maxResults says otherwise",
    "Publish refuses a payload over 128 KB (RequestEntityTooLargeException) and a retained "
    "publish to a reserved ($) topic (InvalidRequestException) (moto: accepts both); "
    "[assumption] both codes",
    "[not emulated] the account's maximum number of retained messages (AWS: a throttled answer "
    "to a retained publish at it), the expiry of a retained message untouched for three years, "
    "delivery of retained messages to subscribers",
    "The CA certificate, provisioning template, role alias and authorizer calls publish their "
    "CloudTrail event (sandbox.emulation.controlplane); [assumption] their requestParameters "
    "carry the request as sent and responseElements the names, ARNs and version ids",
    "Service Quotas ListServiceQuotas for iotcore: the applied values a test sets "
    "(sandbox.emulation.servicequotas.apply_quota), none by default (moto: not implemented; "
    "VPC defaults only). [assumption] which IoT Core quotas an account lists",
    "AttachThingPrincipal keeps thingPrincipalType, ListThingPrincipalsV2 and "
    "ListPrincipalThingsV2 report it and filter by it, AttachThingPrincipal's CloudTrail event "
    "carries it where given (sandbox.emulation.thing_principals; moto: ignored and left out). "
    "[assumption] an attachment made without a type reports NON_EXCLUSIVE_THING; [not "
    "emulated] EXCLUSIVE_THING of a principal other things hold",
)


# --------------------------------------------------------------------------------------------
# Patch bookkeeping
# --------------------------------------------------------------------------------------------


class _Patches:
    """Attributes replaced on moto classes, with what to put back."""

    _MISSING = object()

    def __init__(self) -> None:
        self._saved: list[tuple[object, str, object]] = []

    def set(self, owner: object, name: str, value: object) -> None:
        self._saved.append((owner, name, vars(owner).get(name, self._MISSING)))
        setattr(owner, name, value)

    def original(self, owner: object, name: str) -> Any:
        for saved_owner, saved_name, value in self._saved:
            if saved_owner is owner and saved_name == name and value is not self._MISSING:
                return value
        return getattr(owner, name)

    def restore(self) -> None:
        for owner, name, value in reversed(self._saved):
            if value is self._MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        self._saved.clear()


_PATCHES = _Patches()

"""The end-to-end scenarios, written once against plain boto3 and the ``iot-crr`` command line.

Each scenario makes registry changes in the source region (things, types, groups, memberships,
in the orders that stress the pipeline's AWS fidelity), waits for the destination to match, and
checks that ``iot-crr audit`` agrees. ``drift_and_repair`` then edits the destination by hand
and checks that the audit reports exactly that drift and ``iot-crr reconcile --apply`` repairs it.
Every name starts with the scenario's scope prefix, and the ``iot-crr`` commands run under ignore
rules for everything outside it, so scenarios see nothing else of the account (or each other).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conformance.onboarding_refusals import ROLE_TRUST, remove_leftovers
from conformance.registry import onboarding_view, streamed, succeeds, view
from conformance.run import Scope, outside
from conformance.target import Target
from reconcile.cli import main
from reconcile.context import Factory
from sandbox.certificates import CertificateAuthority

TYPE_DEPRECATION_SECONDS = 300


# ---- steps the scenarios share -----------------------------------------------------------------


def converge(target: Target, scope: Scope, timeout: float | None = None) -> None:
    """Wait until the destination holds what the source holds (as far as events carry it)."""

    def matches() -> bool:
        source = streamed(view(target.source, scope.prefix))
        return source == streamed(view(target.destination, scope.prefix))

    target.wait_until(f"destination matches the source under {scope.prefix}", matches, timeout)


def iot_crr(target: Target, scope: Scope, *args: str, ca_id: str | None = None) -> tuple[int, str]:
    """Run ``iot-crr`` as a user would, limited to the scope by ignore rules (and to the CA
    certificate ``ca_id``, if the scope made one); returns the exit code and the report (written
    to a file: stdout is shared with whatever else runs in-process, such as a pipeline's handlers
    logging)."""
    with tempfile.TemporaryDirectory() as tmp:
        rules, report = Path(tmp) / "scope.iotdriftignore", Path(tmp) / "report"
        rules.write_text("\n".join(outside(scope.prefix, ca_id)) + "\n", encoding="utf-8")
        argv = [
            *args,
            "--source-region",
            target.source_region,
            "--target-region",
            target.destination_region,
            "--ignore-file",
            str(rules),
            "--output",
            str(report),
        ]
        # The CLI stamps corrective events with its clock: the registry's, like its own events.
        factory = Factory(
            client=target.client, clock=lambda: int(target.now() * 1000), show_progress=False
        )
        result = CliRunner().invoke(main, argv, obj=factory)
        if result.exit_code not in (0, 1):
            raise AssertionError(f"iot-crr {args[0]} failed ({result.exit_code}): {result.output}")
        return result.exit_code, report.read_text(encoding="utf-8")


def audit(
    target: Target, scope: Scope, ca_id: str | None = None
) -> tuple[int, list[tuple[str, str, str]]]:
    """``iot-crr audit --format json``: its exit code and drifts as (entity, name, kind)."""
    code, out = iot_crr(target, scope, "audit", "--format", "json", ca_id=ca_id)
    drifts = sorted((d["entity"], d["name"], d["kind"]) for d in json.loads(out)["drifts"])
    return code, drifts


def assert_in_sync(target: Target, scope: Scope, ca_id: str | None = None) -> None:
    code, drifts = audit(target, scope, ca_id)
    assert (code, drifts) == (0, []), f"iot-crr audit after convergence: {drifts}"


def delete_type_when_allowed(target: Target, iot: Any, name: str) -> None:
    """DeleteThingType once AWS allows it: deprecated for 5 minutes (AWS IoT API Reference,
    DeleteThingType); the sandbox jumps ahead, an account waits."""
    target.let_time_pass(TYPE_DEPRECATION_SECONDS)
    target.wait_until(
        f"delete thing type {name}",
        succeeds(lambda: iot.delete_thing_type(thingTypeName=name), ("InvalidRequestException",)),
        3 * TYPE_DEPRECATION_SECONDS,
    )


# ---- the scenarios -----------------------------------------------------------------------------


def things(target: Target, scope: Scope) -> None:
    """Things created typed and untyped, attributes added, changed and removed, one deleted."""
    src = target.source
    src.create_thing_type(
        thingTypeName=scope("sensor"),
        thingTypeProperties={"thingTypeDescription": "sensor", "searchableAttributes": ["site"]},
        tags=scope.tags,
    )
    src.create_thing(
        thingName=scope("typed"),
        thingTypeName=scope("sensor"),
        attributePayload={"attributes": {"site": "s1", "firmware": "1.0", "model": "m"}},
    )
    src.create_thing(thingName=scope("untyped"), attributePayload={"attributes": {"a": "1"}})
    src.create_thing(thingName=scope("doomed"))
    converge(target, scope)
    # Change one attribute, remove another ("" removes a key: AWS IoT API Reference,
    # AttributePayload), add one to the untyped thing (at most 3 without a type).
    src.update_thing(
        thingName=scope("typed"),
        attributePayload={"attributes": {"firmware": "2.0", "model": ""}, "merge": True},
    )
    src.update_thing(
        thingName=scope("untyped"), attributePayload={"attributes": {"b": "2"}, "merge": True}
    )
    src.delete_thing(thingName=scope("doomed"))
    converge(target, scope)
    assert_in_sync(target, scope)


def type_change(target: Target, scope: Scope) -> None:
    """A thing's type changes A → B, then the type is removed from it."""
    src = target.source
    for kind in ("a", "b"):
        src.create_thing_type(
            thingTypeName=scope(kind),
            thingTypeProperties={"searchableAttributes": [f"attr-{kind}"]},
            tags=scope.tags,
        )
    src.create_thing(
        thingName=scope("device"),
        thingTypeName=scope("a"),
        attributePayload={"attributes": {"attr-a": "1"}},
    )
    converge(target, scope)
    src.update_thing(thingName=scope("device"), thingTypeName=scope("b"))
    converge(target, scope)
    src.update_thing(thingName=scope("device"), removeThingType=True)
    converge(target, scope)
    assert_in_sync(target, scope)


def type_recreate(target: Target, scope: Scope) -> None:
    """A type is deprecated, deleted (after AWS's 5 minutes) and created again with other
    properties; its thing is moved off it and back."""
    src, name = target.source, scope("kind")
    src.create_thing_type(
        thingTypeName=name, thingTypeProperties={"thingTypeDescription": "v1"}, tags=scope.tags
    )
    src.create_thing(thingName=scope("device"), thingTypeName=name)
    converge(target, scope)
    src.update_thing(thingName=scope("device"), removeThingType=True)
    src.deprecate_thing_type(thingTypeName=name)
    converge(target, scope)  # deprecated in both regions: both start AWS's 5 minutes together
    delete_type_when_allowed(target, src, name)
    converge(target, scope, timeout=target.type_delete_timeout)
    src.create_thing_type(
        thingTypeName=name, thingTypeProperties={"thingTypeDescription": "v2"}, tags=scope.tags
    )
    src.update_thing(thingName=scope("device"), thingTypeName=name)
    converge(target, scope, timeout=target.type_delete_timeout)
    assert_in_sync(target, scope)


def deprecation(target: Target, scope: Scope) -> None:
    """A type with things is deprecated, then undeprecated."""
    src, name = target.source, scope("legacy")
    src.create_thing_type(thingTypeName=name, tags=scope.tags)
    src.create_thing(thingName=scope("device"), thingTypeName=name)
    converge(target, scope)
    src.deprecate_thing_type(thingTypeName=name)
    converge(target, scope)
    src.update_thing(thingName=scope("device"), attributePayload={"attributes": {"still": "here"}})
    converge(target, scope)
    src.deprecate_thing_type(thingTypeName=name, undoDeprecate=True)
    converge(target, scope)
    assert_in_sync(target, scope)


def groups(target: Target, scope: Scope) -> None:
    """A hierarchy; group attributes replaced and removed; a thing moved between siblings
    (AWS allows one group per parent, so the move is remove-then-add); a group deleted."""
    src = target.source
    src.create_thing_group(
        thingGroupName=scope("site"),
        thingGroupProperties={
            "thingGroupDescription": "site",
            "attributePayload": {"attributes": {"region": "emea", "tier": "1"}},
        },
        tags=scope.tags,
    )
    for floor in ("floor-1", "floor-2", "floor-3"):
        src.create_thing_group(
            thingGroupName=scope(floor), parentGroupName=scope("site"), tags=scope.tags
        )
    src.create_thing(thingName=scope("device"))
    src.add_thing_to_thing_group(thingName=scope("device"), thingGroupName=scope("floor-1"))
    converge(target, scope)
    # Sibling move.
    src.remove_thing_from_thing_group(thingName=scope("device"), thingGroupName=scope("floor-1"))
    src.add_thing_to_thing_group(thingName=scope("device"), thingGroupName=scope("floor-2"))
    # Attribute removal on a group: one key by "", then the whole set replaced (merge false).
    src.update_thing_group(
        thingGroupName=scope("site"),
        thingGroupProperties={"attributePayload": {"attributes": {"tier": ""}, "merge": True}},
    )
    src.update_thing_group(
        thingGroupName=scope("floor-3"),
        thingGroupProperties={
            "thingGroupDescription": "third",
            "attributePayload": {"attributes": {"level": "3"}},
        },
    )
    converge(target, scope)
    # merge false replaces the whole set (an empty set would keep it: AWS ignores {}).
    src.update_thing_group(
        thingGroupName=scope("floor-3"),
        thingGroupProperties={"attributePayload": {"attributes": {"zone": "z"}, "merge": False}},
    )
    src.delete_thing_group(thingGroupName=scope("floor-1"))
    converge(target, scope)
    assert_in_sync(target, scope)


def dynamic_groups(target: Target, scope: Scope) -> None:
    """A dynamic group's definition (query, index) is created, changed and deleted; each region's
    fleet index computes the members, so only the definition is compared. On an account this
    needs fleet indexing (thing indexing on) in both regions."""
    src = target.source
    for region in (target.source_region, target.destination_region):
        mode = (
            target.iot(region)
            .get_indexing_configuration()
            .get("thingIndexingConfiguration", {})
            .get("thingIndexingMode", "OFF")
        )
        assert mode != "OFF", (
            f"fleet indexing is off in {region}: dynamic groups need it "
            "(aws iot update-indexing-configuration); or deselect with -k 'not dynamic'"
        )
    name = scope("dynamic")
    src.create_dynamic_thing_group(
        thingGroupName=name,
        queryString=f"thingName:{scope.prefix}*",
        thingGroupProperties={"thingGroupDescription": "all of this scenario"},
        tags=scope.tags,
    )
    converge(target, scope)
    src.update_dynamic_thing_group(
        thingGroupName=name,
        thingGroupProperties={"thingGroupDescription": "this scenario's site s1"},
        queryString=f"thingName:{scope.prefix}* AND attributes.site:s1",
    )
    converge(target, scope)
    assert_in_sync(target, scope)
    src.delete_dynamic_thing_group(thingGroupName=name)
    converge(target, scope)


def drift_and_repair(target: Target, scope: Scope) -> None:
    """Drift injected in the destination by hand: the audit reports exactly it, and
    ``reconcile --apply`` repairs it through the pipeline."""
    src, dst = target.source, target.destination
    src.create_thing_type(thingTypeName=scope("type"), tags=scope.tags)
    src.create_thing_group(
        thingGroupName=scope("site"),
        thingGroupProperties={"thingGroupDescription": "site"},
        tags=scope.tags,
    )
    src.create_thing_group(
        thingGroupName=scope("floor"), parentGroupName=scope("site"), tags=scope.tags
    )
    src.create_thing_group(
        thingGroupName=scope("annex"), parentGroupName=scope("site"), tags=scope.tags
    )
    for thing in ("a", "b"):
        src.create_thing(
            thingName=scope(thing),
            thingTypeName=scope("type"),
            attributePayload={"attributes": {"site": "s1"}},
        )
        src.add_thing_to_thing_group(thingName=scope(thing), thingGroupName=scope("floor"))
    converge(target, scope)
    assert_in_sync(target, scope)
    # AWS publishes no billing-group events: a new billing group is drift until reconciled.
    src.create_billing_group(billingGroupName=scope("billing"), tags=scope.tags)
    # Hand edits in the destination.
    dst.update_thing(
        thingName=scope("a"), attributePayload={"attributes": {"site": "edited"}, "merge": True}
    )
    dst.create_thing(thingName=scope("stray"))
    dst.remove_thing_from_thing_group(thingName=scope("b"), thingGroupName=scope("floor"))
    dst.update_thing_group(
        thingGroupName=scope("site"), thingGroupProperties={"thingGroupDescription": "edited"}
    )
    dst.delete_thing_group(thingGroupName=scope("annex"))
    dst.deprecate_thing_type(thingTypeName=scope("type"))

    code, drifts = audit(target, scope)
    assert code == 1
    assert drifts == sorted(
        [
            ("billing_group", scope("billing"), "missing"),
            ("membership", f"{scope('b')}#{scope('floor')}", "missing"),
            ("thing", scope("a"), "changed"),
            ("thing", scope("stray"), "extra"),
            ("thing_group", scope("annex"), "missing"),
            ("thing_group", scope("site"), "changed"),
            ("thing_type", scope("type"), "changed"),
        ]
    )
    code, _ = iot_crr(
        target,
        scope,
        "reconcile",
        "--apply",
        "--allow-deletes",
        "--state-machine-arn",
        target.state_machine_arn,
    )
    assert code == 0  # every repair action was emitted (docs: reconcile --apply exit codes)
    target.wait_until(
        "iot-crr audit clean after the repair", lambda: audit(target, scope) == (0, [])
    )


def onboarding(target: Target, scope: Scope) -> None:
    """How devices onboard in the DR region (issue 23): a role alias, a custom authorizer, a
    JITP template whose CA names it and a fleet-provisioning template with a second version
    appear in the destination, follow one change each, and are deleted there. A CA carries no
    name the run's cleanup could find it by (cleanup looks for its subject): the scenario removes
    what it made, in both regions, whatever happened."""
    iam = target.client("iam", target.source_region)
    try:
        _onboard(target, scope, iam)
    finally:
        for iot in (target.source, target.destination):
            remove_leftovers(iot, iam, scope.prefix)


def _onboard(target: Target, scope: Scope, iam: Any) -> None:
    src, dst = target.source, target.destination
    account = target.client("sts", target.source_region).get_caller_identity()["Account"]
    role = iam.create_role(
        RoleName=scope("role"), AssumeRolePolicyDocument=ROLE_TRUST, Tags=scope.tags
    )["Role"]["Arn"]
    # A function ARN of each region, no function behind it: [assumption] CreateAuthorizer does
    # not check that it exists (docs/onboarding-kinds.md, "What only an account can settle"; the
    # function is the operator's, readiness reports a missing one). The pipeline names the
    # destination region's (pipeline.kinds.authorizer).
    function = "arn:aws:lambda:{region}:" + account + ":function:" + scope("authorize")
    signing_key = _public_key_pem()
    src.create_role_alias(
        roleAlias=scope("alias"), roleArn=role, credentialDurationSeconds=3600, tags=scope.tags
    )
    src.create_authorizer(
        authorizerName=scope("authorizer"),
        authorizerFunctionArn=function.format(region=target.source_region),
        tokenKeyName="token",
        tokenSigningPublicKeys={"key1": signing_key},
        status="ACTIVE",
        tags=scope.tags,
    )
    v1 = {"Parameters": {"SerialNumber": {"Type": "String"}}, "Resources": {}}
    v2 = {
        "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String"}},
        "Resources": {},
    }
    for name, kind in (("jitp", "JITP"), ("fleet", "FLEET_PROVISIONING")):
        src.create_provisioning_template(
            templateName=scope(name),
            description=name,
            templateBody=json.dumps(v1),
            provisioningRoleArn=role,
            enabled=True,
            type=kind,
            tags=scope.tags,
        )
    src.create_provisioning_template_version(
        templateName=scope("fleet"), templateBody=json.dumps(v2), setAsDefault=True
    )
    # SNI_ONLY needs no verification certificate (AWS IoT API Reference,
    # RegisterCACertificate); the destination's copy is SNI_ONLY whatever the source's mode.
    ca_id: str = src.register_ca_certificate(
        caCertificate=CertificateAuthority.new(scope("ca")).pem,
        certificateMode="SNI_ONLY",
        setAsActive=True,
        allowAutoRegistration=True,
        registrationConfig={"templateName": scope("jitp")},
        tags=scope.tags,
    )["certificateId"]

    def canonical(body: dict[str, Any]) -> str:
        return json.dumps(body, sort_keys=True)

    def expected(
        region: str, duration: int, authorizer: str, fleet_enabled: bool, ca: str
    ) -> dict[str, Any]:
        """What a region holds (``onboarding_view``), given the fields the scenario changes."""
        return {
            "role_aliases": {scope("alias"): (role, duration)},
            "authorizers": {
                scope("authorizer"): (
                    function.format(region=region),
                    "token",
                    {"key1": signing_key},
                    authorizer,
                    False,
                )
            },
            "templates": {
                scope("jitp"): ("JITP", v1, True, "jitp", role, [(True, canonical(v1))]),
                scope("fleet"): (
                    "FLEET_PROVISIONING",
                    v2,
                    fleet_enabled,
                    "fleet",
                    role,
                    [(False, canonical(v1)), (True, canonical(v2))],
                ),
            },
            "ca": (ca, "ENABLE", scope("jitp")),
        }

    def destination_is(wanted: dict[str, Any], what: str) -> None:
        target.wait_until(
            f"destination {what} under {scope.prefix}",
            lambda: onboarding_view(dst, scope.prefix, ca_id) == wanted,
        )

    created = (3600, "ACTIVE", True, "ACTIVE")
    assert onboarding_view(src, scope.prefix, ca_id) == expected(target.source_region, *created)
    destination_is(expected(target.destination_region, *created), "holds the onboarding kinds")
    # One change each: the alias's duration (down: at most the role's 1 h maximum session), the authorizer's status, the template's enabled,
    # the CA's status (a CA set INACTIVE in the source must not stay trusted in DR).
    src.update_role_alias(roleAlias=scope("alias"), credentialDurationSeconds=1800)
    src.update_authorizer(authorizerName=scope("authorizer"), status="INACTIVE")
    src.update_provisioning_template(templateName=scope("fleet"), enabled=False)
    src.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    changed = expected(target.destination_region, 1800, "INACTIVE", False, "INACTIVE")
    destination_is(changed, "follows one change of each")
    assert_in_sync(target, scope, ca_id)
    # Deleted: the authorizer and the CA are INACTIVE already (AWS refuses to delete either
    # while ACTIVE); the CA before the JITP template it names.
    src.delete_authorizer(authorizerName=scope("authorizer"))
    src.delete_role_alias(roleAlias=scope("alias"))
    src.delete_ca_certificate(certificateId=ca_id)
    for name in ("jitp", "fleet"):
        src.delete_provisioning_template(templateName=scope(name))
    nothing: dict[str, Any] = {"role_aliases": {}, "authorizers": {}, "templates": {}, "ca": None}
    destination_is(nothing, "has deleted them")


def _public_key_pem() -> str:
    """A token-signing public key (AWS IoT API Reference, CreateAuthorizer:
    ``tokenSigningPublicKeys``, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Target, Scope], None]


SCENARIOS = tuple(
    Scenario(function.__name__.replace("_", "-"), function)
    for function in (
        things,
        type_change,
        type_recreate,
        deprecation,
        groups,
        dynamic_groups,
        drift_and_repair,
        onboarding,
    )
)

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

from conformance import device_state
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


def iot_crr(
    target: Target,
    scope: Scope,
    *args: str,
    ca_id: str | None = None,
    listing: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run ``iot-crr`` as a user would, limited to the scope by ignore rules (and to the CA
    certificate ``ca_id``, if the scope made one); returns the exit code and the report (written
    to a file: stdout is shared with whatever else runs in-process, such as a pipeline's handlers
    logging). ``listing``: the options before the command that opt kinds in (``--shadows``,
    ``--retained GLOB``)."""
    with tempfile.TemporaryDirectory() as tmp:
        rules, report = Path(tmp) / "scope.iotdriftignore", Path(tmp) / "report"
        rules.write_text("\n".join(outside(scope.prefix, ca_id)) + "\n", encoding="utf-8")
        argv = [
            *listing,
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
        # The CLI stamps corrective events with its clock: the wall clock, like registry events.
        factory = Factory(client=target.client, show_progress=False)
        result = CliRunner().invoke(main, argv, obj=factory)
        if result.exit_code not in (0, 1):
            raise AssertionError(f"iot-crr {args[0]} failed ({result.exit_code}): {result.output}")
        return result.exit_code, report.read_text(encoding="utf-8")


def audit(
    target: Target, scope: Scope, ca_id: str | None = None, listing: tuple[str, ...] = ()
) -> tuple[int, list[tuple[str, str, str]]]:
    """``iot-crr audit --format json``: its exit code and drifts as (entity, name, kind)."""
    code, out = iot_crr(target, scope, "audit", "--format", "json", ca_id=ca_id, listing=listing)
    drifts = sorted((d["entity"], d["name"], d["kind"]) for d in json.loads(out)["drifts"])
    return code, drifts


def assert_in_sync(
    target: Target, scope: Scope, ca_id: str | None = None, listing: tuple[str, ...] = ()
) -> None:
    code, drifts = audit(target, scope, ca_id, listing)
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


def shadows(target: Target, scope: Scope) -> None:
    """Device shadows (issue 24): a thing's classic and named shadow are created, their desired
    and reported state changed, a key removed (``null``), the named shadow deleted; the
    destination holds the same desired and reported state each time, and ``iot-crr --shadows
    audit`` agrees (and finds a hand edit of the destination's shadow). The shadows are removed in both regions, whatever happened (the run's
    cleanup removes them too, by the things' names)."""
    thing = scope("device")
    try:
        _shadows(target, scope, thing)
    finally:
        for region in (target.source_region, target.destination_region):
            device_state.remove(target.client("iot-data", region), [thing], scope.prefix)


def _shadows(target: Target, scope: Scope, thing: str) -> None:
    src = target.client("iot-data", target.source_region)
    dst = target.client("iot-data", target.destination_region)
    # The audit lists the shadows of the scope's things only: a glob naming things
    # (docs/shadows.md, "Which shadows") spares the per-thing calls for the rest of the account.
    listing = ("--shadows", "--shadow-include", f"{scope.prefix}*#*")

    def update(shadow: str | None, state: dict[str, Any]) -> None:
        named = {} if shadow is None else {"shadowName": shadow}
        src.update_thing_shadow(
            thingName=thing, payload=json.dumps({"state": state}).encode(), **named
        )

    def destination_holds(wanted: dict[str, Any], what: str) -> None:
        # UpdateThingShadow's answer follows the write ("Device Shadow REST API"): the source
        # holds it at once; the destination once the pipeline has carried it over.
        assert device_state.shadows(src, thing) == wanted, "the source's shadows as written"
        target.wait_until(
            f"destination shadows of {thing} {what}",
            lambda: device_state.shadows(dst, thing) == wanted,
        )

    target.source.create_thing(thingName=thing)
    converge(target, scope)
    update(None, {"desired": {"mode": "eco", "interval": 60}, "reported": {"mode": "eco"}})
    update("config", {"desired": {"uplink": "lte", "hz": 10}, "reported": {"uplink": "lte"}})
    created = {
        device_state.CLASSIC: {
            "desired": {"mode": "eco", "interval": 60},
            "reported": {"mode": "eco"},
        },
        "config": {"desired": {"uplink": "lte", "hz": 10}, "reported": {"uplink": "lte"}},
    }
    destination_holds(created, "as created")
    # Desired changed, reported changed, a key removed: a null value deletes it (AWS IoT
    # Developer Guide, "Shadow document examples": "set the value of the attribute to null").
    update(None, {"desired": {"mode": "boost", "interval": None}})
    update("config", {"reported": {"uplink": "wifi", "rssi": -60}})
    changed = {
        device_state.CLASSIC: {"desired": {"mode": "boost"}, "reported": {"mode": "eco"}},
        "config": {
            "desired": {"uplink": "lte", "hz": 10},
            "reported": {"uplink": "wifi", "rssi": -60},
        },
    }
    destination_holds(changed, "as changed")
    assert_in_sync(target, scope, listing=listing)
    src.delete_thing_shadow(thingName=thing, shadowName="config")
    destination_holds(
        {device_state.CLASSIC: changed[device_state.CLASSIC]}, "without the deleted named shadow"
    )
    assert_in_sync(target, scope, listing=listing)
    # The audit does compare shadows: a hand edit in the destination is its one drift.
    edited = {"desired": {"mode": "manual"}, "reported": {"mode": "eco"}}
    dst.update_thing_shadow(
        thingName=thing, payload=json.dumps({"state": {"desired": {"mode": "manual"}}}).encode()
    )
    target.wait_until(
        "the destination's hand edit reads back",
        lambda: device_state.shadows(dst, thing) == {device_state.CLASSIC: edited},
    )
    assert audit(target, scope, listing=listing) == (
        1,
        [("shadow", f"{thing}#{device_state.CLASSIC}", "changed")],
    )


def retained(target: Target, scope: Scope) -> None:
    """Retained messages (issue 24; reconciled only: docs/retained.md): a retained message
    published in the source is missing in the destination until ``iot-crr --retained GLOB
    reconcile --apply`` copies it; cleared in the source (an empty retained publish), it is
    extra until ``--allow-deletes`` removes it. Cleared in both regions, whatever happened."""
    try:
        _retained(target, scope)
    finally:
        for region in (target.source_region, target.destination_region):
            device_state.remove(target.client("iot-data", region), [], scope.prefix)


def _retained(target: Target, scope: Scope) -> None:
    src = target.client("iot-data", target.source_region)
    dst = target.client("iot-data", target.destination_region)
    topic, payload = scope("device/config"), b'{"mode":"eco","interval":60}'
    # The scope's topics only ("*" crosses "/": docs/retained.md, "What a run does").
    listing = ("--retained", f"{scope.prefix}*")
    repair = ("reconcile", "--apply", "--state-machine-arn", target.state_machine_arn)

    def holds(data: Any, message: tuple[bytes, int] | None) -> Callable[[], bool]:
        return lambda: device_state.retained(data, topic) == message

    src.publish(topic=topic, qos=1, retain=True, payload=payload)
    target.wait_until("the source holds the retained message", holds(src, (payload, 1)))
    assert audit(target, scope, listing=listing) == (
        1,
        [("retained_message", topic, "missing")],
    )
    code, _ = iot_crr(target, scope, *repair, listing=listing)
    assert code == 0  # every repair action was emitted (docs: reconcile --apply exit codes)
    target.wait_until("the destination holds the retained message", holds(dst, (payload, 1)))
    assert_in_sync(target, scope, listing=listing)
    # Cleared: "publishing a message with the RETAIN flag set and an empty (0-byte) message
    # payload" deletes it (AWS IoT Developer Guide, "Using MQTT retained messages").
    src.publish(topic=topic, qos=1, retain=True, payload=b"")
    target.wait_until("the source's retained message is cleared", holds(src, None))
    assert audit(target, scope, listing=listing) == (1, [("retained_message", topic, "extra")])
    code, _ = iot_crr(target, scope, *repair, "--allow-deletes", listing=listing)
    assert code == 0
    target.wait_until("the destination's retained message is cleared", holds(dst, None))
    assert_in_sync(target, scope, listing=listing)


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
        shadows,
        retained,
    )
)

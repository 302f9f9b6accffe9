"""A scope's ignore rules (``conformance.run.outside``): an ``iot-crr`` command run under them
sees the scope's own names, of every kind a scenario names, and the CA certificate it made."""

from __future__ import annotations

from hashlib import sha256

from conformance.run import Run, outside
from pipeline.model import EntityKind
from reconcile.ignore import IgnoreRules

SCOPE = Run("abc123").scope("onboarding")
CA = sha256(b"the scope's CA").hexdigest()
OTHER_CA = sha256(b"someone else's CA").hexdigest()
# The kinds whose names a scenario chooses (the onboarding kinds, shadows of its things and
# retained messages on its topics included).
NAMED = (
    EntityKind.THING,
    EntityKind.THING_TYPE,
    EntityKind.THING_GROUP,
    EntityKind.BILLING_GROUP,
    EntityKind.MEMBERSHIP,
    EntityKind.ROLE_ALIAS,
    EntityKind.AUTHORIZER,
    EntityKind.PROVISIONING_TEMPLATE,
    EntityKind.SHADOW,
    EntityKind.RETAINED_MESSAGE,
)


def test_the_scope_sees_its_own_names_of_every_named_kind_only() -> None:
    rules = IgnoreRules.from_patterns(outside(SCOPE.prefix))
    for kind in NAMED:
        assert not rules.ignores(kind, SCOPE("alias")), kind
        assert rules.ignores(kind, "crrconf-abc123-other-alias"), kind
        assert rules.ignores(kind, SCOPE.prefix[:-1]), kind


def test_a_scope_sees_the_ca_it_names_and_no_other() -> None:
    without = IgnoreRules.from_patterns(outside(SCOPE.prefix))
    assert without.ignores(EntityKind.CA_CERTIFICATE, CA)
    rules = IgnoreRules.from_patterns(outside(SCOPE.prefix, CA))
    assert not rules.ignores(EntityKind.CA_CERTIFICATE, CA)
    for other in (OTHER_CA, CA[:-1], CA + "0", SCOPE("ca")):
        assert rules.ignores(EntityKind.CA_CERTIFICATE, other), other

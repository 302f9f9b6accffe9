"""Root causes: drift that exists only because of other drift is listed under it, in every
human format; nothing is dropped."""

from __future__ import annotations

import pytest

from reconcile.diff import DriftReport, diff_snapshots
from reconcile.report import render
from reconcile.rootcause import by_root_cause
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
MEMBERS = 174


def report_with_a_missing_group() -> DriftReport:
    """A group missing in the target with 174 members, a thing of a missing type with its
    membership, and an unrelated change."""
    things = [{"name": f"device-{i:05d}"} for i in range(MEMBERS)]
    source = Snapshot.from_records(
        SRC,
        1,
        things=[
            *things,
            {"name": "gw", "thing_type": "Gateway"},
            {"name": "t", "attributes": {"a": "1"}},
        ],
        thing_types=[{"name": "Gateway"}],
        thing_groups=[{"name": "floor-1"}, {"name": "site"}],
        memberships=[
            *({"thing": t["name"], "group": "floor-1"} for t in things),
            {"thing": "gw", "group": "site"},
        ],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[*things, {"name": "t", "attributes": {"a": "2"}}],
        thing_groups=[{"name": "site"}],
    )
    return diff_snapshots(source, target, clock=lambda: 1)


def test_dependents_go_under_their_root_and_nothing_is_lost() -> None:
    report = report_with_a_missing_group()
    causes = by_root_cause(report.drifts)

    assert sum(c.explains for c in causes) == len(report.drifts)
    first = causes[0]
    assert (first.drift.entity.value, first.drift.name, first.drift.kind) == (
        "thing_group",
        "floor-1",
        "missing",
    )
    assert first.consequences() == [f"{MEMBERS} memberships of the missing group floor-1"]
    # the membership of a thing of a missing type goes to the root of the chain: the type
    gateway = next(c for c in causes if c.drift.name == "Gateway")
    assert sorted(d.name for d in gateway.dependents) == ["gw", "gw#site"]
    assert gateway.consequences() == [
        "1 thing of the missing thing type Gateway",
        "1 membership of the missing thing type Gateway",
    ]
    # a change explains nothing else and stands alone
    assert next(c for c in causes if c.drift.name == "t").dependents == ()


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_every_human_format_shows_the_group_not_174_rows(fmt: str) -> None:
    text = render(report_with_a_missing_group(), fmt)

    assert f"{MEMBERS} memberships" in text
    assert "of the missing group floor-1" in text
    assert "from 3 root cause(s)" in text.replace("\\", "")  # Markdown escapes the parentheses
    # the members are named a few at a time in the table and Markdown, all of them (folded) in HTML
    listed = text.count("device-00")
    assert listed == (MEMBERS if fmt == "html" else 3)


def test_the_table_limit_counts_root_causes_and_says_how_many_drifts_are_left() -> None:
    text = render(report_with_a_missing_group(), "table", limit=1)

    assert "floor-1" in text
    assert "… and 4 more" in text  # Gateway, its thing and membership, and the changed thing


CERT, OTHER = "b" * 64, "a" * 64
PEM = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
DOC = '{"Statement":[],"Version":"2012-10-17"}'


def report_with_a_missing_certificate() -> DriftReport:
    """A certificate missing in the target with its thing principal and policy attachment, a
    policy missing with its attachment to a group, and a revoked certificate active there."""
    source = Snapshot.from_records(
        SRC,
        1,
        things=[{"name": "t2"}],
        thing_groups=[{"name": "site"}],
        certificates=[
            {"name": CERT, "status": "ACTIVE", "pem": PEM},
            {"name": OTHER, "status": "REVOKED", "pem": PEM},
        ],
        policies=[{"name": "device", "document": DOC}, {"name": "ops", "document": DOC}],
        thing_principals=[{"name": f"t2#{CERT}", "exclusive": False}],
        policy_targets=[{"name": f"device#cert/{CERT}"}, {"name": "ops#thinggroup/site"}],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[{"name": "t2"}],
        thing_groups=[{"name": "site"}],
        certificates=[{"name": OTHER, "status": "ACTIVE", "pem": PEM}],
        policies=[{"name": "device", "document": DOC}],
    )
    return diff_snapshots(source, target, clock=lambda: 1)


def test_a_missing_certificate_or_policy_explains_its_attachments() -> None:
    report = report_with_a_missing_certificate()
    causes = by_root_cause(report.drifts)

    assert sum(c.explains for c in causes) == len(report.drifts) == 6
    certificate = next(c for c in causes if c.drift.name == CERT)
    assert certificate.consequences() == [
        f"1 thing principal of the missing certificate {CERT}",
        f"1 policy attachment of the missing certificate {CERT}",
    ]
    policy = next(c for c in causes if c.drift.name == "ops")
    assert [d.name for d in policy.dependents] == ["ops#thinggroup/site"]
    assert len(causes) == 3  # the certificate, the policy, the revoked certificate's status


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_every_human_format_lists_certificate_drift_as_such(fmt: str) -> None:
    text = render(report_with_a_missing_certificate(), fmt).replace("\\", "")

    # the revocation that did not reach the target: a high certificate status row
    row = next(line for line in text.splitlines() if "REVOKED" in line and OTHER in line)
    assert all(word in row for word in ("high", "certificate", "changed", "status"))
    # the attachments under the certificate, named by what the phrase does not say
    assert "1 thing principal" in text and "1 policy attachment" in text
    assert f"of the missing certificate {CERT}" in text
    assert f"t2#{CERT}" not in text and f"device#cert/{CERT}" not in text


def report_with_a_changed_type() -> DriftReport:
    """The type ``sensor`` changed in the source (its searchable attributes): the destination
    re-creates it (deprecate, detach its things keeping at most 3 attributes, delete 5 minutes
    later, create, re-attach), so meanwhile its things differ in type and attributes there."""
    attributes = {"site": "dub", "floor": "1", "room": "7", "zone": "b"}
    kept = dict(sorted(attributes.items())[:3])
    source = Snapshot.from_records(
        SRC,
        1,
        thing_types=[{"name": "sensor", "searchable_attributes": ["site", "floor"]}],
        things=[
            *(
                {"name": f"s{i}", "thing_type": "sensor", "attributes": attributes}
                for i in range(3)
            ),
            {"name": "new", "thing_type": "sensor"},
            {"name": "other", "attributes": {"a": "1"}},
        ],
    )
    target = Snapshot.from_records(
        DST,
        1,
        thing_types=[{"name": "sensor", "searchable_attributes": ["site"], "deprecated": True}],
        things=[
            *({"name": f"s{i}", "attributes": kept} for i in range(3)),
            {"name": "other", "attributes": {"a": "2"}},
        ],
    )
    return diff_snapshots(source, target, clock=lambda: 1)


def test_a_changed_type_explains_its_things_drift() -> None:
    # issue 22 item 14: a changed type stood alone, its things' drift as unrelated rows
    causes = by_root_cause(report_with_a_changed_type().drifts)

    sensor = next(c for c in causes if c.drift.name == "sensor")
    assert sensor.drift.kind == "changed"
    assert sorted(d.name for d in sensor.dependents) == ["new", "s0", "s1", "s2"]
    assert sensor.consequences() == ["4 things of the changed thing type sensor"]
    # a thing whose type did not change is not its dependent
    assert next(c for c in causes if c.drift.name == "other").dependents == ()
    assert causes[0] is sensor


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_every_human_format_links_a_changed_type_to_its_things(fmt: str) -> None:
    text = render(report_with_a_changed_type(), fmt).replace("\\", "")
    assert "4 things" in text
    assert "of the changed thing type sensor" in text

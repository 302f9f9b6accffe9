"""The emulation against the recorded answers (``conformance/recorded-answers.json``): what AWS
published and refused, documented or recorded on an account by ``make conformance ARGS=--aws``.

A contradiction fails ``make test``: either the emulation is wrong (fix it) or the recorded answer
is (replace it with one recorded on an account). The deliberately wrong fixture shows that each
kind of contradiction is caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import answers, authorization, claims, registration
from conformance.refusals import PROBES_BY_NAME, Answer
from conformance.run import Run
from sandbox.emulation.refusals import REFUSALS
from sandbox.stack import Sandbox

WRONG = Path(__file__).parent / "fixtures" / "wrong-answers.json"


@pytest.fixture(scope="module")
def emulation() -> Iterator[tuple[list[dict[str, Any]], dict[str, Answer]]]:
    """The events the emulation publishes and its answers to every refusal probe."""
    with Sandbox("us-east-1", "eu-west-1") as box:
        yield claims.emulated_events(box, Run.new()), claims.emulated_refusals(box, Run.new())


def test_the_committed_answers_are_well_formed() -> None:
    recorded = answers.load(answers.COMMITTED)
    assert recorded["events"], "start from the documented examples"
    for entry in recorded["events"]:
        assert entry["source"] and isinstance(entry["verified_on_account"], bool)
        assert entry["payload"]["eventType"] == entry["eventType"]
        assert set(entry["optional_keys"]) <= set(entry["payload"]) | {"dynamicGroupMappingId"}
    for entry in recorded["refusals"]:
        assert entry["probe"] in PROBES_BY_NAME, f"no probe provokes {entry['probe']}"
        assert entry["operation"] == PROBES_BY_NAME[entry["probe"]].operation


def test_every_authorization_question_has_one_recorded_answer() -> None:
    recorded = answers.load(answers.COMMITTED)["authorizations"]
    assert sorted(entry["question"] for entry in recorded) == sorted(
        authorization.QUESTIONS_BY_NAME
    )
    for entry in recorded:
        assert entry["operation"] == "TestAuthorization" and entry["source"]
        assert entry["authDecision"] in ("ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY")


def test_a_wrong_authorization_answer_is_contradicted() -> None:
    recorded = {
        "question": "publish-denied",
        "operation": "TestAuthorization",
        "source": "a test",
        "verified_on_account": True,
        **authorization.AuthAnswer("ALLOWED", allowed=("device",)).to_json(),
    }
    answered = {
        "publish-denied": authorization.AuthAnswer("EXPLICIT_DENY", explicit_deny=("device",))
    }
    found = answers.compare_authorizations([recorded], answered)
    assert [c.details for c in found] == [
        (
            "authDecision: answered EXPLICIT_DENY, recorded ALLOWED",
            "allowed: answered [], recorded ['device']",
            "explicitDeny: answered ['device'], recorded []",
        )
    ]
    assert answers.compare_authorizations([recorded], {}, require_all=False) == []
    assert (
        answers.compare_authorizations(
            [{**recorded, **answered["publish-denied"].to_json()}], answered
        )
        == []
    )


def test_every_registration_question_has_one_recorded_answer() -> None:
    recorded = answers.load(answers.COMMITTED)["registrations"]
    assert sorted(entry["question"] for entry in recorded) == sorted(registration.QUESTIONS)
    for entry in recorded:
        assert entry["operation"] == registration.OPERATION and entry["source"]
        assert isinstance(entry["verified_on_account"], bool)


def test_a_wrong_registration_answer_is_contradicted() -> None:
    recorded = {
        "question": "aws-issued",
        "operation": "RegisterCertificateWithoutCA",
        "source": "a test",
        "verified_on_account": True,
        "code": "InvalidRequestException",
        "message": "refused",
    }
    found = answers.compare_registrations([recorded], {"aws-issued": Answer(None)})
    assert [(c.entry, c.details) for c in found] == [
        (
            "aws-issued (RegisterCertificateWithoutCA)",
            ("the emulation accepts the call; AWS answers InvalidRequestException",),
        )
    ]
    assert answers.compare_registrations([recorded], {}, require_all=False) == []
    assert [c.details for c in answers.compare_registrations([recorded], {})] == [
        ("no question 'aws-issued' was run against the emulation",)
    ]
    assert (
        answers.compare_registrations(
            [recorded], {"aws-issued": Answer("InvalidRequestException", "other words")}
        )
        == []
    )


def test_every_refusal_the_emulation_claims_is_probed_and_has_a_recorded_answer() -> None:
    """The emulation's table of refusals (``sandbox.emulation.refusals``) is what a run on an
    account checks: each needs a probe to provoke it and an entry to compare it with."""
    recorded = {entry["probe"]: entry for entry in answers.load(answers.COMMITTED)["refusals"]}
    assert set(PROBES_BY_NAME) == set(REFUSALS)
    assert set(recorded) == set(REFUSALS)
    for key, refusal in REFUSALS.items():
        assert recorded[key]["code"] == refusal.code, key


def test_the_emulation_agrees_with_every_recorded_answer(
    emulation: tuple[list[dict[str, Any]], dict[str, Answer]],
) -> None:
    events, refusals = emulation
    recorded = answers.load(answers.COMMITTED)
    contradictions = answers.compare_events(recorded["events"], events)
    contradictions += answers.compare_refusals(recorded["refusals"], refusals)
    assert [str(c) for c in contradictions] == []


def test_a_deliberately_wrong_fixture_is_contradicted(
    emulation: tuple[list[dict[str, Any]], dict[str, Answer]],
) -> None:
    events, refusals = emulation
    wrong = answers.load(WRONG)
    found = answers.compare_events(wrong["events"], events)
    found += answers.compare_refusals(wrong["refusals"], refusals)
    assert [(c.entry, c.details) for c in found] == [
        (
            "thing-created-wrong",
            (
                "thingArn: recorded, not published by the emulation",
                "versionNumber: recorded string, emulated number",
            ),
        ),
        ("thing-renamed", ("the emulation published no THING_EVENT RENAMED",)),
        (
            "delete_thing_type_in_use (DeleteThingType)",
            (
                "the emulation answers InvalidRequestException; AWS answers ResourceNotFoundException",
            ),
        ),
        (
            "delete_thing_type_in_use (DeleteThingType)",
            ("the emulation answers InvalidRequestException; AWS accepts it",),
        ),
    ]
    assert "verified on an account" in str(found[0])


def test_shapes_compare_types_keys_and_elements_not_values() -> None:
    recorded = answers.shape(
        {"n": 1, "s": "x", "attributes": {"a": "1"}, "chain": [{"groupArn": "a"}], "gone": None}
    )
    same = answers.shape(
        {"n": 2, "s": "y", "attributes": {}, "chain": [{"groupArn": "b"}], "gone": None}
    )
    assert answers.shape_differences(recorded, same) == []
    other = answers.shape({"n": "2", "s": "y", "attributes": {"b": 2}, "chain": [{}], "gone": []})
    assert answers.shape_differences(recorded, other) == [
        "attributes.*: recorded string, emulated number",
        "chain.[].groupArn: recorded, not published by the emulation",
        "gone: recorded null, emulated array",
        "n: recorded number, emulated string",
    ]


def test_a_run_writes_anonymised_answers_one_event_per_shape(tmp_path: Path) -> None:
    run = Run("abc123")
    event = {
        "eventType": "THING_EVENT",
        "operation": "CREATED",
        "accountId": "210987654321",
        "thingName": f"{run.prefix}things-a",
        "attributes": {},
        "topic": f"$aws/events/thing/{run.prefix}things-a/created",
    }
    document = answers.observed(
        [event, {**event, "thingName": f"{run.prefix}things-b"}],
        {"delete_thing_with_principals": ("DeleteThing", Answer("InvalidRequestException", "x"))},
        registrations={"aws-issued": Answer("InvalidRequestException", "210987654321 refused")},
        source="recorded by conformance run abc123",
        verified_on_account=True,
        account_id="210987654321",
        prefix=run.prefix,
    )
    answers.write(document, tmp_path / "answers.json")
    reread = answers.load(tmp_path / "answers.json")
    assert len(reread["events"]) == 1
    payload = reread["events"][0]["payload"]
    assert payload["accountId"] == "123456789012"
    assert payload["thingName"] == "crrconf-run-things-a"
    assert "210987654321" not in (tmp_path / "answers.json").read_text()
    assert reread["refusals"] == [
        {
            "probe": "delete_thing_with_principals",
            "operation": "DeleteThing",
            "source": "recorded by conformance run abc123",
            "verified_on_account": True,
            "code": "InvalidRequestException",
            "message": "x",
        }
    ]
    assert reread["registrations"] == [
        {
            "question": "aws-issued",
            "operation": "RegisterCertificateWithoutCA",
            "source": "recorded by conformance run abc123",
            "verified_on_account": True,
            "code": "InvalidRequestException",
            "message": "123456789012 refused",
        }
    ]

"""The shadow kind's names, values and messages, refused where AWS would refuse them or where
the message is not one AWS publishes (pipeline/kinds/shadow.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import CrrError, EventValidationError, RegistryValidationError
from pipeline.events import corrective_event, parse_event
from pipeline.kinds.shadow import KIND, STATE_MAX_BYTES, split_shadow_name, stamped_ms
from pipeline.model import Change, EntityKind, Origin

REGION = "us-east-1"


def _corrective(name: str, state: dict[str, Any]) -> dict[str, Any]:
    origin = Origin(REGION, 1_700_000_000_000, "c-1")
    change = Change(EntityKind.SHADOW, name, origin, fields=state, corrective=True, sync="s")
    return corrective_event(change)


def test_names_split_into_thing_and_shadow_and_the_classic_token_is_no_shadow_name() -> None:
    assert split_shadow_name("dev-1#~classic") == ("dev-1", None)
    assert split_shadow_name("dev-1#$telemetry") == ("dev-1", "$telemetry")
    with pytest.raises(EventValidationError):
        KIND.check_name("name", "dev-1#~other")  # "~" is in no shadow name
    with pytest.raises(RegistryValidationError):
        KIND.check_name("name", "dev 1#cfg")


@pytest.mark.parametrize(
    ("state", "error", "field"),
    [
        ({"desired": "not json"}, EventValidationError, "state.desired"),
        ({"desired": "[1, 2]"}, EventValidationError, "state.desired"),
        ({"desired": '{"a": null}'}, EventValidationError, "state.desired.a"),
        ({"reported": 5}, EventValidationError, "state.reported"),
        ({"desired": '{"a":"' + "x" * STATE_MAX_BYTES + '"}'}, EventValidationError, "state"),
        ({"delta": "{}"}, EventValidationError, "state.delta"),
    ],
)
def test_a_corrective_events_state_is_refused_where_aws_would(
    state: dict[str, Any], error: type[CrrError], field: str
) -> None:
    with pytest.raises(error) as raised:
        parse_event(_corrective("dev-1#cfg", state), region=REGION)
    assert getattr(raised.value, "field", None) == field


def test_a_corrective_events_sections_come_back_canonical() -> None:
    state = {"desired": '{ "b": 1, "a": [true, 2.5] }', "reported": "{}"}
    parsed = parse_event(_corrective("dev-1#~classic", state), region=REGION)
    assert parsed.fields == {"desired": '{"a":[true,2.5],"b":1}', "reported": "{}"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"topic": "$aws/things/dev-1/shadow/update/accepted", "version": 1}, "eventType"),
        ({"topic": "$aws/things/dev-1/shadow/update/documents", "timestamp": 1}, "current"),
        (
            {
                "topic": "$aws/things/dev-1/shadow/name/a~b/update/documents",
                "current": {"version": 1},
                "timestamp": 1,
            },
            "topic",
        ),
        ({"topic": "$aws/things/dev-1/shadow/delete/accepted", "timestamp": "1"}, "version"),
    ],
)
def test_messages_aws_does_not_publish_so_are_refused(message: dict[str, Any], field: str) -> None:
    with pytest.raises(EventValidationError) as raised:
        parse_event(message, region=REGION)
    assert raised.value.field == field


def test_a_second_stands_for_its_last_millisecond() -> None:
    assert stamped_ms(1_700_000_000) == 1_700_000_000_999
    assert stamped_ms(1_700_000_000_123) == 1_700_000_000_123  # already milliseconds


def test_the_same_topic_version_and_second_in_two_regions_are_two_messages() -> None:
    # Each region counts its own versions: a write replicated from DR can give the primary a
    # message with DR's topic, version and second. Were it one id, persist would take the
    # primary's echo for a redelivery of DR's message (a "duplicate") instead of an echo.
    message = {
        "topic": "$aws/things/dev-1/shadow/update/documents",
        "current": {"version": 2, "state": {"desired": {"mode": "eco"}}},
        "timestamp": 1_700_000_000,
    }
    primary = parse_event(dict(message), region="us-east-1").origin.event_id
    dr = parse_event(dict(message), region="eu-west-1").origin.event_id
    assert primary != dr
    assert parse_event(dict(message), region="us-east-1").origin.event_id == primary

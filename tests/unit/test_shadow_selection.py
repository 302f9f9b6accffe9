"""Which shadows, and which of their sections, are replicated: the one decision
(``ShadowSelection.keep``), its settings' parsing, and what the replicator does with a section
an item does not hold (pipeline/kinds/shadow_selection.py, pipeline/kinds/shadow.py)."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import EventValidationError
from pipeline.kinds.shadow import shadow_calls
from pipeline.kinds.shadow_selection import (
    ALL,
    ShadowSelection,
    parse_selection,
    selection_from_env,
)
from pipeline.model import Change, EntityKind, Origin

STATE = {"desired": '{"mode":"eco"}', "reported": '{"fw":"1.0"}'}


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        (ALL, {"dev#~classic", "dev#config", "dev#$telemetry", "dev#telemetry-1"}),
        (ShadowSelection(exclude=("$*",)), {"dev#~classic", "dev#config", "dev#telemetry-1"}),
        (ShadowSelection(include=("~classic",)), {"dev#~classic"}),
        (
            ShadowSelection(include=("*",), exclude=("~classic", "telemetry-*")),
            {"dev#config", "dev#$telemetry"},
        ),
        (ShadowSelection(include=("config", "$*")), {"dev#config", "dev#$telemetry"}),
    ],
)
def test_include_and_exclude_globs_name_shadows_the_classic_one_as_tilde_classic(
    selection: ShadowSelection, selected: set[str]
) -> None:
    names = {"dev#~classic", "dev#config", "dev#$telemetry", "dev#telemetry-1"}
    assert {name for name in names if selection.selects(name)} == selected
    for name in names - selected:
        assert selection.keep(name, STATE) is None


def test_only_the_replicated_section_is_kept_and_compared_the_other_reads_as_empty() -> None:
    desired_only = ShadowSelection(sections=("desired",))
    assert desired_only.keep("dev#cfg", STATE) == {"desired": '{"mode":"eco"}'}
    assert desired_only.compared("dev#cfg", STATE) == {
        "desired": '{"mode":"eco"}',
        "reported": "{}",
    }
    reported_only = ShadowSelection(sections=("reported",))
    assert reported_only.keep("dev#cfg", STATE) == {"reported": '{"fw":"1.0"}'}
    assert ALL.keep("dev#cfg", STATE) == STATE


def test_persist_admits_other_kinds_unchanged_and_a_shadows_selected_sections() -> None:
    origin = Origin("us-east-1", 1_700_000_000_999, "e-1", None, 3)
    thing = Change(EntityKind.THING, "dev", origin, fields={"attributes": {}})
    shadow = Change(EntityKind.SHADOW, "dev#~classic", origin, fields=dict(STATE))
    tombstone = Change(EntityKind.SHADOW, "dev#$t", origin, deleted=True)
    selection = ShadowSelection(exclude=("$*",), sections=("desired",))
    assert selection.admitted(thing) is thing
    admitted = selection.admitted(shadow)
    assert admitted is not None and admitted.fields == {"desired": '{"mode":"eco"}'}
    assert selection.admitted(tombstone) is None  # a shadow not replicated: nothing of it
    assert ALL.admitted(shadow) is shadow


def test_the_replicator_leaves_a_section_the_item_does_not_hold_as_the_destination_has_it() -> None:
    # GIVEN the destination's shadow with a device's own reported state
    actual = {"desired": '{"mode":"boost"}', "reported": '{"fw":"2.0","rssi":-60}'}
    # WHEN the item holds only the desired section (SHADOW_SECTIONS=desired)
    (call,) = shadow_calls("dev#~classic", {"desired": '{"mode":"eco"}'}, actual)
    # THEN the update names the desired state only: reported is not nulled
    assert json.loads(call.params["payload"]) == {"state": {"desired": {"mode": "eco"}}}
    # AND nothing is called when the desired state already agrees
    assert shadow_calls("dev#~classic", {"desired": '{"mode":"boost"}'}, actual) == []


def test_the_settings_parse_from_text_and_name_the_bad_variable() -> None:
    assert selection_from_env({}) == ALL
    assert selection_from_env(
        {
            "SHADOW_INCLUDE": " cfg,~classic  ops-*",
            "SHADOW_EXCLUDE": "$*",
            "SHADOW_SECTIONS": "reported",
        }
    ) == ShadowSelection(("cfg", "~classic", "ops-*"), ("$*",), ("reported",))
    assert parse_selection(only="both") == ALL
    for include, exclude, only, variable in [
        ("things/*", "", "", "SHADOW_INCLUDE"),
        ("", "a" * 65, "", "SHADOW_EXCLUDE"),
        ("", "", "metadata", "SHADOW_SECTIONS"),
        ("", "", "desired,reported", "SHADOW_SECTIONS"),
    ]:
        with pytest.raises(EventValidationError) as caught:
            parse_selection(include, exclude, only)
        assert caught.value.field == variable


def test_describe_says_what_is_left_out() -> None:
    assert ALL.describe() == ""
    selection = ShadowSelection(("cfg",), ("$*",), ("desired",))
    assert selection.describe() == "shadows: include cfg; exclude $*; desired only"


def test_a_glob_with_a_hash_names_things_and_their_shadows() -> None:
    gateways = ShadowSelection(include=("gw-*#*",), exclude=("*#$*",))
    assert gateways.selects("gw-1#~classic") and gateways.selects("gw-1#config")
    assert not gateways.selects("gw-1#$telemetry") and not gateways.selects("sensor-1#config")
    # a snapshot lists the shadows of the things the globs can select, and no others
    assert gateways.lists_under({"name": "gw-1"}) and not gateways.lists_under({"name": "s-1"})
    assert ShadowSelection(include=("config",)).lists_under({"name": "s-1"})
    assert not ShadowSelection(exclude=("test-*#*",)).lists_under({"name": "test-1"})
    assert ShadowSelection(exclude=("test-*#cfg",)).lists_under({"name": "test-1"})
    assert parse_selection("gw-*#*, *#config").include == ("gw-*#*", "*#config")
    with pytest.raises(EventValidationError):
        parse_selection("gw#a#b")

"""Unit tests for pipeline.rules: AWS IoT's documented name and value rules."""

from __future__ import annotations

import pytest

from pipeline import rules
from pipeline.errors import PermanentError, RegistryValidationError

# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "MyThing", "sensor-1", "a:b_c-D9", "x" * 128, "Tg_level5", "0"]
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert rules.validate_name("thingName", name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 129,
        "my thing",
        "a#b",  # the key separator can never be part of a name
        "a/b",
        "a.b",
        "thing\n",
        "café",
        "١٢٣",  # non-ASCII digits
        None,
        42,
        ["a"],
    ],
)
def test_invalid_names_raise_with_field_and_rule(name: object) -> None:
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_name("thingName", name)
    assert caught.value.field == "thingName"
    assert caught.value.value == name
    assert "[a-zA-Z0-9:_-]" in caught.value.rule
    assert isinstance(caught.value, PermanentError)


# --- attributes ------------------------------------------------------------------------------------


def test_attributes_within_rules_are_returned() -> None:
    attrs = {"serial.no": "A-1", "a,b@c/d:e#f": "x=[1]", "empty": "", "n" * 128: "v" * 800}
    assert rules.validate_attributes("attributes", attrs, typed=True) == attrs


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"colour": "dark red"}, "attributes.colour"),  # no spaces in values
        ({"colour": "x" * 801}, "attributes.colour"),
        ({"colour": "r\u00e9d"}, "attributes.colour"),
        ({"colour": 3}, "attributes.colour"),
        ({"colour": None}, "attributes.colour"),
        ({"bad name": "x"}, "attributes.bad name"),
        ({"": "x"}, "attributes."),
        ({"n" * 129: "x"}, "attributes." + "n" * 129),
        ({"a=b": "x"}, "attributes.a=b"),  # '=' is allowed in values only
    ],
)
def test_bad_attribute_names_and_values_name_the_attribute(attrs: object, field: str) -> None:
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_attributes("attributes", attrs, typed=True)
    assert caught.value.field == field


@pytest.mark.parametrize("attrs", [None, [], "a=b", [("a", "b")]])
def test_attributes_must_be_a_map(attrs: object) -> None:
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_attributes("attributes", attrs, typed=None)
    assert caught.value.field == "attributes"


def _attrs(n: int) -> dict[str, str]:
    return {f"a{i}": "v" for i in range(n)}


@pytest.mark.parametrize(
    ("typed", "max_count", "allowed", "refused"),
    [
        (False, None, 3, 4),  # a thing without a type
        (True, None, 50, 51),  # a thing with a type
        (None, 50, 50, 51),  # a thing group
        (False, 50, 50, 51),  # max_count wins over typed
    ],
)
def test_attribute_count_caps(
    typed: bool | None, max_count: int | None, allowed: int, refused: int
) -> None:
    assert len(rules.validate_attributes("a", _attrs(allowed), typed=typed, max_count=max_count))
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_attributes("a", _attrs(refused), typed=typed, max_count=max_count)
    assert caught.value.field == "a"
    assert f"at most {allowed}" in caught.value.rule


def test_count_is_not_checked_when_typed_is_none_without_max() -> None:
    assert len(rules.validate_attributes("a", _attrs(200), typed=None)) == 200


# --- descriptions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [None, "", "My thing type", "x" * 2028, "Température étage 2 (bâtiment B) \u2013 ok!"]
)
def test_valid_descriptions(text: str | None) -> None:
    assert rules.validate_description("description", text) == text


@pytest.mark.parametrize(
    "text", ["x" * 2029, "line\nbreak", "tab\there", "nul\x00", "nbsp\u00a0", 5, ["a"]]
)
def test_invalid_descriptions(text: object) -> None:
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_description("description", text)
    assert caught.value.field == "description"


# --- searchable attribute names --------------------------------------------------------------------


def test_attribute_names_list() -> None:
    assert rules.validate_attribute_names("s", ["b", "a"]) == ["b", "a"]
    assert rules.validate_attribute_names("s", ()) == []


@pytest.mark.parametrize(
    ("values", "field"), [("ab", "s"), ({"a": 1}, "s"), (["ok", "not ok"], "s.1"), ([1], "s.0")]
)
def test_attribute_names_list_errors(values: object, field: str) -> None:
    with pytest.raises(RegistryValidationError) as caught:
        rules.validate_attribute_names("s", values)
    assert caught.value.field == field

"""Helpers for the infrastructure checks: load the SAM templates with CloudFormation tags, walk them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
STATEMACHINES = INFRA / "statemachines"
TEMPLATE_NAMES = ("source", "destination", "reconcile")


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that turns short-form intrinsics (!Ref, !Sub, !GetAtt, ...) into long form."""


def _construct_intrinsic(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=CfnLoader)
    return document


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def load_asl(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STATEMACHINES / name).read_text())
    return loaded


def all_templates() -> dict[str, dict[str, Any]]:
    return {name: load_template(INFRA / f"{name}.yaml") for name in TEMPLATE_NAMES}


def walk(value: Any) -> Iterator[Any]:
    """Every node of a parsed template (dicts, lists and scalars), depth first."""
    yield value
    if isinstance(value, dict):
        for child in value.values():
            yield from walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from walk(child)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(value: Any) -> list[dict[str, Any]]:
    """Policy statements, taking both branches of any Fn::If and dropping AWS::NoValue."""
    found: list[dict[str, Any]] = []
    for entry in as_list(value):
        if isinstance(entry, dict) and "Fn::If" in entry:
            _, when_true, when_false = entry["Fn::If"]
            found += statements(when_true) + statements(when_false)
        elif isinstance(entry, dict) and entry != {"Ref": "AWS::NoValue"}:
            found.append(entry)
    return found


def policy_documents(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"] for policy in props.get("Policies", [])]
    return [props["PolicyDocument"]]


def role_actions(template: dict[str, Any], role: str) -> set[str]:
    """Every action the role's inline policies grant (both branches of any Fn::If)."""
    resource = template["Resources"][role]
    return {
        action
        for document in policy_documents(resource)
        for statement in statements(document["Statement"])
        for action in as_list(statement["Action"])
    }

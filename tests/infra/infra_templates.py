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

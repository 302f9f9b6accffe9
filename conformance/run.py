"""One conformance run: its unique name prefix, its tag, and what it may touch.

Every resource a run creates is named ``crrconf-<run id>-...`` (things cannot be tagged, so the
prefix is the one mark every resource carries) and, where AWS allows tags, tagged
``iot-crr-conformance=<run id>``. Cleanup and the foreign-registry guard work from these marks.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

FAMILY = "crrconf"
TAG_KEY = "iot-crr-conformance"
_RUN_ID = re.compile(r"^[a-z0-9]{6,12}$")
# Entity kinds as ``iot-crr`` ignore rules name them (reconcile.ignore), the ones named by a name
# the scenario chooses. A CA certificate is named by its id (the SHA-256 of its DER), which no
# prefix marks: ``outside`` takes the ids a scope made.
_IGNORED_KINDS = (
    "thing",
    "thing_type",
    "thing_group",
    "billing_group",
    "membership",
    "role_alias",
    "authorizer",
    "provisioning_template",
    # A shadow is named <thing>#<shadow>, so the thing's prefix marks it; a retained message by
    # its topic, which a scenario starts with the prefix.
    "shadow",
    "retained_message",
)
_CA_KIND = "ca_certificate"


class RunError(Exception):
    """A run cannot start or clean up as asked (one line, shown to the operator)."""


@dataclass(frozen=True)
class Run:
    """A run id and the names derived from it."""

    run_id: str

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise RunError(f"run id {self.run_id!r}: expected 6-12 lowercase letters or digits")

    @classmethod
    def new(cls) -> Run:
        return cls(secrets.token_hex(4))

    @property
    def prefix(self) -> str:
        """Every registry name of this run starts with it (AWS names allow ``[a-zA-Z0-9:_-]``)."""
        return f"{FAMILY}-{self.run_id}-"

    @property
    def rule_prefix(self) -> str:
        """Topic rule names allow only ``[a-zA-Z0-9_]``."""
        return f"{FAMILY}_{self.run_id}_"

    def scope(self, scenario: str) -> Scope:
        return Scope(self, f"{self.prefix}{scenario}-")

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    @property
    def tags(self) -> list[dict[str, str]]:
        """IoT's tag list shape (CreateThingType, CreateThingGroup, CreateBillingGroup, ...)."""
        return [{"Key": TAG_KEY, "Value": self.run_id}]


@dataclass(frozen=True)
class Scope:
    """One scenario's share of a run: its own name prefix, so scenarios never see each other."""

    run: Run
    prefix: str

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    @property
    def tags(self) -> list[dict[str, str]]:
        return self.run.tags


def is_conformance_name(name: str) -> bool:
    """Made by some conformance run (this one or an interrupted earlier one)."""
    return name.startswith(f"{FAMILY}-") or name.startswith(f"{FAMILY}_")


def outside(prefix: str, ca_id: str | None = None) -> list[str]:
    """``iot-crr`` ignore rules for every name that does NOT start with ``prefix``, and for every
    CA certificate but ``ca_id`` (every CA when None: a CA carries no name to mark it).

    Ignore rules are globs that say what to drop, so "everything but the prefix" is spelled one
    character at a time: a name leaves the prefix at its first differing character
    (``[!c]*``, ``c[!r]*``, ...) or ends before it (``c``, ``cr``, ...). Audits and repairs under
    these rules see and touch only the scope's own resources, even in a shared account.
    """
    globs = _not_starting_with(prefix)
    rules = []
    for kind in _IGNORED_KINDS:
        rules += [f"{kind}:{glob}" for glob in globs]
    if ca_id is None:
        return [*rules, f"{_CA_KIND}:*"]
    # An id is the whole name: one more character (``id?*``) is another CA.
    return rules + [
        f"{_CA_KIND}:{glob}" for glob in [*_not_starting_with(ca_id), f"{_escape(ca_id)}?*"]
    ]


def _not_starting_with(prefix: str) -> list[str]:
    globs: list[str] = []
    for i, char in enumerate(prefix):
        head = _escape(prefix[:i])
        globs.append(f"{head}[!{char}]*")
        if i:
            globs.append(head)
    return globs


def _escape(text: str) -> str:
    # fnmatch has no escape character; a bracket around a special character matches it literally.
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)

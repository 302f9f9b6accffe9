"""The recorded answers: what AWS published and refused, and how the emulation compares.

File format (``conformance/recorded-answers.json``, version 1)::

    {"format": 1,
     "events":   [{"id", "eventType", "operation", "source", "verified_on_account",
                   "optional_keys", "payload"}],
     "refusals": [{"probe", "operation", "source", "verified_on_account", "code", "message"}],
     "authorizations": [{"question", "operation", "source", "verified_on_account",
                         "authDecision", "allowed", "explicitDeny", "implicitDeny",
                         "missingContextValues"}],
     "registrations": [{"question", "operation", "source", "verified_on_account", "code",
                        "message"}]}

An event entry claims a payload *shape*: its keys and each value's JSON type (nested objects and
the elements of arrays too). The emulation agrees when one of the events it publishes for the same
``eventType`` and ``operation`` has exactly that shape; ``optional_keys`` are keys the evidence
leaves open (two AWS examples of the same event disagree on them). A refusal entry claims the
error code AWS answers a probe (``conformance.refusals``) with, or ``null`` when AWS accepts the
call; messages are recorded for people and for the emulation to copy, not compared. An
authorization entry claims TestAuthorization's answer to one question of
``conformance.authorization`` (the decision and which policies allowed, denied explicitly or
implicitly; ``missingContextValues`` is recorded, not compared: its form is not documented).
A registration entry claims the answer to one question of ``conformance.registration`` (a
certificate of the source registered in the destination): an error code, or ``null``; compared
as refusals are.
A documented example starts with ``verified_on_account: false``; a run on an account writes a
file of the same format whose entries say ``true``, to be merged back (``docs/conformance.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.authorization import AuthAnswer
from conformance.refusals import Answer
from conformance.registration import OPERATION as REGISTRATION_OPERATION

FORMAT = 1
COMMITTED = Path(__file__).with_name("recorded-answers.json")
RULE_FIELDS = frozenset({"topic"})  # added by the rule's SQL (topic() AS topic), not by AWS


class AnswersFileError(Exception):
    """The recorded-answers file cannot be read or has the wrong shape."""


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AnswersFileError(f"{path}: {error}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnswersFileError(f"{path}: not a recorded-answers file of format {FORMAT}")
    return data


# Objects whose keys are the user's data (a thing's or group's attributes), not a fixed shape.
MAP_FIELDS = frozenset({"attributes"})


@dataclass(frozen=True)
class MapShape:
    """A name → value map: only its values' shape matters (``None`` when it is empty)."""

    values: Any

    def __str__(self) -> str:
        return "map"


def shape(value: Any, key: str = "") -> Any:
    """A JSON value's shape: objects keep their keys, arrays their first element's shape, maps
    (``MAP_FIELDS``) their values' shape; scalars become their JSON type's name."""
    if isinstance(value, Mapping):
        if key in MAP_FIELDS:
            first = next(iter(value.values()), None)
            return MapShape(shape(first) if value else None)
        return {name: shape(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _type_name(shaped: Any) -> str:
    if isinstance(shaped, dict):
        return "object"
    if isinstance(shaped, list):
        return "array"
    return str(shaped)


def shape_differences(recorded: Any, emulated: Any, path: str = "") -> list[str]:
    """How ``emulated``'s shape departs from ``recorded``'s (both already ``shape``d).
    An empty array or map says nothing about its elements, so it matches any."""
    if isinstance(recorded, dict) and isinstance(emulated, dict):
        found = []
        for key in sorted(recorded.keys() - emulated.keys()):
            found.append(f"{path}{key}: recorded, not published by the emulation")
        for key in sorted(emulated.keys() - recorded.keys()):
            found.append(f"{path}{key}: published by the emulation, not recorded")
        for key in sorted(recorded.keys() & emulated.keys()):
            found += shape_differences(recorded[key], emulated[key], f"{path}{key}.")
        return found
    if isinstance(recorded, list) and isinstance(emulated, list):
        if recorded and emulated:
            return shape_differences(recorded[0], emulated[0], f"{path}[].")
        return []
    if isinstance(recorded, MapShape) and isinstance(emulated, MapShape):
        if recorded.values is not None and emulated.values is not None:
            return shape_differences(recorded.values, emulated.values, f"{path}*.")
        return []
    if recorded != emulated:
        where = path.rstrip(".") or "payload"
        return [f"{where}: recorded {_type_name(recorded)}, emulated {_type_name(emulated)}"]
    return []


def _without(payload: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    dropped = set(keys) | RULE_FIELDS
    return {key: value for key, value in payload.items() if key not in dropped}


@dataclass(frozen=True)
class Contradiction:
    """One recorded answer the emulation contradicts."""

    entry: str
    source: str
    verified_on_account: bool
    details: tuple[str, ...]

    def __str__(self) -> str:
        flag = "verified on an account" if self.verified_on_account else "documented, unverified"
        return f"{self.entry} ({flag}; {self.source}): " + "; ".join(self.details)


def compare_events(
    recorded: Iterable[Mapping[str, Any]],
    emulated: Iterable[Mapping[str, Any]],
    *,
    require_all: bool = True,
) -> list[Contradiction]:
    """Each recorded event against the closest-shaped published event of the same kind.

    ``require_all``: an entry with no published event of its kind is a contradiction (the
    emulation, driven through every kind, never publishes it); off for a run on an account,
    which observes only the kinds its scenarios provoked."""
    published = list(emulated)
    found = []
    for entry in recorded:
        optional = entry.get("optional_keys") or ()
        want = shape(_without(entry["payload"], optional))
        candidates = [
            shape(_without(event, optional))
            for event in published
            if event.get("eventType") == entry["eventType"]
            and event.get("operation") == entry["operation"]
        ]
        if not candidates and not require_all:
            continue
        if not candidates:
            details: tuple[str, ...] = (
                f"the emulation published no {entry['eventType']} {entry['operation']}",
            )
        else:
            differences = min(
                (shape_differences(want, candidate) for candidate in candidates), key=len
            )
            if not differences:
                continue
            details = tuple(differences)
        found.append(
            Contradiction(entry["id"], entry["source"], bool(entry["verified_on_account"]), details)
        )
    return found


def compare_refusals(
    recorded: Iterable[Mapping[str, Any]],
    emulated: Mapping[str, Answer],
    *,
    require_all: bool = True,
) -> list[Contradiction]:
    """Each recorded refusal against the answer to the same probe (``require_all`` as above)."""
    return _compare_codes(recorded, emulated, "probe", require_all=require_all)


def compare_registrations(
    recorded: Iterable[Mapping[str, Any]],
    answered: Mapping[str, Answer],
    *,
    require_all: bool = True,
) -> list[Contradiction]:
    """Each recorded registration against the answer to the same question
    (``conformance.registration``), by error code as refusals are."""
    return _compare_codes(recorded, answered, "question", require_all=require_all)


def _compare_codes(
    recorded: Iterable[Mapping[str, Any]],
    answered: Mapping[str, Answer],
    key: str,
    *,
    require_all: bool,
) -> list[Contradiction]:
    found = []
    for entry in recorded:
        answer = answered.get(entry[key])
        if answer is None and not require_all:
            continue
        if answer is None:
            details = (f"no {key} {entry[key]!r} was run against the emulation",)
        elif answer.code != entry["code"]:
            said = "accepts the call" if answer.accepted else f"answers {answer.code}"
            wanted = "accepts it" if entry["code"] is None else f"answers {entry['code']}"
            details = (f"the emulation {said}; AWS {wanted}",)
        else:
            continue
        found.append(
            Contradiction(
                f"{entry[key]} ({entry['operation']})",
                entry["source"],
                bool(entry["verified_on_account"]),
                details,
            )
        )
    return found


def compare_authorizations(
    recorded: Iterable[Mapping[str, Any]],
    answered: Mapping[str, AuthAnswer],
    *,
    require_all: bool = True,
) -> list[Contradiction]:
    """Each recorded authorization against the answer to the same question."""
    found = []
    for entry in recorded:
        answer = answered.get(entry["question"])
        if answer is None and not require_all:
            continue
        if answer is None:
            details: tuple[str, ...] = (f"question {entry['question']!r} was not asked",)
        else:
            details = tuple(answer.differences(AuthAnswer.from_json(entry)))
            if not details:
                continue
        found.append(
            Contradiction(
                f"{entry['question']} (TestAuthorization)",
                entry["source"],
                bool(entry["verified_on_account"]),
                details,
            )
        )
    return found


# ---- writing what a run observed -------------------------------------------------------------


def _anonymise(value: Any, account_id: str | None, prefix: str) -> Any:
    if isinstance(value, dict):
        return {k: _anonymise(v, account_id, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [_anonymise(v, account_id, prefix) for v in value]
    if isinstance(value, str):
        text = value.replace(prefix, "crrconf-run-")
        return text.replace(account_id, "123456789012") if account_id else text
    return value


def observed(
    events: Iterable[Mapping[str, Any]],
    refusals: Mapping[str, tuple[str, Answer]],
    *,
    authorizations: Mapping[str, AuthAnswer] | None = None,
    registrations: Mapping[str, Answer] | None = None,
    source: str,
    verified_on_account: bool,
    account_id: str | None,
    prefix: str,
) -> dict[str, Any]:
    """A recorded-answers document from one run: one event per distinct shape, every refusal.
    Account ids and the run's prefix are replaced, so the file can be shared as it is."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for event in events:
        payload = _anonymise(dict(event), account_id, prefix)
        key = repr(
            (payload.get("eventType"), payload.get("operation"), shape(_without(payload, ())))
        )
        if key in seen:
            continue
        seen.add(key)
        number = sum(1 for e in entries if e["eventType"] == payload.get("eventType")) + 1
        entries.append(
            {
                "id": f"{str(payload.get('eventType', 'event')).lower()}-{str(payload.get('operation', '')).lower()}-{number}",
                "eventType": payload.get("eventType"),
                "operation": payload.get("operation"),
                "source": source,
                "verified_on_account": verified_on_account,
                "optional_keys": [],
                "payload": payload,
            }
        )
    return {
        "format": FORMAT,
        "events": entries,
        "refusals": [
            {
                "probe": probe,
                "operation": operation,
                "source": source,
                "verified_on_account": verified_on_account,
                **_anonymise(answer.to_json(), account_id, prefix),
            }
            for probe, (operation, answer) in sorted(refusals.items())
        ],
        "authorizations": [
            {
                "question": question,
                "operation": "TestAuthorization",
                "source": source,
                "verified_on_account": verified_on_account,
                **_anonymise(answer.to_json(), account_id, prefix),
            }
            for question, answer in sorted((authorizations or {}).items())
        ],
        "registrations": [
            {
                "question": question,
                "operation": REGISTRATION_OPERATION,
                "source": source,
                "verified_on_account": verified_on_account,
                **_anonymise(answer.to_json(), account_id, prefix),
            }
            for question, answer in sorted((registrations or {}).items())
        ],
    }


def write(document: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")

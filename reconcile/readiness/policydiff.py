"""How a policy in the destination differs from the source's, statement by statement (pure).

The destination's document should be the source's with its ARNs rewritten for the destination
(``pipeline.policyrewrite``: what the replicator writes). ``statement_differences`` names each
statement that is not, and what in it differs; ``source_arns`` finds ARNs in a destination
document that still name the source region (or the source account, where the accounts differ):
"the ARN for an AWS IoT resource ... includes the Region" (AWS IoT Developer Guide, "AWS IoT
Core action resources", iot-action-resources.html), so such a statement grants nothing there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import EventValidationError
from pipeline.policyrewrite import ArnMapping, duplicate_keys, rewrite_policy_document

_VALUE_WIDTH = 80
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[^:\s\"]*):"
    r"(?P<account>[^:\s\"]*):[^\s\"]*",
    re.ASCII,
)


@dataclass(frozen=True)
class StatementDifference:
    """Statement ``index`` (``sid`` if it has one) differs: ``what`` says how."""

    index: int | None  # None: the whole document
    sid: str | None
    what: str

    def __str__(self) -> str:
        if self.index is None:
            return self.what
        label = f" ({self.sid})" if self.sid else ""
        return f"statement {self.index}{label}: {self.what}"


def statements(document: str | None) -> list[Any]:
    """The document's statements in order ("Statement" holds one object or an array: IAM User
    Guide, "IAM JSON policy elements: Statement"); none for a document that is not JSON."""
    if not document:
        return []
    try:
        decoded = json.loads(document)
    except ValueError:
        return []
    raw = decoded.get("Statement", []) if isinstance(decoded, Mapping) else []
    return [raw] if isinstance(raw, Mapping) else list(raw) if isinstance(raw, list) else []


def statement_differences(
    source_document: str, destination_document: str, mapping: ArnMapping
) -> list[StatementDifference]:
    """The statements of ``destination_document`` that differ from the source's rewritten for
    the destination (``mapping``); empty when they agree (key order and spacing aside). A
    document that repeats a key is not compared: json.loads keeps the last value, and which one
    AWS IoT applies is unpublished (RFC 8259 section 4), so it is named instead."""
    for side, document in (("source", source_document), ("destination", destination_document)):
        repeated = duplicate_keys(document)
        if repeated:
            what = f"cannot compare: the {side}'s document repeats {', '.join(repeated)}"
            return [StatementDifference(None, None, what)]
    try:
        expected = statements(rewrite_policy_document(source_document, mapping).document)
    except EventValidationError:
        expected = statements(source_document)
    actual = statements(destination_document)
    found = []
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else None
        have = actual[index] if index < len(actual) else None
        if want == have:
            continue
        sid = _sid(want) or _sid(have)
        if have is None:
            found.append(StatementDifference(index, sid, "missing (the source has it)"))
        elif want is None:
            found.append(StatementDifference(index, sid, "extra (the source has no such one)"))
        else:
            found.append(StatementDifference(index, sid, _what_differs(want, have)))
    return found


def source_arns(document: str, source_region: str, accounts: Mapping[str, str]) -> list[str]:
    """ARNs in ``document`` (a destination's) that name ``source_region``, or a source account
    that ``accounts`` maps to another: each statement naming one grants nothing there."""
    found: list[str] = []
    for statement in statements(document):
        for match in _ARN.finditer(json.dumps(statement)):
            account = match["account"]
            names_source_account = account in accounts and accounts[account] != account
            if match["region"] == source_region or names_source_account:
                found.append(match[0])
    return list(dict.fromkeys(found))


def _sid(statement: Any) -> str | None:
    sid = statement.get("Sid") if isinstance(statement, Mapping) else None
    return str(sid) if sid else None


def _what_differs(want: Any, have: Any) -> str:
    if not (isinstance(want, Mapping) and isinstance(have, Mapping)):
        return f"{_value(want)} expected, {_value(have)} found"
    keys = sorted(set(want) | set(have))
    return "; ".join(
        f"{key} {_value(want.get(key))} expected, {_value(have.get(key))} found"
        for key in keys
        if want.get(key) != have.get(key)
    )


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"

"""AWS IoT Core policy evaluation, as the AWS IoT Developer Guide documents it (pure).

The sandbox answers TestAuthorization with this module (``authorization_responses`` reads
moto's backend and shapes AWS's response); it imports nothing of moto or boto3, so anything that
holds policy documents can ask it. ``evaluate(policies, connection, request)`` answers one
question: may this connection perform this action on this resource? The answer is
``ALLOWED``, ``EXPLICIT_DENY`` or ``IMPLICIT_DENY`` (TestAuthorization's ``authDecision``), with
each policy's verdict and the statements that decided it. What the policy variables and condition
keys resolve to for the connection is ``policyvariables``'s.

What it evaluates, each rule with its source (the guide is "AWS IoT Core Developer Guide",
https://docs.aws.amazon.com/iot/latest/developerguide/; IAM's "IAM User Guide",
https://docs.aws.amazon.com/IAM/latest/UserGuide/, which AWS IoT policies follow: "They follow
the same conventions as IAM policies", guide, iot-policies.html):

- Statements: ``Effect`` Allow/Deny, ``Action`` or ``NotAction``, ``Resource`` or
  ``NotResource``, ``Condition``, ``Sid``; ``Statement`` a list or one object.
- An explicit Deny wins over any Allow; no matching Allow is an implicit deny.
- ``*`` (any characters) and ``?`` (one character) in actions and resources; ``+`` and ``#`` are
  plain characters.
- Policy variables in ``Resource`` and ``Condition``: ``iot:ClientId``, the thing variables,
  ``iot:Certificate.Subject.*`` / ``iot:Certificate.Issuer.*``, and ``${*}``, ``${?}``, ``${$}``.
- Conditions: ``String(Not)Equals``, ``String(Not)EqualsIgnoreCase``, ``String(Not)Like``,
  ``Bool``, ``Null``, the ``IfExists`` suffix and the ``ForAllValues:``/``ForAnyValue:`` set
  operators, over the keys the variables name.
- A certificate that is not ACTIVE is denied everything.

Everything else is refused, never allowed by default: ``evaluate`` raises
``PolicyNotEvaluatedError`` naming what it cannot evaluate and where. A refusal happens only
when the unevaluated part could change the answer (a statement whose action does not match is
never looked at further).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.policyrewrite import duplicate_keys
from sandbox.emulation.policyvariables import (
    VARIABLES_VERSION,
    Certificate,
    Connection,
    Context,
    Parts,
    PolicyNotEvaluatedError,
    Thing,
)

# The evaluator's whole interface: its inputs and errors with the variables they feed
# (``policyvariables``), here with the rest.
__all__ = [
    "MQTT_RESOURCE_KINDS",
    "Answer",
    "Certificate",
    "Connection",
    "Decision",
    "Policy",
    "PolicyNotEvaluatedError",
    "PolicyVerdict",
    "Request",
    "StatementRef",
    "Thing",
    "evaluate",
]

Decision = Literal["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]

# The IoT actions a device performs over MQTT and the resource kind each names (guide, "AWS IoT
# Core action resources", iot-action-resources.html).
MQTT_RESOURCE_KINDS: Mapping[str, str] = {
    "iot:Connect": "client",
    "iot:Publish": "topic",
    "iot:Receive": "topic",
    "iot:RetainPublish": "topic",
    "iot:Subscribe": "topicfilter",
}

_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)


# ---- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A named AWS IoT policy: its default version's document (JSON text)."""

    name: str
    arn: str
    document: str


@dataclass(frozen=True)
class Request:
    """One action on one resource, e.g. ``iot:Publish`` on ``arn:aws:iot:...:topic/a/b``."""

    action: str
    resource: str


# ---- outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementRef:
    """A statement of a policy (``index`` counts from 0 in the document's order)."""

    policy: str
    index: int
    sid: str | None = None

    def __str__(self) -> str:
        label = f" ({self.sid})" if self.sid else ""
        return f"{self.policy} statement {self.index}{label}"


@dataclass(frozen=True)
class PolicyVerdict:
    """What one policy says: a matching Deny, else a matching Allow, else nothing."""

    policy: Policy
    decision: Decision
    statements: tuple[StatementRef, ...] = ()  # the matching statements of that effect


@dataclass(frozen=True)
class Answer:
    """The decision, each policy's verdict, the variables and keys without a value, and why."""

    decision: Decision
    verdicts: tuple[PolicyVerdict, ...]
    missing: tuple[str, ...] = ()
    reason: str = ""

    def policies(self, decision: Decision) -> tuple[Policy, ...]:
        return tuple(v.policy for v in self.verdicts if v.decision == decision)

    @property
    def statements(self) -> tuple[StatementRef, ...]:
        """The statements that decided: the matching Denies, else the matching Allows."""
        return tuple(s for v in self.verdicts if v.decision == self.decision for s in v.statements)


# ---- evaluation --------------------------------------------------------------------------------


def evaluate(policies: Sequence[Policy], connection: Connection, request: Request) -> Answer:
    """May ``connection`` perform ``request`` under ``policies``? Raises
    ``PolicyNotEvaluatedError`` for what this module does not evaluate."""
    status = connection.certificate.status
    if status != "ACTIVE":
        # "AWS IoT verifies that a client certificate is active when it authenticates a
        # connection" (guide, "Activate or deactivate a client certificate",
        # activate-or-deactivate-device-cert.html): a device whose certificate is INACTIVE or
        # REVOKED is never authenticated, so no policy of it is in effect.
        return Answer(
            "IMPLICIT_DENY",
            tuple(PolicyVerdict(p, "IMPLICIT_DENY") for p in policies),
            reason=f"the certificate is {status}: AWS IoT authenticates only ACTIVE certificates",
        )
    context = Context(connection)
    verdicts = tuple(_verdict(policy, context, request) for policy in policies)
    # "An explicit deny statement can override multiple allow statements" (AWS IoT API
    # Reference, TestAuthorization, AuthResult.authDecision); an action no statement allows is
    # denied implicitly (ImplicitDeny: "When a policy doesn't explicitly deny or allow an action
    # on a resource it is considered an implicit deny").
    decisions = {v.decision for v in verdicts}
    decision: Decision = (
        "EXPLICIT_DENY"
        if "EXPLICIT_DENY" in decisions
        else "ALLOWED"
        if "ALLOWED" in decisions
        else "IMPLICIT_DENY"
    )
    deciding = ", ".join(str(s) for v in verdicts if v.decision == decision for s in v.statements)
    reason = {
        "EXPLICIT_DENY": f"denied by {deciding}",
        "ALLOWED": f"allowed by {deciding}",
        "IMPLICIT_DENY": "no statement allows it",
    }[decision]
    return Answer(decision, verdicts, tuple(sorted(context.missing)), reason)


def _verdict(policy: Policy, context: Context, request: Request) -> PolicyVerdict:
    document = _document(policy)
    substitutes = document.get("Version") == VARIABLES_VERSION
    allows: list[StatementRef] = []
    denies: list[StatementRef] = []
    for index, statement in enumerate(_statements(policy, document)):
        try:
            effect = statement["Effect"]
            if _applies(statement, context, request, substitutes):
                ref = StatementRef(policy.name, index, statement.get("Sid"))
                (allows if effect == "Allow" else denies).append(ref)
        except PolicyNotEvaluatedError as error:
            raise PolicyNotEvaluatedError(error.reason, policy.name, index) from error
    if denies:
        return PolicyVerdict(policy, "EXPLICIT_DENY", tuple(denies))
    if allows:
        return PolicyVerdict(policy, "ALLOWED", tuple(allows))
    return PolicyVerdict(policy, "IMPLICIT_DENY")


def _document(policy: Policy) -> dict[str, Any]:
    try:
        document = json.loads(policy.document)
    except ValueError as error:
        raise PolicyNotEvaluatedError(f"not JSON: {error}", policy.name) from error
    if not isinstance(document, dict):
        raise PolicyNotEvaluatedError("the document is not a JSON object", policy.name)
    # A repeated key collapses to its last value in json.loads; which one AWS IoT applies is
    # unpublished (RFC 8259 section 4: "the behavior ... is unpredictable"), so no verdict.
    repeated = duplicate_keys(policy.document)
    if repeated:
        raise PolicyNotEvaluatedError(f"repeated keys {', '.join(repeated)}", policy.name)
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyNotEvaluatedError(f"unknown policy elements {sorted(unknown)}", policy.name)
    return document


def _statements(policy: Policy, document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # "Statement" holds one statement object or an array of them (IAM User Guide, "IAM JSON
    # policy elements: Statement").
    raw = document.get("Statement", [])
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list):
        raise PolicyNotEvaluatedError("Statement is neither an object nor an array", policy.name)
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise PolicyNotEvaluatedError("not a JSON object", policy.name, index)
        unknown = set(statement) - _STATEMENT_KEYS
        if unknown:
            raise PolicyNotEvaluatedError(
                f"unknown statement elements {sorted(unknown)}", policy.name, index
            )
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyNotEvaluatedError(
                f"Effect {statement.get('Effect')!r} is neither Allow nor Deny", policy.name, index
            )
        for one_of in (("Action", "NotAction"), ("Resource", "NotResource")):
            if sum(key in statement for key in one_of) != 1:
                raise PolicyNotEvaluatedError(
                    f"exactly one of {' or '.join(one_of)} is required (IAM User Guide, 'IAM JSON "
                    "policy elements')",
                    policy.name,
                    index,
                )
    return statements


def _applies(
    statement: Mapping[str, Any], context: Context, request: Request, substitutes: bool
) -> bool:
    """Does the statement match the request? Action first: a statement for other actions is
    never evaluated further, so what it holds cannot cause a refusal."""
    if "Action" in statement:
        action_matches = _any_action(_strings(statement["Action"], "Action"), request.action)
    else:
        action_matches = not _any_action(
            _strings(statement["NotAction"], "NotAction"), request.action
        )
    if not action_matches:
        return False
    # NotResource: "matches every resource except those specified" (IAM User Guide, "IAM JSON
    # policy elements: NotResource"); the guide uses it for iot:Receive (pub-sub-policy.html).
    key = "Resource" if "Resource" in statement else "NotResource"
    patterns = _strings(statement[key], key)
    matched = any(_resource_matches(p, context, request.resource, substitutes) for p in patterns)
    if matched != (key == "Resource"):
        return False
    return _conditions_hold(statement.get("Condition", {}), context, substitutes)


def _strings(value: Any, element: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyNotEvaluatedError(f"{element} is neither a string nor an array of strings")
    return values


def _any_action(patterns: Iterable[str], action: str) -> bool:
    # "The prefix and the action name are case insensitive" (IAM User Guide, "IAM JSON policy
    # elements: Action"); * and ? are its wildcards. Actions take no policy variables.
    for pattern in patterns:
        if "${" in pattern:
            raise PolicyNotEvaluatedError(f"a policy variable in an action: {pattern!r}")
        if _glob(pattern, ignore_case=True).fullmatch(action):
            return True
    return False


# ---- wildcard matching -------------------------------------------------------------------------


def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    return _compile(((pattern, True),), _plain_wildcard, ignore_case)


def _plain_wildcard(text: str, index: int) -> str:
    return ".*" if text[index] == "*" else "."


def _compile(
    parts: Parts, wildcard: Callable[[str, int], str], ignore_case: bool = False
) -> re.Pattern[str]:
    joined = "".join(chunk for chunk, _ in parts)
    regex, offset = [], 0
    for chunk, pattern in parts:
        for i, char in enumerate(chunk):
            regex.append(
                wildcard(joined, offset + i) if pattern and char in "*?" else re.escape(char)
            )
        offset += len(chunk)
    return re.compile("".join(regex), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _arn_wildcard(text: str, index: int) -> str:
    """IAM's rule for ARNs: wildcards match "within the individual segments of an ARN (the parts
    separated by colons) ... If the * wildcard is the last character of a resource ARN segment,
    it can expand to match beyond the colon boundaries" (IAM User Guide, "IAM JSON policy
    elements: Resource", "Using wildcards in resource ARNs")."""
    if text[index] == "?":
        return "[^:]"
    at_segment_end = index + 1 == len(text) or text[index + 1] == ":"
    return ".*" if at_segment_end else "[^:]*"


def _resource_matches(pattern: str, context: Context, resource: str, substitutes: bool) -> bool:
    """Case-sensitive (MQTT topics are; IAM User Guide, "Resource": "the IAM user name is case
    sensitive"). AWS IoT's guide describes its wildcards as "any combination of characters" and
    "any single character" (pub-sub-policy.html) without IAM's segment rule; where the two
    readings disagree (a wildcard facing a colon) the answer is refused rather than guessed."""
    parts = context.substitute(pattern, substitutes)
    plain = bool(_compile(parts, _plain_wildcard).fullmatch(resource))
    segmented = bool(_compile(parts, _arn_wildcard).fullmatch(resource))
    if plain != segmented:
        raise PolicyNotEvaluatedError(
            f"{pattern!r} on {resource!r}: the guide's wildcards and IAM's ARN-segment rule "
            "disagree here"
        )
    return plain


# ---- conditions --------------------------------------------------------------------------------

_OPERATOR = re.compile(
    r"(?:(?P<set>ForAllValues|ForAnyValue):)?(?P<base>[A-Za-z]+?)(?P<if_exists>IfExists)?"
)

# One value of the request against the policy's values (IAM User Guide, "IAM JSON policy
# elements: Condition operators": string, Boolean and Null operators).
_STRING_OPERATORS: Mapping[str, tuple[Callable[[str, str], bool], bool, bool]] = {
    # name: (match(value, policy value), negated, policy value is a pattern)
    "StringEquals": (lambda v, p: v == p, False, False),
    "StringNotEquals": (lambda v, p: v == p, True, False),
    "StringEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), False, False),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), True, False),
    "StringLike": (lambda v, p: True, False, True),
    "StringNotLike": (lambda v, p: True, True, True),
    "Bool": (lambda v, p: v.lower() == p.lower(), False, False),
}


def _conditions_hold(block: Any, context: Context, substitutes: bool) -> bool:
    """Operators AND, keys AND, values OR (NOR for negated operators) ("Conditions with multiple
    context keys or values", IAM User Guide, reference_policies_multi-value-conditions.html)."""
    if not isinstance(block, dict):
        raise PolicyNotEvaluatedError("Condition is not a JSON object")
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise PolicyNotEvaluatedError(f"Condition {operator} is not a JSON object")
        for key, wanted in keys.items():
            if not _condition(
                operator, key, _strings(wanted, f"{operator} {key}"), context, substitutes
            ):
                return False
    return True


def _condition(
    operator: str, key: str, wanted: list[str], context: Context, substitutes: bool
) -> bool:
    parsed = _OPERATOR.fullmatch(operator)
    base = parsed["base"] if parsed else ""
    if parsed is None or (base not in _STRING_OPERATORS and base != "Null"):
        raise PolicyNotEvaluatedError(f"condition operator {operator!r} is not evaluated")
    values = context.values(key)
    if values is None:
        context.missing.add(key)
    if base == "Null":
        # "Null": true when the key is absent, false when present (IAM, "Condition operator to
        # check existence of condition keys").
        if parsed["set"] or parsed["if_exists"]:
            raise PolicyNotEvaluatedError(f"condition operator {operator!r} is not evaluated")
        flags = {w.lower() for w in wanted}
        if not flags <= {"true", "false"}:
            raise PolicyNotEvaluatedError(f"Null takes true or false, not {wanted}")
        return any((values is None) == (flag == "true") for flag in flags)
    match, negated, pattern = _STRING_OPERATORS[base]
    if base == "Bool" and not {w.lower() for w in wanted} <= {"true", "false"}:
        raise PolicyNotEvaluatedError(f"Bool takes true or false, not {wanted}")
    if key.endswith(".List") and not parsed["set"]:
        raise PolicyNotEvaluatedError(
            f"{key} holds several values: use it with ForAllValues: or ForAnyValue:"
        )
    policy_values = [context.substitute(w, substitutes) for w in wanted]

    def one(value: str) -> bool:
        if pattern:
            hit = any(_compile(p, _plain_wildcard).fullmatch(value) for p in policy_values)
        else:
            hit = any(match(value, "".join(chunk for chunk, _ in p)) for p in policy_values)
        return not hit if negated else hit

    if parsed["set"] == "ForAllValues":
        # "returns true if every context key value in the request matches ... It also returns
        # true if there are no context keys in the request" (IAM, "Set operators for
        # multivalued context keys").
        return all(one(v) for v in values or ())
    if parsed["set"] == "ForAnyValue":
        # "For no matching context key or a null dataset, the condition returns false."
        return any(one(v) for v in values or ())
    if values is None:
        # "If the key that you specify in a policy condition is not present in the request
        # context, the values do not match and the condition is false. If the policy condition
        # requires that the key is not matched, such as StringNotLike ... the condition is
        # true. This logic applies to all condition operators except ...IfExists and Null"
        # (IAM, "IAM JSON policy elements: Condition operators").
        return bool(parsed["if_exists"]) or negated
    return one(values[0])

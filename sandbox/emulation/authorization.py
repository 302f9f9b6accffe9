"""AWS IoT Core policy evaluation, as the AWS IoT Developer Guide documents it (pure).

The sandbox answers TestAuthorization with this module (``authorization_responses`` reads
moto's backend and shapes AWS's response); it imports nothing of moto or boto3, so anything that
holds policy documents can ask it. ``evaluate(policies, connection, request)`` answers one
question: may this connection perform this action on this resource? The answer is
``ALLOWED``, ``EXPLICIT_DENY`` or ``IMPLICIT_DENY`` (TestAuthorization's ``authDecision``), with
each policy's verdict and the statements that decided it.

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
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]

# The policy language version whose variables are substituted: "If you do not include the
# Version element ... variables such as ${aws:username} aren't recognized as variables" (IAM
# User Guide, "IAM JSON policy elements: Version"). Whether AWS IoT treats a missing Version the
# same way is not documented: such a document with a variable is refused.
VARIABLES_VERSION = "2012-10-17"

# The IoT actions a device performs over MQTT and the resource kind each names (guide, "AWS IoT
# Core action resources", iot-action-resources.html).
MQTT_RESOURCE_KINDS: Mapping[str, str] = {
    "iot:Connect": "client",
    "iot:Publish": "topic",
    "iot:Receive": "topic",
    "iot:RetainPublish": "topic",
    "iot:Subscribe": "topicfilter",
}

# X.509 distinguished-name attributes the certificate variables name (guide, "X.509 Certificate
# AWS IoT Core policy variables", cert-policy-variables.html, "Issuer attributes" and "Subject
# attributes").
CERTIFICATE_NAME_ATTRIBUTES = frozenset(
    {
        "DistinguishedNameQualifier",
        "Country",
        "Organization",
        "OrganizationalUnit",
        "State",
        "CommonName",
        "SerialNumber",
        "Title",
        "Surname",
        "GivenName",
        "Initials",
        "Pseudonym",
        "GenerationQualifier",
    }
)

# Documented variables and condition keys whose value a TestAuthorization request does not
# carry (an IP address, MQTT connect attributes, a Cognito identity) or whose textual form the
# guide does not give (a serial number, alternative names): refused, with the reason.
_NOT_EVALUATED = {
    "aws:SourceIp": "the client's IP address is not part of a TestAuthorization request "
    "(guide, basic-policy-variables.html)",
    "iot:ConnectAttributes": "MQTT connect attributes are not part of a TestAuthorization "
    "request (guide, connect-policy.html, 'MQTT persistent sessions policy examples')",
    "iot:LastWillTopic": "the last-will topic is not part of a TestAuthorization request "
    "(guide, connect-policy.html)",
    "cognito-identity.amazonaws.com:sub": "Cognito identities are not evaluated by the sandbox",
    "iot:Certificate.SerialNumber": "the guide does not give the serial number's textual form "
    "(cert-policy-variables.html, 'Other attributes')",
    "iot:Certificate.AvailableKeys": "the guide does not give its value's form "
    "(cert-policy-variables.html, 'Other attributes')",
}
_ALTERNATIVE_NAME = re.compile(r"iot:Certificate\.(Subject|Issuer)\.AlternativeName\.")
_CERTIFICATE_VARIABLE = re.compile(
    r"iot:Certificate\.(?P<part>Subject|Issuer)\.(?P<attribute>[A-Za-z]+)"
    r"(?:\.(?P<index>\d+))?(?P<list>\.List)?"
)
_THING_ATTRIBUTE = re.compile(r"iot:Connection\.Thing\.Attributes\[(?P<name>[^\]]+)\]")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")

# Certificate variables (cert-policy-variables.html, "X.509 Certificate policy variable
# limitations"): a value holding one of these wildcard characters is not substituted; nor is one
# longer than 1024 characters; arrays keep five items; these special characters are prefixed
# with a backslash.
_CERTIFICATE_WILDCARDS = frozenset("*$+?#")
_CERTIFICATE_MAX_LENGTH = 1024
_CERTIFICATE_MAX_ITEMS = 5
_CERTIFICATE_ESCAPED = frozenset(',"\\=<>;')

_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)


class PolicyNotEvaluatedError(Exception):
    """A policy holds something the evaluator does not evaluate (never allowed by default).

    Permanent: asking again gives the same refusal. ``policy`` and ``statement`` say where."""

    def __init__(self, reason: str, policy: str | None = None, statement: int | None = None):
        where = ""
        if policy is not None:
            where = f"policy {policy}" + (
                f", statement {statement}" if statement is not None else ""
            )
            where += ": "
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.policy = policy
        self.statement = statement


# ---- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A named AWS IoT policy: its default version's document (JSON text)."""

    name: str
    arn: str
    document: str


@dataclass(frozen=True)
class Thing:
    """The thing the policy is evaluated for (guide, "Thing policy variables")."""

    name: str
    type_name: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Certificate:
    """The client certificate: its status and the values of its distinguished-name attributes
    by the guide's names (``CommonName``, ``Organization``, ...), in certificate order."""

    status: str
    subject: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    issuer: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Connection:
    """Who asks. ``thing`` is the registry thing the policy is evaluated for: "AWS IoT Core uses
    the certificate the device presents when it authenticates to determine which thing to use"
    and, with non-exclusive thing association, "the value of clientId in the MQTT connect
    message ... must exactly match the thing name" (guide, thing-policy-variables.html). The
    caller resolves it; ``None`` when the client id names no thing attached to the
    certificate."""

    certificate: Certificate
    client_id: str | None = None
    thing: Thing | None = None


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
    context = _Context(connection)
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


def _verdict(policy: Policy, context: _Context, request: Request) -> PolicyVerdict:
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
    statement: Mapping[str, Any], context: _Context, request: Request, substitutes: bool
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


# ---- policy variables --------------------------------------------------------------------------

# A string after substitution: (text, is_pattern) parts. Pattern text keeps its wildcards;
# substituted values are literal text.
Parts = tuple[tuple[str, bool], ...]


class _Context:
    """The values the variables and condition keys resolve to for one connection, and the names
    that resolved to nothing (TestAuthorization's ``missingContextValues``)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.missing: set[str] = set()

    def values(self, name: str) -> tuple[str, ...] | None:
        """The key's values (more than one only for a ``.List`` key); None when it has none."""
        connection, thing = self.connection, self.connection.thing
        if name in _NOT_EVALUATED:
            raise PolicyNotEvaluatedError(f"{name}: {_NOT_EVALUATED[name]}")
        if _ALTERNATIVE_NAME.match(name):
            raise PolicyNotEvaluatedError(
                f"{name}: the guide does not give the textual form of alternative names "
                "(cert-policy-variables.html)"
            )
        # Basic variables (guide, basic-policy-variables.html).
        if name == "iot:ClientId":
            return _one(connection.client_id)
        # Thing variables (guide, thing-policy-variables.html).
        if name == "iot:Connection.Thing.ThingName":
            return _one(thing.name if thing else None)
        if name == "iot:Connection.Thing.ThingTypeName":
            return _one(thing.type_name if thing else None)
        attribute = _THING_ATTRIBUTE.fullmatch(name)
        if attribute:
            return _one(thing.attributes.get(attribute["name"]) if thing else None)
        if name == "iot:Connection.Thing.IsAttached":
            # "true or false indicating that the connecting thing is attached to the certificate
            # ... Thing name is taken as client Id": without a client id there is no thing.
            if connection.client_id is None:
                return None
            return ("true",) if thing is not None else ("false",)
        certificate = _CERTIFICATE_VARIABLE.fullmatch(name)
        if certificate:
            return self._certificate(certificate)
        raise PolicyNotEvaluatedError(
            f"{name!r} is not a policy variable or condition key of the guide's lists "
            "(iot-policy-variables.html)"
        )

    def _certificate(self, match: re.Match[str]) -> tuple[str, ...] | None:
        """cert-policy-variables.html: "By default, the policy variables for each multi-value
        attribute return the first value"; ``.N`` (one-based: ``.1`` is the second value) picks
        another, and "If you specify an index value that does not exist ... no substitution is
        made and authorization fails"; ``.List`` is every value."""
        attribute = match["attribute"]
        if attribute not in CERTIFICATE_NAME_ATTRIBUTES:
            raise PolicyNotEvaluatedError(f"iot:Certificate.{match['part']}.{attribute} is unknown")
        certificate = self.connection.certificate
        names = certificate.subject if match["part"] == "Subject" else certificate.issuer
        values = names.get(attribute)
        if not values:
            # "If your X.509 certificate doesn't include a particular certificate attribute but
            # the corresponding certificate policy variable is used in your policy document, the
            # policy evaluation might lead to unexpected behavior" (cert-policy-variables.html).
            raise PolicyNotEvaluatedError(
                f"the certificate has no {match['part']} {attribute}: AWS documents the "
                "evaluation of such a variable as 'unexpected behavior'"
            )
        kept = values[:_CERTIFICATE_MAX_ITEMS]
        if match["list"]:
            if match["index"] is not None:
                raise PolicyNotEvaluatedError(f"{match[0]}: an index and .List together")
            if not all(_substitutable(v) for v in kept):
                raise PolicyNotEvaluatedError(
                    f"{match[0]}: a value the guide says is not substituted (a wildcard "
                    "character or over 1024 characters) in a list: its effect is not documented"
                )
            return tuple(_certificate_value(v) for v in kept)
        index = int(match["index"] or 0)
        if index >= len(kept) or not _substitutable(kept[index]):
            return None
        return (_certificate_value(kept[index]),)

    def resolve(self, name: str) -> str | None:
        """A variable's one value, for substitution; None when it has none."""
        if name.endswith(".List"):
            raise PolicyNotEvaluatedError(f"${{{name}}}: a multi-valued variable in a string")
        values = self.values(name)
        return values[0] if values else None

    def substitute(self, text: str, substitutes: bool) -> Parts:
        """``text`` with its variables replaced. An unresolved variable stays as written, as the
        guide says of certificate variables ("leaving the ${policy-variable} text in the policy
        document. This might cause authorization failure", cert-policy-variables.html), and is
        reported missing."""
        if "${" not in text:
            return ((text, True),)
        if not substitutes:
            raise PolicyNotEvaluatedError(
                f"a policy variable in {text!r} in a document whose Version is not "
                f"{VARIABLES_VERSION}: IAM treats it as literal text, AWS IoT does not document it"
            )
        parts: list[tuple[str, bool]] = []
        position = 0
        for match in _VARIABLE.finditer(text):
            parts.append((text[position : match.start()], True))
            name = match[1]
            # "predefined policy variables with fixed values to represent characters that
            # otherwise have special meaning ... $(*), $(?), and $($)" (guide,
            # iot-policy-variables.html; IAM User Guide, "Special characters").
            if name in ("*", "?", "$"):
                parts.append((name, False))
            else:
                value = self.resolve(name)
                if value is None:
                    self.missing.add(name)
                    parts.append((match[0], False))
                elif name == "iot:ClientId" and set(value) & {"*", "?"}:
                    raise PolicyNotEvaluatedError(
                        f"the client id {value!r} holds a policy wildcard: the guide does not say "
                        "whether a substituted value's * and ? match as wildcards"
                    )
                else:
                    parts.append((value, False))
            position = match.end()
        if "${" in text[position:]:
            raise PolicyNotEvaluatedError(f"an unterminated policy variable in {text!r}")
        parts.append((text[position:], True))
        return tuple((chunk, pattern) for chunk, pattern in parts if chunk)


def _one(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else (value,)


def _substitutable(value: str) -> bool:
    return not (set(value) & _CERTIFICATE_WILDCARDS) and len(value) <= _CERTIFICATE_MAX_LENGTH


def _certificate_value(value: str) -> str:
    return "".join(f"\\{c}" if c in _CERTIFICATE_ESCAPED else c for c in value)


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


def _resource_matches(pattern: str, context: _Context, resource: str, substitutes: bool) -> bool:
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


def _conditions_hold(block: Any, context: _Context, substitutes: bool) -> bool:
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
    operator: str, key: str, wanted: list[str], context: _Context, substitutes: bool
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

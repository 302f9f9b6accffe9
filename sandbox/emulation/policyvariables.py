"""AWS IoT policy variables and condition keys: what each resolves to for one connection (pure).

``Context(connection)`` answers ``values(name)`` for a condition key and ``substitute(text)``
for a policy string, and collects the names that resolved to nothing (TestAuthorization's
``missingContextValues``); ``sandbox.emulation.authorization`` evaluates statements with it.
Sources as in ``authorization``'s docstring: the AWS IoT Core Developer Guide's pages on policy
variables (iot-policy-variables.html, basic-, thing- and cert-policy-variables.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# The policy language version whose variables are substituted: "If you do not include the
# Version element ... variables such as ${aws:username} aren't recognized as variables" (IAM
# User Guide, "IAM JSON policy elements: Version"). Whether AWS IoT treats a missing Version the
# same way is not documented: such a document with a variable is refused.
VARIABLES_VERSION = "2012-10-17"

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


# ---- policy variables --------------------------------------------------------------------------

# A string after substitution: (text, is_pattern) parts. Pattern text keeps its wildcards;
# substituted values are literal text.
Parts = tuple[tuple[str, bool], ...]


class Context:
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

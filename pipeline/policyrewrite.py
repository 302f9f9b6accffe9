"""Policy documents across regions: rewrite ``arn:<partition>:iot:<region>:<account>:...``.

An AWS IoT policy names its resources by ARN (AWS IoT Developer Guide, "AWS IoT Core policy
elements" and "AWS IoT Core policy examples":
https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html), and an ARN names a
region and an account: a document copied verbatim would, in the destination, grant access to
the *source* region's topics and things, that is, to nothing there. So the replica's document is
the source's with the source region (and account, where the destination account differs)
replaced by the destination's, in every ARN of a mapped service, and the replacements are
reported.

Only the region and account fields of an ARN are touched, and only when they equal a mapped
value exactly: a wildcard (``arn:aws:iot:*:*:topic/x``), a policy variable
(``${iot:Connection.Thing.ThingName}``) or a region nobody mapped stays as written. ARNs naming
a region or account that is neither mapped nor a mapping's target are listed as ``foreign``, for
the report: a policy that deliberately names a third region is worth a look, not a rewrite.

A document that repeats a key within one JSON object is ambiguous: RFC 8259 section 4 says the
names of an object SHOULD be unique and that, when they are not, what software receiving it does
is unpredictable (some keep the last value, some the first, some refuse); the grammar of the IAM
JSON policy language, which AWS IoT policies follow (AWS IoT Developer Guide, "AWS IoT Core
policies"), gives each element once per block
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html). What AWS
IoT's own parser does with one is not published. So such a document is never rewritten into the
one value Python's parser keeps: the shared parse here keeps it as written and names its
repeated keys (``duplicate_keys``), so the nightly audit reads and reports it, and the
persist/replicate path refuses it (``refuse_duplicate_keys``, a permanent error naming the
policy and the key).

Pure: ``rewrite_policy_document(document, mapping)`` returns the rewritten document (JSON text)
and what it rewrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import EventValidationError

# arn:partition:service:region:account:resource (AWS General Reference, "Amazon Resource Names").
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[^:\s\"]*):"
    r"(?P<account>[^:\s\"]*):(?P<resource>[^\s\"]*)",
    re.ASCII,
)
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d", re.ASCII)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)


@dataclass(frozen=True)
class ArnMapping:
    """Source -> destination regions and accounts, for the ARNs of ``services``."""

    regions: Mapping[str, str]
    accounts: Mapping[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ("iot",)


@dataclass(frozen=True)
class Rewrite:
    """One ARN that was rewritten, at ``path`` (e.g. ``Statement[0].Resource[1]``)."""

    path: str
    before: str
    after: str


@dataclass(frozen=True)
class RewriteResult:
    document: str
    rewrites: tuple[Rewrite, ...]
    foreign: tuple[str, ...] = ()
    # Keys repeated within one object (``duplicate_keys``): then ``document`` is as written.
    duplicate_keys: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.rewrites)


def canonical_document(document: str) -> str:
    """A policy document as canonical JSON text (sorted keys, no spaces): equal iff same JSON.

    The form the state table stores and the diff compares, so an author's formatting or key
    order is never drift. A document with repeated keys has no canonical form (which value
    counts is the parser's choice): it is kept as written."""
    decoded = json.loads(document)
    if duplicate_keys(document):
        return document
    return json.dumps(decoded, sort_keys=True, separators=(",", ":"))


class _Object(tuple[tuple[str, Any], ...]):
    """A JSON object as its (key, value) pairs in document order, repeated keys kept."""


def duplicate_keys(document: str) -> tuple[str, ...]:
    """The keys ``document`` (JSON text) repeats within one object, as paths
    (``Statement[0].Effect``), in document order; ``()`` when none (or not JSON)."""
    try:
        return _duplicates_of(document)
    except json.JSONDecodeError:
        return ()


def _duplicates_of(document: str) -> tuple[str, ...]:
    found: list[str] = []
    _find_repeated(json.loads(document, object_pairs_hook=_Object), "", found)
    return tuple(dict.fromkeys(found))


def _find_repeated(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Object):
        seen: set[str] = set()
        for key, item in value:
            at = f"{path}.{key}" if path else key
            if key in seen:
                found.append(at)
            seen.add(key)
            _find_repeated(item, at, found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _find_repeated(item, f"{path}[{i}]", found)


class DuplicateKeyError(EventValidationError):
    """A policy document repeats a key within one object: ambiguous, so not replicated."""

    def __init__(self, field: str, keys: tuple[str, ...], policy: str | None = None) -> None:
        more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
        whose = f"policy {policy}'s document" if policy else "the policy document"
        super().__init__(
            field,
            f"{whose} repeats the key {keys[0]}{more} within one JSON object: which value "
            "counts is up to the parser, so it is not replicated; remove the repeated key in "
            "the source policy",
        )
        self.keys = keys
        self.policy = policy


def refuse_duplicate_keys(field: str, document: str, *, policy: str | None = None) -> None:
    """Raise ``DuplicateKeyError`` (permanent) if ``document`` repeats a key within an object:
    the persist/replicate path's check, never the audit's (``duplicate_keys`` is)."""
    keys = duplicate_keys(document)
    if keys:
        raise DuplicateKeyError(field, keys, policy)


def parse_mapping(text: str) -> dict[str, str]:
    """``"us-east-1=eu-west-1,111111111111=222222222222"`` -> a dict; refuses anything else.

    For a CLI option or an environment variable; regions and 12-digit accounts may be mixed.
    """
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        source, sep, target = part.partition("=")
        source, target = source.strip(), target.strip()
        both_regions = _REGION.fullmatch(source) and _REGION.fullmatch(target)
        both_accounts = _ACCOUNT.fullmatch(source) and _ACCOUNT.fullmatch(target)
        if not sep or not (both_regions or both_accounts):
            raise EventValidationError(
                "mapping",
                f"{part!r} is not <region>=<region> or <12-digit account>=<12-digit account>",
            )
        if source in mapping and mapping[source] != target:
            raise EventValidationError("mapping", f"{source} is mapped twice")
        mapping[source] = target
    return mapping


# The replicator's setting and the reconciliation's option: the destination account of each source
# account, e.g. "111111111111=222222222222" (regions are not configured: each item's origin region
# maps to the region it is replicated to).
ACCOUNT_MAP_VARIABLE = "POLICY_ACCOUNT_MAP"


def parse_account_map(text: str) -> dict[str, str]:
    """``ACCOUNT_MAP_VARIABLE``'s value (``parse_mapping``'s syntax, accounts only) -> a dict."""
    pairs = parse_mapping(text)
    for source in pairs:
        if not _ACCOUNT.fullmatch(source):
            raise EventValidationError(
                "mapping",
                f"{source} is a region: only accounts are configured, each policy's origin "
                "region maps to the destination's",
            )
    return pairs


def rewrite_policy_document(
    document: str | Mapping[str, Any], mapping: ArnMapping
) -> RewriteResult:
    """``document`` with every mapped ARN rewritten, as canonical JSON (``canonical_document``).

    A document that repeats a key within an object is returned as written, nothing rewritten,
    its repeated keys named (``RewriteResult.duplicate_keys``): the audit reports it, the
    replicator refuses it. Raises ``EventValidationError`` if ``document`` is not a JSON object.
    """
    if isinstance(document, str):
        try:
            decoded = json.loads(document)
        except json.JSONDecodeError as exc:
            raise EventValidationError("policyDocument", f"not JSON: {exc.msg}") from exc
        repeated = duplicate_keys(document)
        if repeated and isinstance(decoded, Mapping):
            return RewriteResult(document, (), (), repeated)
    else:
        decoded = document
    if not isinstance(decoded, Mapping):
        raise EventValidationError("policyDocument", "must be a JSON object")
    rewrites: list[Rewrite] = []
    foreign: list[str] = []
    rewritten = _walk(decoded, "", mapping, rewrites, foreign)
    text = json.dumps(rewritten, sort_keys=True, separators=(",", ":"))
    return RewriteResult(text, tuple(rewrites), tuple(dict.fromkeys(foreign)))


def rewrite_arn(arn: str, mapping: ArnMapping) -> str:
    """One ARN (a role's, a Lambda function's) with its region and account rewritten as in a
    policy document; anything that is not an ARN of ``mapping.services`` stays as it is."""
    return _ARN.sub(lambda match: _rewrite_arn(match, mapping, []), arn)


def _walk(
    value: Any, path: str, mapping: ArnMapping, rewrites: list[Rewrite], foreign: list[str]
) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _walk(item, f"{path}.{key}" if path else str(key), mapping, rewrites, foreign)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _walk(item, f"{path}[{i}]", mapping, rewrites, foreign) for i, item in enumerate(value)
        ]
    if isinstance(value, str):
        after = _ARN.sub(lambda match: _rewrite_arn(match, mapping, foreign), value)
        if after != value:
            rewrites.append(Rewrite(path, value, after))
        return after
    return value


def _rewrite_arn(match: re.Match[str], mapping: ArnMapping, foreign: list[str]) -> str:
    if match["service"] not in mapping.services:
        return match[0]
    region, account = match["region"], match["account"]
    new_region = mapping.regions.get(region, region)
    new_account = mapping.accounts.get(account, account)
    if _is_foreign(region, account, mapping):
        foreign.append(match[0])
    if (new_region, new_account) == (region, account):
        return match[0]
    return (
        f"arn:{match['partition']}:{match['service']}:{new_region}:{new_account}:"
        f"{match['resource']}"
    )


def _is_foreign(region: str, account: str, mapping: ArnMapping) -> bool:
    """A concrete region (or, when accounts are mapped, account) that no mapping mentions."""
    known_regions = set(mapping.regions) | set(mapping.regions.values())
    if _REGION.fullmatch(region) and region not in known_regions:
        return True
    known_accounts = set(mapping.accounts) | set(mapping.accounts.values())
    return (
        bool(mapping.accounts)
        and bool(_ACCOUNT.fullmatch(account))
        and (account not in known_accounts)
    )

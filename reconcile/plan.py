"""The repair plan as data: ordered, guarded repair actions, and the plan file.

Reconciliation runs ``snapshot → diff → plan → emit``. A ``Plan`` (built from a ``DriftReport``
by ``reconcile.planner.build_plan``) is a frozen list of ``RepairAction`` values. Printing a plan
is the dry run; ``reconcile.emit`` turns it into corrective events for the persist path. Nothing
here calls AWS.

A plan is bound to its snapshots: it records both fingerprints and an expiry, and ``check_fresh``
refuses it once either has moved on, so a plan saved on Monday cannot undo Tuesday's changes.

A plan *file* is untrusted input (it may be edited, or come from elsewhere). Loading it checks
that its content still hashes to its id (``PlanIntegrityError`` otherwise) and, when a key is
given (``IOT_CRR_PLAN_KEY``), its HMAC signature. The id is an unkeyed hash: it catches an
accident, not a forger, who recomputes it. Before anything is emitted, ``check_trusted``
applies the guards of the command that applies it — never those recorded in the file, the
source-size guards over the sizes it records — and bounds its times (``source_taken_at <=
created_at <= now``, no skew: the corrective events carry ``source_taken_at``, expiry at most
``MAX_TTL_SECONDS`` after creation). Then either ``check_same_actions`` compares it with a plan
rebuilt from fresh snapshots (``--verify``), or ``check_unverified`` accepts it on its own word:
only signed, and only without ``hazards`` (revocations, grants of access, a thing's type
removed), which only fresh snapshots may call for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pydantic

from pipeline.errors import PermanentError
from pipeline.kinds import ENTITIES
from pipeline.model import EntityKind
from reconcile.guards import (
    CLI_KNOBS,
    Guards,
    PlanRefusedError,
    Sizes,
    check_change_cap,
    check_source_size,
)
from reconcile.plansign import (
    PLAN_KEY_ENV,
    PlanIntegrityError,
    canonical,
    check_signature,
    sign,
)

# 2: the snapshots' sizes (``Sizes``) and each upsert's changed fields (``RepairAction.changed``)
PLAN_SCHEMA_VERSION = 2
# The longest a plan may stay valid: past a day its snapshots say little about the registries.
MAX_TTL_SECONDS = 24 * 3600
_SIGNATURE = "signature"

Op = Literal["upsert", "delete"]


class StalePlanError(PermanentError):
    """A saved plan no longer matches the registries (expired, or a snapshot fingerprint moved)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stale plan: {reason}")
        self.reason = reason


class PlanFormatError(PermanentError):
    """A plan file is not a plan this version can read."""


@dataclass(frozen=True)
class RepairAction:
    """One entity to make match the source: upsert it with its full source state, or delete it.

    ``fields`` is the complete desired state (``pipeline.model.STATE_FIELDS``) from the source
    snapshot; ``version`` the source registry's version where the snapshot has one; ``changed``
    the fields that differ in the destination (as the diff names them, ``attributes.<key>``;
    empty for a missing entity).
    """

    op: Op
    entity: EntityKind
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    reason: str = ""
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """An ordered repair plan bound to the two snapshots it was computed from.

    ``skipped`` lists the actions a guard held back (deletes without ``allow_deletes``) so they
    are visible in the plan rather than silently dropped. Times are epoch milliseconds;
    ``source_taken_at_ms`` becomes the timestamp of the corrective events.
    """

    plan_id: str
    source_region: str
    target_region: str
    source_fingerprint: str
    target_fingerprint: str
    source_taken_at_ms: int
    created_at_ms: int
    expires_at_ms: int
    guards: Guards
    sizes: Sizes
    actions: tuple[RepairAction, ...]
    skipped: tuple[RepairAction, ...] = ()
    schema_version: int = PLAN_SCHEMA_VERSION

    @property
    def counts(self) -> dict[str, int]:
        """Action counts as ``{"upsert.thing": n, ..., "skipped": n, "total": n}``."""
        counts: dict[str, int] = {}
        for action in self.actions:
            key = f"{action.op}.{action.entity.value}"
            counts[key] = counts.get(key, 0) + 1
        counts["skipped"] = len(self.skipped)
        counts["total"] = len(self.actions)
        return counts

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.skipped

    def to_json(self, key: bytes | None = None) -> dict[str, Any]:
        """The plan as JSON; with ``key``, signed (HMAC-SHA256 over the canonical body)."""
        data: dict[str, Any] = _PLAN_ADAPTER.dump_python(self, mode="json")
        if key is not None:
            data[_SIGNATURE] = sign(data, key)
        data["counts"] = self.counts  # informative only: recomputed on load
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], key: bytes | None = None) -> Plan:
        """The plan in ``data``, refused unless its content hashes to its id (and, with ``key``,
        unless it carries a valid signature; a signed plan without ``key`` is refused too)."""
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version != PLAN_SCHEMA_VERSION:
            raise PlanFormatError(
                f"plan schema_version {version!r} is not supported (expected {PLAN_SCHEMA_VERSION})"
            )
        body = {k: value for k, value in data.items() if k not in ("counts", _SIGNATURE)}
        check_signature(body, data.get(_SIGNATURE), key)
        try:
            plan = _PLAN_ADAPTER.validate_python(body)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise PlanFormatError(f"invalid plan: {where}: {first['msg']}") from exc
        expected = plan_id(replace(plan, plan_id=""))
        if plan.plan_id != expected:
            raise PlanIntegrityError(
                f"content hash does not match plan id {plan.plan_id!r} (expected {expected!r}); "
                "the plan was edited after it was made: build a new one"
            )
        return plan

    def save(self, path: str | Path, key: bytes | None = None) -> None:
        text = json.dumps(self.to_json(key), indent=2, sort_keys=True) + "\n"
        Path(path).write_text(text)

    @classmethod
    def load(cls, path: str | Path, key: bytes | None = None) -> Plan:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PlanFormatError(f"cannot read plan file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise PlanFormatError(f"plan file {path} does not hold a JSON object")
        return cls.from_json(data, key)


_PLAN_ADAPTER: pydantic.TypeAdapter[Plan] = pydantic.TypeAdapter(Plan)
_ACTION_ADAPTER: pydantic.TypeAdapter[RepairAction] = pydantic.TypeAdapter(RepairAction)


def expires_at(made_at_ms: int, ttl_seconds: int) -> int:
    """The plan expiry rule: what a repair is built from is stale ``ttl_seconds`` after it was
    made (a plan after it was created, ``check_fresh``; a saved snapshot after it was taken,
    ``check_snapshots_fresh``)."""
    return made_at_ms + ttl_seconds * 1000


def check_snapshots_fresh(snapshots: Mapping[str, int], *, ttl_seconds: int, now: int) -> None:
    """Raise ``StalePlanError`` if a saved snapshot a repair is about to be emitted from (region
    -> taken at, epoch ms) is past the plan expiry rule (``expires_at``): its plan would be
    refused by ``apply`` as expired, so ``reconcile --from-snapshots --apply`` refuses it too."""
    for region, taken_at_ms in snapshots.items():
        if now >= expires_at(taken_at_ms, ttl_seconds):
            raise StalePlanError(
                f"the snapshot of {region} was taken {(now - taken_at_ms) // 1000}s ago, past "
                f"the plan expiry ({ttl_seconds}s): take fresh snapshots (iot-crr snapshot) or "
                "reconcile the live registries"
            )


def check_fresh(
    plan: Plan,
    *,
    now: int,
    source_fingerprint: str | None = None,
    target_fingerprint: str | None = None,
) -> None:
    """Raise ``StalePlanError`` if ``plan`` expired or a fresh snapshot fingerprint differs."""
    if now >= plan.expires_at_ms:
        age_s = (now - plan.created_at_ms) // 1000
        raise StalePlanError(
            f"expired (created {age_s}s ago, ttl {plan.guards.ttl_seconds}s); build a new plan"
        )
    if source_fingerprint is not None and source_fingerprint != plan.source_fingerprint:
        raise StalePlanError(f"source registry {plan.source_region} changed since the plan")
    if target_fingerprint is not None and target_fingerprint != plan.target_fingerprint:
        raise StalePlanError(f"target registry {plan.target_region} changed since the plan")


def check_trusted(plan: Plan, guards: Guards, *, now: int) -> None:
    """Refuse a loaded plan that breaks ``guards`` (the applying command's own, never the ones
    recorded in the plan) or whose times are out of bounds, or that has expired.

    Raises ``PlanRefusedError`` for a guard or a time ahead of ``now``, ``PlanFormatError`` for
    inconsistent times and ``StalePlanError`` once expired.
    """
    if plan.source_region == plan.target_region:
        raise PlanFormatError(f"plan source and target are both {plan.source_region}")
    _check_not_ahead(plan, now)
    if plan.source_taken_at_ms > plan.created_at_ms:
        raise PlanFormatError(
            f"plan source_taken_at ({plan.source_taken_at_ms}) is after its created_at "
            f"({plan.created_at_ms})"
        )
    ttl_ms = plan.expires_at_ms - plan.created_at_ms
    if not 0 < ttl_ms <= MAX_TTL_SECONDS * 1000:
        raise PlanRefusedError(
            "expiry",
            f"the plan expires {ttl_ms // 1000}s after it was made; at most "
            f"{MAX_TTL_SECONDS}s is allowed",
        )
    check_source_size(plan.sizes, guards, plan.source_region, plan.target_region)
    deletes = sum(1 for action in plan.actions if action.op == "delete")
    if deletes and not guards.allow_deletes:
        raise PlanRefusedError(
            "allow_deletes",
            f"the plan deletes {deletes} entit{'y' if deletes == 1 else 'ies'}",
            CLI_KNOBS["allow_deletes"],
        )
    check_change_cap(len(plan.actions), guards, knob=CLI_KNOBS["max_changes"])
    check_fresh(plan, now=now)


def _check_not_ahead(plan: Plan, now: int) -> None:
    """A plan's times are never after the applying machine's clock, not even by the skew
    persist allows a registry event (``pipeline.state.MAX_CLOCK_SKEW_MS``): its corrective
    events carry ``source_taken_at``, and a stamp ahead would make every real change to those
    entities until then "stale" (dropped by persist's ordering)."""
    for name, stamp in (
        ("source_taken_at", plan.source_taken_at_ms),
        ("created_at", plan.created_at_ms),
    ):
        if stamp > now:
            raise PlanRefusedError(
                "clock",
                f"the plan's {name} is {(stamp - now + 999) // 1000}s ahead of this machine's "
                "clock; its corrective events would make real changes made until then stale. "
                "Check both hosts' clocks (NTP), or build the plan here",
            )


# --- what only fresh snapshots may call for ----------------------------------------------------

Hazard = Literal["revoke", "grant", "untype"]

# How a refusal and a summary name each hazard: (verb phrase, noun for the entities).
_HAZARD_WORDS: dict[Hazard, str] = {
    "revoke": "revokes",  # AWS cannot un-revoke a certificate
    "grant": "grants access with",
    "untype": "removes the type of",
}


def hazard(action: RepairAction) -> Hazard | None:
    """What ``action`` does to the destination that a plan file alone must not vouch for.

    - ``revoke``: a certificate made REVOKED. Irreversible: "Once a certificate is revoked,
      it's status can't be changed" (AWS IoT Developer Guide, "Revoke a client certificate",
      https://docs.aws.amazon.com/iot/latest/developerguide/revoke-ca-cert.html).
    - ``grant``: what a device may do widens or may widen: a policy document written (new or
      changed: an ``iot:*`` on ``*`` looks like any other), a policy attached to a certificate
      or group, a certificate attached to a thing (policy variables then resolve to it) or made
      ACTIVE (it can connect).
    - ``untype``: a thing's type removed: an untyped thing holds at most three attributes
      (AWS IoT Developer Guide, "Thing types"), so the destination drops the rest, and policies
      conditioned on ``iot:Connection.Thing.ThingTypeName`` stop matching it.

    Deletes are not hazards here: ``--allow-deletes`` guards them, verified or not.
    """
    if action.op != "upsert":
        return None
    kind = action.entity
    if kind is EntityKind.CERTIFICATE:
        status = action.fields.get("status")
        if status == "REVOKED":
            return "revoke"
        return "grant" if status == "ACTIVE" else None
    if kind in (EntityKind.POLICY, EntityKind.POLICY_TARGET, EntityKind.THING_PRINCIPAL):
        return "grant"
    if kind is EntityKind.THING and "thing_type" in action.changed:
        return "untype" if action.fields.get("thing_type") is None else None
    return None


def hazards(plan: Plan) -> dict[Hazard, list[RepairAction]]:
    """``plan``'s hazardous actions by hazard, in plan order (pure)."""
    found: dict[Hazard, list[RepairAction]] = {}
    for action in plan.actions:
        kind = hazard(action)
        if kind is not None:
            found.setdefault(kind, []).append(action)
    return found


def check_unverified(plan: Plan, *, signed: bool) -> None:
    """Refuse to emit ``plan`` on its own word (``apply --no-verify``) unless it is signed
    (``IOT_CRR_PLAN_KEY``: its unkeyed id proves nothing against a forger) and calls for no
    ``hazards``: those only a plan rebuilt from fresh snapshots may emit (``--verify``)."""
    if not signed:
        raise PlanRefusedError(
            "unsigned",
            f"an unsigned plan is applied only with --verify (its id is not a signature); set "
            f"{PLAN_KEY_ENV} when the plan is made and applied to apply it without verification",
        )
    found = hazards(plan)
    if found:
        raise PlanRefusedError(
            "unverified",
            f"the plan {_hazard_phrase(found)}; such changes are emitted only when fresh "
            "snapshots call for them: apply it with --verify (the default)",
        )


def _hazard_phrase(found: Mapping[Hazard, list[RepairAction]], limit: int = 3) -> str:
    parts = []
    for kind, actions in found.items():
        counts: dict[str, int] = {}
        for action in actions:
            counts[action.entity.value] = counts.get(action.entity.value, 0) + 1
        what = ", ".join(
            f"{n} {ENTITIES[EntityKind(entity)].noun[0 if n == 1 else 1]}"
            for entity, n in counts.items()
        )
        names = ", ".join(f"{a.entity.value} {a.name}" for a in actions[:limit])
        more = f", … {len(actions) - limit} more" if len(actions) > limit else ""
        parts.append(f"{_HAZARD_WORDS[kind]} {what} ({names}{more})")
    return "; ".join(parts)


def check_same_actions(plan: Plan, rebuilt: Plan) -> None:
    """Refuse ``plan`` unless ``rebuilt`` (the same audit from fresh snapshots) has exactly its
    actions: whatever the file says, only what the registries call for is emitted."""
    if plan.actions == rebuilt.actions:
        return
    ours = {_action_key(a) for a in plan.actions}
    theirs = {_action_key(a) for a in rebuilt.actions}
    extra = [a for a in plan.actions if _action_key(a) not in theirs]
    missing = [a for a in rebuilt.actions if _action_key(a) not in ours]
    first = extra[0] if extra else missing[0] if missing else None
    shown = f"; first: {_action_line(first).strip()}" if first is not None else " (order differs)"
    raise StalePlanError(
        f"the plan's actions differ from a plan rebuilt from fresh snapshots ({len(extra)} not "
        f"called for, {len(missing)} missing{shown}); was it edited, or built with other "
        "ignore rules?"
    )


def summarize_plan(plan: Plan, *, now: int, limit: int = 10) -> str:
    """What applying ``plan`` will emit, for a person to confirm: counts per operation and
    entity, every delete up to ``limit``, what was held back, and when the plan expires."""
    counts = {k: n for k, n in plan.counts.items() if k not in ("total", "skipped")}
    per_kind = ", ".join(f"{key.replace('.', ' ')} {n}" for key, n in sorted(counts.items()))
    minutes = max(0, plan.expires_at_ms - now) // 60_000
    lines = [
        f"plan {plan.plan_id}: {plan.source_region} -> {plan.target_region}, "
        f"{len(plan.actions)} corrective event(s) into {plan.source_region}'s persist path"
        + (f": {per_kind}" if per_kind else ""),
    ]
    deletes = [a for a in plan.actions if a.op == "delete"]
    for action in deletes[:limit]:
        lines.append(f"  delete {action.entity.value} {action.name}")
    if len(deletes) > limit:
        lines.append(f"  … and {len(deletes) - limit} more delete(s)")
    for kind, actions in hazards(plan).items():
        for action in actions[:limit]:
            lines.append(f"  {_HAZARD_LINE[kind]} {action.entity.value} {action.name}")
        if len(actions) > limit:
            lines.append(f"  … and {len(actions) - limit} more ({kind})")
    if plan.skipped:
        lines.append(f"  {len(plan.skipped)} held back when the plan was made (not emitted)")
    lines.append(f"  expires in {minutes} min")
    return "\n".join(lines)


_HAZARD_LINE: dict[Hazard, str] = {
    "revoke": "revoke",
    "grant": "grant access:",
    "untype": "remove the type of",
}


def describe_plan(plan: Plan, *, limit: int | None = None, rest_in: str = "") -> str:
    """The plan as text, one line per action: this *is* the dry run. With ``limit`` (a person
    reading a terminal), at most that many action lines, then how many more and where they all
    are (``rest_in``)."""
    lines = [
        f"plan {plan.plan_id}: {plan.source_region} -> {plan.target_region}, "
        f"{len(plan.actions)} action(s), {len(plan.skipped)} skipped"
    ]
    lines += [_action_line(a) for a in plan.actions]
    lines += [f"  (skipped) {_action_line(a).strip()}" for a in plan.skipped]
    if limit is not None and len(lines) > limit + 1:
        rest = len(lines) - 1 - limit
        lines = [*lines[: limit + 1], f"  … and {rest} more{': ' + rest_in if rest_in else ''}"]
    return "\n".join(lines)


def _action_key(action: RepairAction) -> bytes:
    return canonical(_ACTION_ADAPTER.dump_python(action, mode="json"))


def plan_id(plan: Plan) -> str:
    """The id ``plan`` gets: a short content hash: the same plan gets the same id (and so the same sync token)."""
    body = _PLAN_ADAPTER.dump_python(plan, mode="json")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{plan.created_at_ms}-{digest[:12]}"


def _action_line(action: RepairAction) -> str:
    version = f" v{action.version}" if action.version is not None else ""
    return f"  {action.op:<6} {action.entity.value:<13} {action.name}{version}  ({action.reason})"

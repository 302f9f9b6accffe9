"""Converge certificates, policies and their attachments in the destination (``pipeline.converge``
hands these kinds here).

Level-triggered like the rest of the replicator: describe the entity in the destination, decide
the calls with the pure functions of ``pipeline.security``, make them. Dependencies (the
certificate and the thing of an attachment, the policy and its target) are converged first from
the local table through ``ensure``, the converger's ``converge_key``.

The destination copy of a policy gets the origin region's ARNs rewritten to the destination's
(``pipeline.policyrewrite``; the mapping is the item's origin region -> this region, and the
configured account map, ``POLICY_ACCOUNT_MAP``, empty in a single-account deployment). Each
policy written is reported: one log line with its rewrites and foreign ARNs, and counts the
replicator emits as metrics once per invocation (``take_rewrite_counts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.cloudtrail import split_pair
from pipeline.errors import NotFoundError, RetryableError
from pipeline.model import EntityKind, Item
from pipeline.policyrewrite import ArnMapping, RewriteResult, rewrite_policy_document
from pipeline.security import (
    IotSecurity,
    certificate_calls,
    policy_calls,
    policy_target_calls,
    thing_principal_calls,
)

logger = Logger(service="iot-crr-replicator")

Outcome = tuple[str, str]  # (action, detail), as pipeline.converge.Result


class MissingDependencyError(RetryableError):
    """A dependency is still missing in the destination after converging it."""


class SecurityConverger:
    def __init__(
        self,
        security: IotSecurity,
        region: str,
        ensure: Callable[[EntityKind, str], Any],
        *,
        account_map: Mapping[str, str] | None = None,
    ) -> None:
        self.security = security
        self.region = region
        self.ensure = ensure
        self.account_map = dict(account_map or {})
        self._rewritten = 0  # ARNs rewritten in the policies written since the last take
        self._foreign = 0

    def take_rewrite_counts(self) -> tuple[int, int]:
        """ARNs rewritten and foreign ARNs in the policy documents written since the last call."""
        counts = (self._rewritten, self._foreign)
        self._rewritten = self._foreign = 0
        return counts

    def converge(self, item: Item) -> Outcome:
        handler = {
            EntityKind.CERTIFICATE: self._certificate,
            EntityKind.POLICY: self._policy,
            EntityKind.THING_PRINCIPAL: self._thing_principal,
            EntityKind.POLICY_TARGET: self._policy_target,
        }[item.kind]
        return handler(item)

    def _certificate(self, item: Item) -> Outcome:
        actual = self.security.describe_certificate(item.name)
        if item.deleted and actual is not None:
            actual |= self.security.certificate_attachments(actual["arn"])
        calls = certificate_calls(item.name, None if item.deleted else item.state, actual)
        self.security.apply(calls)
        return _outcome(calls, item)

    def _policy(self, item: Item) -> Outcome:
        mapping = ArnMapping(regions={item.origin_region: self.region}, accounts=self.account_map)
        desired = None if item.deleted else item.state
        actual = self.security.get_policy(item.name)
        calls = policy_calls(item.name, desired, actual, mapping)
        self.security.apply(calls)
        action, detail = _outcome(calls, item)
        if desired is None or "document" not in desired:
            return (action, detail)
        rewrite = rewrite_policy_document(desired["document"], mapping)
        if calls:
            self._report(item.name, rewrite)
        return (action, f"{detail}; {len(rewrite.rewrites)} ARN(s) rewritten")

    def _report(self, policy: str, rewrite: RewriteResult) -> None:
        self._rewritten += len(rewrite.rewrites)
        self._foreign += len(rewrite.foreign)
        logger.info(
            "policy written with its ARNs rewritten",
            extra={
                "policy": policy,
                "rewritten": len(rewrite.rewrites),
                "rewrites": [
                    {"path": r.path, "before": r.before, "after": r.after} for r in rewrite.rewrites
                ],
                "foreign": list(rewrite.foreign),
            },
        )

    def _thing_principal(self, item: Item) -> Outcome:
        thing, cert_id = split_pair(item.name)
        arn = self._certificate_arn(cert_id, needed=not item.deleted)
        if arn is None:
            return ("noop", "certificate absent, so nothing is attached")
        actual = self.security.thing_principal(thing, arn)
        calls = thing_principal_calls(thing, arn, None if item.deleted else item.state, actual)
        try:
            self.security.apply(calls)
        except NotFoundError:
            # The thing is not in the destination yet: converge it, then attach.
            self.ensure(EntityKind.THING, thing)
            self.security.apply(calls)
        return _outcome(calls, item)

    def _policy_target(self, item: Item) -> Outcome:
        policy, target = split_pair(item.name)
        kind, _, name = target.partition("/")
        needed = not item.deleted
        if kind == "cert":
            arn = self._certificate_arn(name, needed=needed)
        else:
            arn = self.security.thing_group_arn(name)
            if arn is None and needed:
                self.ensure(EntityKind.THING_GROUP, name)
                arn = self.security.thing_group_arn(name)
        if arn is None:
            if needed:
                raise MissingDependencyError(f"{target} is still missing in {self.region}")
            return ("noop", f"{target} absent, so nothing is attached")
        if needed and self.security.get_policy(policy) is None:
            self.ensure(EntityKind.POLICY, policy)
        attached = self.security.policy_attached(policy, arn)
        calls = policy_target_calls(policy, arn, needed, attached)
        self.security.apply(calls)
        return _outcome(calls, item)

    def _certificate_arn(self, cert_id: str, *, needed: bool) -> str | None:
        described = self.security.describe_certificate(cert_id)
        if described is None and needed:
            self.ensure(EntityKind.CERTIFICATE, cert_id)
            described = self.security.describe_certificate(cert_id)
            if described is None:
                raise MissingDependencyError(f"certificate {cert_id} is still missing")
        return None if described is None else str(described["arn"])


def _outcome(calls: list[Any], item: Item) -> Outcome:
    if not calls:
        return ("noop", "already as desired")
    ops = ", ".join(call.op for call in calls)
    return ("deleted" if item.deleted else "applied", ops)

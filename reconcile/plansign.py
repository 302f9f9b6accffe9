"""A plan file's signature: canonical JSON signed with HMAC-SHA256 under the key in
``IOT_CRR_PLAN_KEY`` (``plan_key``), and its check when a plan is loaded (``PlanIntegrityError``
when the file and the key disagree). ``reconcile.plan`` signs and loads plans through these.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

from pipeline.errors import PermanentError

PLAN_KEY_ENV = "IOT_CRR_PLAN_KEY"
_SIGNATURE_PREFIX = "hmac-sha256:"


class PlanIntegrityError(PermanentError):
    """A plan's content does not match its id or its signature: it was changed after it was made."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"plan integrity: {reason}")
        self.reason = reason


def plan_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The plan signing key from ``IOT_CRR_PLAN_KEY``, or ``None`` when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(PLAN_KEY_ENV, "")
    return value.encode() if value else None


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(body: Mapping[str, Any], key: bytes) -> str:
    return _SIGNATURE_PREFIX + hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def check_signature(body: Mapping[str, Any], signature: object, key: bytes | None) -> None:
    if key is None:
        if signature is not None:
            raise PlanIntegrityError(
                f"the plan is signed but {PLAN_KEY_ENV} is not set; set it to verify the plan"
            )
        return
    if signature is None:
        raise PlanIntegrityError(f"{PLAN_KEY_ENV} is set but the plan is not signed")
    if not isinstance(signature, str) or not hmac.compare_digest(signature, sign(body, key)):
        raise PlanIntegrityError(f"the plan's signature does not verify with {PLAN_KEY_ENV}")

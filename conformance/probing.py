"""What a refusal probe is, what it may use, and what it records (``conformance.refusals``,
``conformance.onboarding_refusals``, ``conformance.quota_refusals``).

A probe sets up what it needs under its scope's prefix, makes the one call AWS should refuse and
returns the answer: the error code and message, or ``accepted`` when the call succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from conformance.run import Scope


@dataclass(frozen=True)
class Answer:
    """What AWS (or the emulation) answered: an error code and message, or success."""

    code: str | None  # None: the call was accepted
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.code is None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Context:
    """What a probe may use: the scope's names and tags, and the target's notion of time."""

    scope: Scope
    let_time_pass: Callable[[float], None]
    wait_until: Callable[[str, Callable[[], bool], float], None]
    now: Callable[[], float]  # epoch seconds as the registry sees them
    # A client of the probed region for another service (IAM: a role to name): plain boto3.
    client: Callable[[str], Any]


def answer_of(call: Callable[[], Any], scope: Scope) -> Answer:
    try:
        call()
    except ClientError as error:
        body = error.response.get("Error", {})
        return Answer(str(body.get("Code")), normalise(str(body.get("Message", "")), scope))
    return Answer(None)


def normalise(message: str, scope: Scope) -> str:
    """Run-independent text: the scope's prefix, account ids and long ids become placeholders."""
    text = message.replace(scope.prefix, "<prefix>")
    text = re.sub(r"\b\d{12}\b", "<account>", text)
    return re.sub(r"\b[0-9a-f]{64}\b", "<certificate-id>", text)


@dataclass(frozen=True)
class Probe:
    name: str
    operation: str
    provoke: Callable[[Any, Context], Answer]

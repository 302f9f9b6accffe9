"""TestAuthorization's answers to one device's questions (``conformance.authorization``): on the
sandbox they must equal the recorded answers; with ``--aws`` AWS's are recorded and compared."""

from __future__ import annotations

from typing import Any

import pytest

from conformance import answers, authorization
from conformance.run import Run
from conformance.target import Target

pytestmark = pytest.mark.conformance


def test_authorization(
    conformance_target: Target, conformance_run: Run, record_authorization: Any
) -> None:
    answered = authorization.run(
        conformance_target.source,
        conformance_run.scope("authorization"),
        conformance_target.wait_until,
        conformance_target.let_time_pass,
    )
    for question, answer in answered.items():
        record_authorization(question, answer)
    assert set(answered) == set(authorization.QUESTIONS_BY_NAME)
    recorded = answers.load(answers.COMMITTED).get("authorizations", [])
    contradictions = answers.compare_authorizations(recorded, answered)
    assert [str(c) for c in contradictions] == []

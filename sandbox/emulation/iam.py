"""IAM for the in-process pipeline: each call a handler makes is checked against the actions its
execution role grants, and refused as AWS refuses an unauthorized call.

moto authorizes nothing by default, so a role that lacks an action the code needs passes every
test and fails in AWS (issue 28: the replicator's role lacked dynamodb:UpdateItem, which its
echo ledger uses from an entity's second change on). Here the caller says which role is acting
(``acting_as``) and gives each role's granted actions (the templates' statements); a client made
by ``client_factory`` then records every call's IAM action under that role and refuses one the
role does not grant with ``AccessDeniedException``, the code DynamoDB and AWS IoT answer an
unauthorized request with ("Error handling with DynamoDB", common errors:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html;
AWS IoT API, common errors: https://docs.aws.amazon.com/iot/latest/apireference/CommonErrors.html).

Resources and conditions are not evaluated: only the action. Calls made while no role acts (the
test's own set-up, the Global Table's replication) are not checked.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import iam_actions

# boto3 service name -> the IAM service prefix of its actions, where they differ.
# iot-data's operations (Device Shadow service, message broker) are authorized as iot: actions
# (Service Authorization Reference, "Actions, resources, and condition keys for AWS IoT").
_IAM_PREFIX = {"dynamodbstreams": "dynamodb", "stepfunctions": "states", "iot-data": "iot"}

# The refusal of an unauthorized call, where a service answers other than AccessDeniedException:
# the data plane (iot-data) answers HTTP 403 ForbiddenException "Forbidden" to a caller whose IAM
# policy lacks the action (boto/boto3#1447: Publish from a Lambda; awslabs/aws-sdk-android-samples
# #88: GetThingShadow/UpdateThingShadow, an IAM misconfiguration; botocore's iot-data model:
# ForbiddenException, 403, "The caller isn't authorized to make the request"). [assumption] that
# every iot-data operation does, though the model lists UnauthorizedException (401) for the
# shadow and retained-message calls: no public report shows that code for a missing grant.
_REFUSAL = {"iot-data": ("ForbiddenException", 403, "Forbidden")}

_ACTING: contextvars.ContextVar[str | None] = contextvars.ContextVar("iam_role", default=None)


def iam_action(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions a call needs: ``dynamodb:UpdateItem`` for DynamoDB's UpdateItem; both
    names where AWS's references give two (``pipeline.aws.IAM_ACTIONS``): never more lenient
    than either reading."""
    return iam_actions(_IAM_PREFIX.get(service, service), operation)


class IamEmulation:
    """Roles' granted actions, and what each role called and was refused."""

    def __init__(self, granted: Mapping[str, frozenset[str]]) -> None:
        self.granted = dict(granted)
        self.called: defaultdict[str, set[str]] = defaultdict(set)
        self.denied: defaultdict[str, set[str]] = defaultdict(set)

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        """Calls made in this block (this thread) are ``role``'s."""
        if role not in self.granted:
            raise KeyError(f"no such role: {role}")
        token = _ACTING.set(role)
        try:
            yield
        finally:
            _ACTING.reset(token)

    def client_factory(self, make: Callable[[str, str], Any]) -> Callable[..., Any]:
        """``make``'s clients, each call checked against the acting role."""

        def client(service: str, region: str, **_: Any) -> Any:
            made = make(service, region)
            made.meta.events.register("before-call.*.*", self._check, unique_id="iam-emulation")
            return made

        return client

    def _check(self, model: Any, **_: Any) -> None:
        role = _ACTING.get()
        if role is None:
            return
        service = model.service_model.service_name
        actions = iam_action(service, model.name)
        self.called[role].update(actions)
        missing = [action for action in actions if action not in self.granted[role]]
        if missing:
            self.denied[role].update(missing)
            action = missing[0]
            refusal: dict[str, Any] = {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": f"{role} is not authorized to perform: {action}",
                },
            }
            if service in _REFUSAL:
                code, status, message = _REFUSAL[service]
                refusal = {
                    "Error": {"Code": code, "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                }
            raise ClientError(refusal, model.name)  # type: ignore[arg-type]

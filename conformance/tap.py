"""Records the registry events a region publishes: temporary IoT rules into an SQS queue.

The rules use the pipeline's own SQL (``infra/source.yaml``: ``SELECT *, topic() AS topic FROM
'$aws/events/<kind>/#'``), one per registry topic family, with an SQS action (AWS IoT developer
guide, "SQS" rule action: the rule's role needs ``sqs:SendMessage``). Everything is named with the
run's prefix and tagged; ``close()`` deletes it. Only events whose topic names this run's prefix
are kept, so a shared account's other events are read once and dropped, never written anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from conformance.run import TAG_KEY, Run

TOPIC_FAMILIES = (
    "thing",
    "thingType",
    "thingTypeAssociation",
    "thingGroup",
    "thingGroupMembership",
    "thingGroupHierarchy",
)
Wait = Callable[[str, Callable[[], bool], float], None]

_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "iot.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class EventTap:
    """Temporary rules → one SQS queue in ``region``; ``collect()`` returns this run's events."""

    def __init__(
        self, client: Callable[[str, str], Any], region: str, run: Run, wait_seconds: int = 2
    ) -> None:
        self._iot = client("iot", region)
        self._sqs = client("sqs", region)
        self._iam = client("iam", region)
        self._run = run
        self._region = region
        self._wait_seconds = wait_seconds
        self.queue_url: str | None = None
        self.role_name = run.name("events")
        self.rule_names = [f"{run.rule_prefix}events_{family}" for family in TOPIC_FAMILIES]
        self.events: list[dict[str, Any]] = []

    def open(self, wait: Wait) -> EventTap:
        self.queue_url = self._sqs.create_queue(
            QueueName=self._run.name("events"), tags={TAG_KEY: self._run.run_id}
        )["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        role_arn = self._iam.create_role(
            RoleName=self.role_name,
            AssumeRolePolicyDocument=json.dumps(_TRUST),
            Tags=[{"Key": TAG_KEY, "Value": self._run.run_id}],
        )["Role"]["Arn"]
        self._iam.put_role_policy(
            RoleName=self.role_name,
            PolicyName="send-to-queue",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}
                    ],
                }
            ),
        )
        for family, rule_name in zip(TOPIC_FAMILIES, self.rule_names, strict=True):
            payload = {
                "sql": f"SELECT *, topic() AS topic FROM '$aws/events/{family}/#'",
                "awsIotSqlVersion": "2016-03-23",
                "ruleDisabled": False,
                "actions": [
                    {"sqs": {"queueUrl": self.queue_url, "roleArn": role_arn, "useBase64": False}}
                ],
            }
            # A new IAM role takes a few seconds to become assumable by IoT.
            wait(
                f"create topic rule {rule_name}",
                _created(
                    partial(
                        self._iot.create_topic_rule,
                        ruleName=rule_name,
                        topicRulePayload=payload,
                        tags=f"{TAG_KEY}={self._run.run_id}",
                    )
                ),
                60.0,
            )
        return self

    def collect(self) -> list[dict[str, Any]]:
        """Read the queue until a receive comes back empty; keep this run's events."""
        if self.queue_url is None:
            return self.events
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self._wait_seconds,
            ).get("Messages", [])
            if not messages:
                return self.events
            for message in messages:
                event = json.loads(message["Body"])
                if self._run.prefix in str(event.get("topic", "")):
                    self.events.append(event)
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def close(self) -> None:
        remove_tap(self._iot, self._sqs, self._iam, self._run)


def remove_tap(iot: Any, sqs: Any, iam: Any, run: Run) -> list[str]:
    """Delete a run's rules, queue and role (also for ``--cleanup-only``); returns what went."""
    removed = []
    for rule in iot.list_topic_rules().get("rules", []):
        if rule["ruleName"].startswith(run.rule_prefix):
            iot.delete_topic_rule(ruleName=rule["ruleName"])
            removed.append(f"topic rule {rule['ruleName']}")
    for url in sqs.list_queues(QueueNamePrefix=run.prefix).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
        removed.append(f"queue {url}")
    try:
        for policy in iam.list_role_policies(RoleName=run.name("events"))["PolicyNames"]:
            iam.delete_role_policy(RoleName=run.name("events"), PolicyName=policy)
        iam.delete_role(RoleName=run.name("events"))
        removed.append(f"role {run.name('events')}")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
    return removed


def _created(call: Callable[[], Any]) -> Callable[[], bool]:
    def condition() -> bool:
        try:
            call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "ResourceAlreadyExistsException":
                return True
            if code == "InvalidRequestException":  # the role is not assumable yet
                return False
            raise
        return True

    return condition

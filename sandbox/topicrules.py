"""The IoT rules engine's SQS action for rules the sandbox does not provision itself.

The sandbox delivers registry events to the persist state machine as the pipeline's own rules
would (``stack.Sandbox.deliver_events``). A topic rule someone creates through the API (the
conformance suite's event tap, ``conformance.tap``) gets them too when its SQL is the pipeline's
``SELECT *, topic() AS topic FROM '<filter>'`` (or ``SELECT *``) and it has SQS actions: each
matching event goes to the queue as the rule would send it (AWS IoT developer guide, "SQS" rule
action; ``useBase64`` false sends the JSON text). Other SQL and other actions are not emulated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

_SQL = re.compile(r"^\s*SELECT\s+\*\s*(,\s*topic\(\)\s+AS\s+topic\s*)?FROM\s+'([^']+)'\s*$", re.I)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching: ``+`` one level, a trailing ``#`` any number of levels."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(wanted):
        if part == "#":
            return True
        if i >= len(levels) or (part not in ("+", levels[i])):
            return False
    return len(wanted) == len(levels)


def deliver(region: str, events: Iterable[Mapping[str, Any]]) -> int:
    """Send ``events`` (rule-shaped, with ``topic``) to the SQS actions of matching rules in
    ``region``; returns how many messages were sent."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iot.models import iot_backends
    from moto.sqs.models import sqs_backends

    rules = [
        rule
        for rule in iot_backends[DEFAULT_ACCOUNT_ID][region].rules.values()
        if not rule.rule_disabled and _SQL.match(rule.sql or "")
    ]
    if not rules:
        return 0
    sent = 0
    for event in events:
        if "topic" not in event:
            continue  # a CloudTrail event (sandbox.emulation.controlplane) goes to EventBridge
        for rule in rules:
            match = _SQL.match(rule.sql)
            assert match is not None
            with_topic, topic_filter = match.group(1), match.group(2)
            if not topic_matches(topic_filter, str(event["topic"])):
                continue
            body = dict(event) if with_topic else {k: v for k, v in event.items() if k != "topic"}
            for action in rule.actions:
                sqs = action.get("sqs")
                if not sqs:
                    continue
                # The action's queue is in the rule's region; its name ends the queue URL.
                queue_name = str(sqs["queueUrl"]).rstrip("/").rpartition("/")[2]
                sqs_backends[DEFAULT_ACCOUNT_ID][region].send_message(queue_name, json.dumps(body))
                sent += 1
    return sent

"""Finishes deferred thing-type deletions in the destination region.

AWS requires a type to be deprecated for 5 minutes before it can be deleted. The replicator never
waits (it would block its stream shard): it deprecates, detaches, and records a pending deletion.
This scheduled task, in the destination stack, completes the ones that are due.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.converge import Converger, build_converger
from pipeline.errors import CrrError, RetryableError
from pipeline.kinds import thing_type
from pipeline.model import MalformedRecord
from pipeline.settings import load_settings

logger = Logger(service="iot-crr-pending")


def finish_due(converger: Converger, *, now: float) -> dict[str, list[str]]:
    """Delete every pending type whose delay has passed; a retryable failure keeps it pending.

    Each type on its own: one type's failure never stops the other due deletions."""
    done: dict[str, list[str]] = {"deleted": [], "waiting": [], "retry": [], "failed": []}
    for due in thing_type.pending_deletions(converger):
        if isinstance(due, MalformedRecord):
            # Left in the table for an operator, with the reason; the others carry on.
            logger.error("pending record unreadable", extra={"key": due.key, "reason": due.reason})
            done["failed"].append(due.key)
            continue
        name = due.name
        if due.delete_after > now:
            done["waiting"].append(name)
            continue
        try:
            thing_type.finish_deletion(converger, name)
        except RetryableError as error:
            logger.warning(
                "type deletion deferred again", extra={"type": name, "reason": str(error)}
            )
            done["retry"].append(name)
            continue
        except CrrError as error:
            logger.error("type deletion failed", extra={"type": name, "reason": str(error)})
            done["failed"].append(name)
            continue
        done["deleted"].append(name)
    return done


def _scheduled_time(event: Any) -> float | None:
    """The schedule's own firing time (EventBridge's ``time``), so a late run judges by it."""
    value = event.get("time") if isinstance(event, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lambda_handler(
    event: dict[str, Any], context: Any, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    settings = load_settings()
    converger = build_converger(
        settings.region,
        settings.state_table,
        clock=clock,
        type_delete_delay_seconds=settings.type_delete_delay_seconds,
    )
    result = finish_due(converger, now=_scheduled_time(event) or clock())
    logger.info("pending type deletions", extra={k: len(v) for k, v in result.items()})
    return result

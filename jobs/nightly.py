"""The nightly reconciliation job's entry point, for Lambda and for the container.

``lambda_handler`` and ``main`` read the environment with ``jobs.config.run_config_from_env``
(pure), then dispatch the event with ``handle_event``.

Events (the templates' contracts): ``{}`` or anything without the keys below is a normal run
(``jobs.run.run_nightly``); ``{"shard": {"index": i, "count": n}}`` diffs one bucket of a sharded
run and ``{"merge": {"count": n, ...}}`` finishes it (``jobs.shard``); ``{"prepare": {}}`` takes
the shared snapshots once before the shards (recommended; see ``jobs.shard``). A whole run holds
the run lock (``jobs.runlock``) when one is configured.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from jobs import runlock, shard
from jobs.config import RunConfig, run_config_from_env
from jobs.metrics import MetricsSink
from jobs.run import run_nightly
from pipeline import aws
from pipeline.aws import ClientFactory
from pipeline.clock import Clock, now_ms
from pipeline.errors import CrrError
from reconcile.exits import EXIT_INTERRUPTED
from reconcile.interrupt import exit_now, sigterm_interrupts


def handle_event(
    event: Mapping[str, Any],
    config: RunConfig,
    factory: ClientFactory,
    clock: Clock,
    *,
    metrics: MetricsSink | None = None,
) -> dict[str, Any]:
    """Dispatch an invocation: a shard, a merge, a prepare step, or (anything else) a run."""
    if "prepare" in event:
        return shard.run_prepare(config, factory, clock, shard.parse_prepare(event))
    if "shard" in event:
        return shard.run_shard(config, factory, clock, shard.parse_shard(event)).to_json()
    if "merge" in event:
        merge = shard.parse_merge(event)
        return shard.run_merge(config, factory, clock, merge, metrics=metrics).to_json()
    return run_nightly(config, factory, clock, metrics=metrics).to_json()


def lambda_handler(event: Mapping[str, Any] | None, context: Any) -> dict[str, Any]:
    """The Lambda entry point; raises on error so the invocation (and any Retry) sees it."""
    config = run_config_from_env(os.environ)
    event = event or {}
    return runlock.exclusive(
        event,
        os.environ,
        aws.client,
        lambda: handle_event(event, config, aws.client, now_ms),
        lease_seconds=runlock.lambda_lease_seconds(context),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.nightly [EVENT_JSON]``: 0 on success (drift or not), 2 on error, 130
    interrupted (Ctrl-C, or SIGTERM when ECS stops the task: the run lock is given back and the
    line says how far an emit got)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        with sigterm_interrupts():
            return _run(args)
    except KeyboardInterrupt as interrupt:
        detail = str(interrupt)
        print(f"nightly: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: list[str]) -> int:
    try:
        event = json.loads(args[0]) if args else {}
        if not isinstance(event, dict):
            raise ValueError("the event must be a JSON object")
        config = run_config_from_env(os.environ)
        result = runlock.exclusive(
            event,
            os.environ,
            aws.client,
            lambda: handle_event(event, config, aws.client, now_ms),
            lease_seconds=runlock.CONTAINER_LEASE_SECONDS,
        )
    except Exception as error:  # reported, and the task ends non-zero: never silent
        kind = "error" if isinstance(error, CrrError | ValueError) else type(error).__name__
        print(f"nightly: {kind}: {error}", file=sys.stderr)
        return 2
    print(result.get("message") or json.dumps(result, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so classes are the package's own.
    import importlib

    code = importlib.import_module("jobs.nightly").main()
    if code == EXIT_INTERRUPTED:
        exit_now(code)  # listings still in a network call are abandoned, not joined
    raise SystemExit(code)

"""The nightly job's metrics: a run record as CloudWatch embedded metric format (EMF) lines.

``Drift`` per entity and drift kind, ``RepairsEmitted``, ``RepairsFailed``, ``DriftTotal``,
``RunDuration``, ``RunFailed``, ``RunSucceeded`` and, when the run checked devices' readiness,
``DevicesNotReadyInDR`` and ``ReadinessChecksFailedInDR``, one JSON line each document on stdout, from
which CloudWatch Logs extracts them (the alarms of infra/reconcile.yaml watch them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from jobs.artefacts import RunRecord
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER

MetricsSink = Callable[[str], None]

SERVICE = "iot-crr-nightly"
METRIC_NAMESPACE = "IotRegistryCrr"


def emf_documents(record: RunRecord, *, namespace: str = METRIC_NAMESPACE) -> list[dict[str, Any]]:
    """The run's metrics as CloudWatch EMF documents (pure): one for the run's totals and, when
    the run got as far as a diff, one ``Drift`` document per entity and drift kind."""

    def document(
        dimensions: dict[str, str], values: dict[str, tuple[float, str]]
    ) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": record.finished_at_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": n, "Unit": unit} for n, (_, unit) in values.items()],
                    }
                ],
            },
            **dimensions,
            **{name: value for name, (value, _) in values.items()},
            "run_id": record.run_id,
            "status": record.status,
        }

    base = {"Service": SERVICE}
    totals: dict[str, tuple[float, str]] = {
        "RepairsEmitted": (record.repairs_emitted, "Count"),
        "RepairsFailed": (record.repairs_failed, "Count"),
        "RunDuration": (record.finished_at_ms - record.started_at_ms, "Milliseconds"),
        "RunFailed": (0 if record.status == "completed" else 1, "Count"),
        # The success metric: a night without one (the job never ran) raises an alarm.
        "RunSucceeded": (1 if record.status == "completed" else 0, "Count"),
    }
    if record.diffed:
        totals["DriftTotal"] = (record.drift_total, "Count")
    if record.devices_not_ready is not None:
        # Sampled devices that would not connect or work in the destination, and the account
        # checks that failed there (iot-crr readiness): each alarmed in infra/reconcile.yaml.
        totals["DevicesNotReadyInDR"] = (record.devices_not_ready, "Count")
        totals["ReadinessChecksFailedInDR"] = (record.readiness_checks_failed, "Count")
    documents = [document(base, totals)]
    if record.diffed:
        for entity in ENTITY_ORDER:
            for kind in DRIFT_KINDS:
                count = record.drift.get(f"{entity.value}.{kind}", 0)
                documents.append(
                    document(
                        {**base, "Entity": entity.value, "DriftKind": kind},
                        {"Drift": (count, "Count")},
                    )
                )
    return documents


def publish_metrics(record: RunRecord, sink: MetricsSink | None = None) -> None:
    """Each EMF document as one JSON line on stdout (CloudWatch Logs extracts the metrics)."""
    write = sink or _stdout_line
    for document in emf_documents(record):
        write(json.dumps(document, separators=(",", ":"), sort_keys=True))


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

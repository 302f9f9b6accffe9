"""The sandbox scenario shared by the job and notebook tests: two nightly runs with drift.

GIVEN a source registry replicated to the destination through the sandbox pipeline,
- drift A is made straight in the destination (as if the stream had missed it): thing ``t1``
  deleted (and with it its membership of ``floor-1``), an attribute of ``t2`` changed;
- run 1 (day 1) finds drift A and emits corrective events; the pipeline repairs it;
- drift B is made in the destination: an extra thing ``rogue`` (deletes are not allowed, so it
  stays) and ``t0`` removed from ``floor-1``;
- run 2 (day 2) finds drift B only and repairs the membership;
- run 2 again (same run id) does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from jobs.config import RunConfig
from jobs.run import RunResult, run_nightly
from reconcile.guards import Guards
from sandbox.stack import Sandbox

SRC = "us-east-1"
DST = "eu-west-1"
DAY_MS = 86_400_000


def stepping_clock(start_ms: int, step_ms: int = 5) -> Callable[[], int]:
    """A clock that moves ``step_ms`` per reading: stage durations are non-zero, and no test
    depends on the wall clock."""
    now = [start_ms]

    def clock() -> int:
        now[0] += step_ms
        return now[0]

    return clock


def seed(iot: Any) -> None:
    iot.create_thing_type(
        thingTypeName="sensor",
        thingTypeProperties={"thingTypeDescription": "sensors", "searchableAttributes": ["site"]},
    )
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site")
    for i in range(4):
        iot.create_thing(
            thingName=f"t{i}",
            thingTypeName="sensor",
            attributePayload={"attributes": {"site": "dub", "n": str(i)}},
        )
    for thing in ("t0", "t1"):
        iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName=thing)


@dataclass
class Scenario:
    """What the scenario did, as plain JSON values (it is shared between test processes)."""

    location: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # RunResult.to_json()
    rerun: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)  # run 1's EMF lines
    target_things_after: list[str] = field(default_factory=list)
    target_floor_after: list[str] = field(default_factory=list)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_root(tmp_path_factory: Any) -> Path:
    """A folder every pytest-xdist worker of this test session shares (one per session)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_scenario(root: Path) -> Scenario:
    """The scenario's result, run once per test session whichever test process asks first.

    The sandbox takes ~20 s; the job tests and the notebook tests run in different xdist
    workers, so the first one runs it (under a file lock) and the other reads its record.
    """
    record = root / "nightly-scenario.json"
    with _locked(root / "nightly-scenario.lock"):
        if not record.exists():
            scenario = run_scenario(root / "nightly-scenario-reports")
            record.write_text(json.dumps(asdict(scenario)))
    return Scenario(**json.loads(record.read_text()))


def run_scenario(location: Path) -> Scenario:
    with Sandbox(source_region=SRC, destination_region=DST) as sandbox:
        config = RunConfig(
            source_region=SRC,
            destination_region=DST,
            state_table=sandbox.table_name,
            report_location=str(location),
            guards=Guards(allow_deletes=False, max_changes=100),
            readiness_sample=5,
        )
        scenario = Scenario(location=str(location))
        metrics: list[str] = []
        runs: list[RunResult] = []
        source, target = sandbox.iot(SRC), sandbox.iot(DST)
        seed(source)
        sandbox.drain()

        # drift A, straight in the destination
        target.delete_thing(thingName="t1")
        target.update_thing(
            thingName="t2", attributePayload={"attributes": {"n": "99"}, "merge": True}
        )
        sandbox.drain()
        # Corrective events are stamped with the snapshot time and must be newer than what the
        # seeding wrote, so day 1 is now (the wall clock) and day 2 a day later.
        day1 = time.time_ns() // 1_000_000
        runs.append(
            run_nightly(config, sandbox.client, stepping_clock(day1), metrics=metrics.append)
        )
        sandbox.drain()

        # drift B
        target.create_thing(thingName="rogue")
        target.remove_thing_from_thing_group(thingGroupName="floor-1", thingName="t0")
        sandbox.drain()
        day2 = stepping_clock(day1 + DAY_MS)
        runs.append(run_nightly(config, sandbox.client, day2))
        sandbox.drain()
        # The same run id again (RUN_ID): a completed run is not run twice.
        rerun_config = replace(config, run_id=runs[1].record.run_id)
        rerun = run_nightly(rerun_config, sandbox.client, day2)

        things_after = sorted(t["thingName"] for t in target.list_things()["things"])
        floor_after = sorted(target.list_things_in_thing_group(thingGroupName="floor-1")["things"])
    scenario.runs = [run.to_json() for run in runs]
    scenario.rerun = rerun.to_json()
    scenario.metrics = metrics
    scenario.target_things_after = things_after
    scenario.target_floor_after = floor_after
    return scenario

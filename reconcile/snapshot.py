"""A region's registry at one moment, as pandas DataFrames: the input of the diff.

Flow: ``take_snapshot(inventory, region)`` reads one region through ``reconcile.inventory``
(the only IoT-calling edge), its listing families concurrently (``FAMILIES``) → ``Snapshot`` (five tables, canonical values) → ``save`` to Parquet
/ ``load`` back → ``reconcile.diff.diff_snapshots``. The plan stage turns a snapshot row back into
``pipeline.model`` state fields with ``desired_fields``.

Values are stored canonically so equal state compares equal across regions and across save/load:
attribute maps and dynamic queries as compact JSON with sorted keys, searchable attributes as a
sorted JSON list, missing values as NA. Versions are kept for information only: they are
generated per region and never compared (pipeline/model.py).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.clock import now_ms
from pipeline.cloudtrail import policy_target_name, thing_principal_name
from pipeline.errors import PermanentError
from pipeline.model import ENTITIES, EntityKind
from reconcile.inventory import PAGE_SIZE, Inventory

SNAPSHOT_FORMAT = 2  # 2: certificates, policies and their attachments
MANIFEST = "snapshot.json"

# Column name -> pandas dtype, per table (``EntitySpec.frame``: its key columns, its state
# fields, and the per-region version where the listing returns one; a test holds them to the
# entity table). Every frame is conformed to these (also when empty), so the diff and Parquet
# never see object columns of mixed types. The order of the tables is the fingerprint's.
SCHEMAS: dict[str, dict[str, str]] = {
    "things": {
        "name": "string",
        "thing_type": "string",
        "attributes": "string",
        "billing_group": "string",
        "version": "Int64",
    },
    "thing_types": {
        "name": "string",
        "description": "string",
        "searchable_attributes": "string",
        "deprecated": "bool",
        "propagating_attributes": "string",
    },
    "thing_groups": {
        "name": "string",
        "parent": "string",
        "description": "string",
        "attributes": "string",
        "query": "string",
        "version": "Int64",
    },
    "billing_groups": {"name": "string", "description": "string"},
    "memberships": {"thing": "string", "group": "string"},
    # The security side: pair-named links (``<thing>#<cert id>``, ``<policy>#<target>``) are
    # named kinds, diffed by the generic code.
    "certificates": {"name": "string", "status": "string", "pem": "string"},
    "policies": {"name": "string", "document": "string"},
    "thing_principals": {"name": "string", "exclusive": "boolean"},
    "policy_targets": {"name": "string"},
}
SORT_KEYS: dict[str, list[str]] = {spec.frame: list(spec.frame_key) for spec in ENTITIES.values()}
# Columns holding canonical JSON, decoded by ``desired_fields``.
JSON_COLUMNS = frozenset({"attributes", "searchable_attributes", "query", "propagating_attributes"})


class SnapshotFileError(PermanentError):
    """A saved snapshot is missing, unreadable, or does not match its recorded fingerprint."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"snapshot at {directory}: {reason}")
        self.directory = directory
        self.reason = reason


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the table's columns and dtypes, sorted by key, index 0..n-1."""
    schema = SCHEMAS[table]
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing columns {missing}")
    out = frame.loc[:, list(schema)].astype(schema)
    keys = SORT_KEYS[table]
    duplicated = out.duplicated(keys)
    if duplicated.any():
        first = out.loc[duplicated, keys].iloc[0].tolist()
        raise ValueError(f"{table}: duplicate key {first}")
    return out.sort_values(SORT_KEYS[table], kind="stable").reset_index(drop=True)


def empty_frame(table: str) -> pd.DataFrame:
    schema = SCHEMAS[table]
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in schema.items()})


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_frame(table)
    return conform(table, pd.DataFrame.from_records(rows, columns=list(SCHEMAS[table])))


@dataclass(frozen=True)
class Snapshot:
    """One region's registry. Frames are conformed to ``SCHEMAS`` on construction."""

    region: str
    taken_at_ms: int  # when the snapshot started (epoch ms)
    things: pd.DataFrame
    thing_types: pd.DataFrame
    thing_groups: pd.DataFrame
    billing_groups: pd.DataFrame
    memberships: pd.DataFrame
    # Optional for callers that build frames themselves (benchmarks): empty by default.
    certificates: pd.DataFrame = field(default_factory=lambda: empty_frame("certificates"))
    policies: pd.DataFrame = field(default_factory=lambda: empty_frame("policies"))
    thing_principals: pd.DataFrame = field(default_factory=lambda: empty_frame("thing_principals"))
    policy_targets: pd.DataFrame = field(default_factory=lambda: empty_frame("policy_targets"))
    # What was read in ``region``: its registry, or the state table (``reconcile.explain``).
    origin: Literal["registry", "state_table"] = "registry"

    def __post_init__(self) -> None:
        for table in SCHEMAS:
            object.__setattr__(self, table, conform(table, getattr(self, table)))

    # -- construction from plain records (the inventory's dicts, tests, benchmarks) -------

    @classmethod
    def from_records(
        cls,
        region: str,
        taken_at_ms: int,
        *,
        things: Iterable[Mapping[str, Any]] = (),
        thing_types: Iterable[Mapping[str, Any]] = (),
        thing_groups: Iterable[Mapping[str, Any]] = (),
        billing_groups: Iterable[Mapping[str, Any]] = (),
        memberships: Iterable[Mapping[str, Any]] = (),
        certificates: Iterable[Mapping[str, Any]] = (),
        policies: Iterable[Mapping[str, Any]] = (),
        thing_principals: Iterable[Mapping[str, Any]] = (),
        policy_targets: Iterable[Mapping[str, Any]] = (),
    ) -> Snapshot:
        """A snapshot from dicts holding plain values (``attributes`` as a dict, ``query`` as a
        dict or None, ``searchable_attributes`` as a list); omitted fields default to empty."""
        return cls(
            region=region,
            taken_at_ms=taken_at_ms,
            things=_frame(
                "things",
                [
                    {
                        "name": r["name"],
                        "thing_type": r.get("thing_type"),
                        "attributes": canonical_json(dict(r.get("attributes") or {})),
                        "billing_group": r.get("billing_group"),
                        "version": r.get("version"),
                    }
                    for r in things
                ],
            ),
            thing_types=_frame(
                "thing_types",
                [
                    {
                        "name": r["name"],
                        "description": r.get("description"),
                        "searchable_attributes": canonical_json(
                            sorted(r.get("searchable_attributes") or [])
                        ),
                        "deprecated": bool(r.get("deprecated", False)),
                        # Order kept: it is the order of the MQTT5 user properties.
                        "propagating_attributes": canonical_json(
                            list(r.get("propagating_attributes") or [])
                        ),
                    }
                    for r in thing_types
                ],
            ),
            thing_groups=_frame(
                "thing_groups",
                [
                    {
                        "name": r["name"],
                        "parent": r.get("parent"),
                        "description": r.get("description"),
                        "attributes": canonical_json(dict(r.get("attributes") or {})),
                        "query": canonical_json(r["query"]) if r.get("query") else None,
                        "version": r.get("version"),
                    }
                    for r in thing_groups
                ],
            ),
            billing_groups=_frame(
                "billing_groups",
                [{"name": r["name"], "description": r.get("description")} for r in billing_groups],
            ),
            memberships=_frame(
                "memberships", [{"thing": r["thing"], "group": r["group"]} for r in memberships]
            ),
            certificates=_frame(
                "certificates",
                [
                    {"name": r["name"], "status": r.get("status"), "pem": r.get("pem")}
                    for r in certificates
                ],
            ),
            policies=_frame(
                "policies", [{"name": r["name"], "document": r.get("document")} for r in policies]
            ),
            thing_principals=_frame(
                "thing_principals",
                [{"name": r["name"], "exclusive": r.get("exclusive")} for r in thing_principals],
            ),
            policy_targets=_frame("policy_targets", [{"name": r["name"]} for r in policy_targets]),
        )

    # -- identity ---------------------------------------------------------------------------

    def tables(self) -> dict[str, pd.DataFrame]:
        return {table: getattr(self, table) for table in SCHEMAS}

    def counts(self) -> dict[str, int]:
        return {table: len(frame) for table, frame in self.tables().items()}

    def column_hashes(self, table: str) -> dict[str, np.ndarray]:
        """One 64-bit content hash per cell of every column of ``table`` (``column_hash``).

        Shared by the fingerprint and the diff (which combines a table's name and value
        columns from these), so each column is hashed once per snapshot. Computed on first
        use and kept: a snapshot's frames are not to be mutated.
        """
        cache: dict[str, dict[str, np.ndarray]] = self.__dict__.setdefault("_column_hashes", {})
        hashes = cache.get(table)
        if hashes is None:
            frame = getattr(self, table)
            hashes = {column: column_hash(frame[column]) for column in frame.columns}
            cache[table] = hashes
        return hashes

    def fingerprint(self) -> str:
        """sha256 over the canonical content of every table (not region or taken_at).

        Frames are conformed (fixed columns, dtypes and row order), so a 64-bit content hash
        per row (``pd.util.hash_pandas_object``, rebuilt from ``column_hashes``) is
        deterministic and survives a Parquet round trip; hashing those instead of the text
        keeps it cheap. Computed once: a snapshot's frames are not to be mutated.
        """
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        digest = hashlib.sha256(f"snapshot-v{SNAPSHOT_FORMAT}".encode())
        for table, frame in self.tables().items():
            digest.update(f"\x1e{table}\x1f{len(frame)}\x1f{','.join(frame.columns)}".encode())
            if len(frame):
                hashes = self.column_hashes(table)
                rows = combine_hashes([hashes[column] for column in frame.columns])
                digest.update(rows.astype("<u8").tobytes())
        value = digest.hexdigest()
        object.__setattr__(self, "_fingerprint", value)
        return value

    # -- persistence ------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """One Parquet file per table plus ``snapshot.json`` (region, time, fingerprint, counts)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for table, frame in self.tables().items():
            frame.to_parquet(directory / f"{table}.parquet", index=False)
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "region": self.region,
            "taken_at_ms": self.taken_at_ms,
            "fingerprint": self.fingerprint(),
            "counts": self.counts(),
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Snapshot:
        """The snapshot saved in ``directory``; refuses one whose content no longer matches."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            frames: dict[str, Any] = {
                table: pd.read_parquet(directory / f"{table}.parquet") for table in SCHEMAS
            }
            snapshot = cls(
                region=str(manifest["region"]),
                taken_at_ms=int(manifest["taken_at_ms"]),
                **frames,
            )
        except (OSError, ValueError, KeyError) as error:
            raise SnapshotFileError(directory, f"cannot load: {error}") from error
        if snapshot.fingerprint() != manifest.get("fingerprint"):
            raise SnapshotFileError(directory, "content does not match the recorded fingerprint")
        return snapshot

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (
            self.region == other.region
            and self.taken_at_ms == other.taken_at_ms
            and self.fingerprint() == other.fingerprint()
        )

    __hash__ = None  # type: ignore[assignment]


# --- content hashes (fingerprint and diff) --------------------------------------------------

# A string column with at least this share of distinct values in its sample is hashed value by
# value; below it, its distinct values are hashed once each (pandas' own path). Either way the
# hashes are those of ``pd.util.hash_array``: this only picks the cheaper route.
_DISTINCT_SHARE_FOR_DIRECT = 0.5
_SAMPLE = 2048
_NULL_HASH = np.uint64(np.iinfo(np.uint64).max)  # what pandas gives a missing string


def column_hash(series: pd.Series) -> np.ndarray:
    """``pd.util.hash_array(series.array)`` (uint64 per cell), computed faster for arrow strings.

    pandas hashes an arrow string column by dictionary-encoding it first, which for columns of
    mostly distinct values (names, attribute maps) costs more than it saves: those are hashed
    straight from one object array instead. The values are identical, so fingerprints do not
    change with the route taken.
    """
    arrow_backed = isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"
    strings = pa.array(series.array) if arrow_backed and len(series) else None  # zero-copy
    if strings is None or not _mostly_distinct(strings):
        hashes: np.ndarray = pd.util.hash_pandas_object(series, index=False).to_numpy()
        return hashes
    nulls = strings.null_count
    objects = (strings.fill_null("") if nulls else strings).to_numpy(zero_copy_only=False)
    hashed = pd.util.hash_array(objects, categorize=False)
    del objects
    if nulls:
        hashed[strings.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return hashed


def _mostly_distinct(strings: pa.Array | pa.ChunkedArray) -> bool:
    sample = strings.slice(0, _SAMPLE)
    distinct = pc.count_distinct(sample, mode="only_valid").as_py()
    return bool(distinct >= _DISTINCT_SHARE_FOR_DIRECT * max(len(sample), 1))


def combine_hashes(columns: list[np.ndarray], length: int = 0) -> np.ndarray:
    """Row hashes from column hashes, exactly as ``pd.util.hash_pandas_object`` combines a
    DataFrame's columns (CPython's tuple hash), so ``fingerprint`` keeps its values."""
    if not columns:
        return np.full(length, 0x345678 + 97531, dtype=np.uint64)
    count = len(columns)
    mult = np.uint64(1000003)
    out = np.zeros_like(columns[0]) + np.uint64(0x345678)
    for i, column in enumerate(columns):
        inverse_i = count - i
        out ^= column
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    out += np.uint64(97531)
    return out


# --- reading a region: concurrent listing families -------------------------------------------

# The listing families a snapshot runs at once, with the IoT APIs each one calls. Every API has
# its own quota (reconcile.ratelimit), so the families share nothing but the limiter and the
# snapshot takes as long as its slowest API, not the sum of them. Memberships are a family of
# their own, fed by the groups family as it describes each static group.
FAMILIES: dict[str, tuple[str, ...]] = {
    EntityKind.THING.value: ("ListThings",),
    EntityKind.THING_TYPE.value: ("ListThingTypes",),
    EntityKind.THING_GROUP.value: ("ListThingGroups", "DescribeThingGroup"),
    EntityKind.MEMBERSHIP.value: ("ListThingsInThingGroup",),
    EntityKind.BILLING_GROUP.value: (
        "ListBillingGroups",
        "DescribeBillingGroup",
        "ListThingsInBillingGroup",
    ),
    # Certificates, each described, then the things attached to it; policies, each read, then
    # their targets. The links are families of their own, fed by their parent's listing.
    EntityKind.CERTIFICATE.value: ("ListCertificates", "DescribeCertificate"),
    EntityKind.THING_PRINCIPAL.value: ("ListPrincipalThingsV2",),
    EntityKind.POLICY.value: ("ListPolicies", "GetPolicy"),
    EntityKind.POLICY_TARGET.value: ("ListTargetsForPolicy",),
}
# Threads listing group members at once: the member API allows 25 calls/s, which one thread at
# a typical 50-100 ms per call would fall short of. Billing groups are few, so fewer threads.
# Every thread shares the region's one client, whose connection pool holds 10 connections
# ("max_pool_connections ... default value of 10", botocore Config reference,
# https://docs.aws.amazon.com/botocore/latest/reference/config.html): at most 9 calls are in
# flight at once (things, types, groups, 4 member lists, 2 billing lists while the billing
# family waits for them), so none waits for a connection.
MEMBER_WORKERS = 4
BILLING_WORKERS = 2
_REPORT_EVERY = 250  # items between progress reports (one page of the largest listings)


@dataclass(frozen=True)
class ListingStatus:
    """Where one listing family of one region's snapshot stands (for progress displays)."""

    region: str
    family: str  # a key of FAMILIES
    items: int  # entities (or links) seen so far
    calls: int  # API calls the family has made so far (pages and describes)
    done: bool
    eta_seconds: float | None  # time left at the quotas, when the work left is known


ListingProgress = Callable[[ListingStatus], None]


_T = TypeVar("_T")


class SnapshotCancelled(Exception):
    """Raised inside a listing when another family failed or the run was interrupted."""


class _Tracker:
    """Counts per family; reports them; lets one failing family stop the others."""

    def __init__(
        self,
        region: str,
        inventory: Inventory,
        progress: ListingProgress | None,
        expected: Mapping[str, int] | None,
    ) -> None:
        self.region = region
        self.inventory = inventory
        self.progress = progress
        self.expected = dict(expected or {})
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.items: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self.done: set[str] = set()
        self.pending_member_lists = 0  # static groups whose members are still to be listed
        self._failure: BaseException | None = None

    def submit(self, pool: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run ``fn`` on ``pool`` in a copy of the caller's context (a ``VirtualClock``'s
        reading, log context), so work handed to another thread continues where its submitter
        stood; its first real failure stops every listing (``raise_failure`` re-raises it)."""
        context = contextvars.copy_context()

        def guarded() -> _T:
            try:
                return context.run(fn, *args)
            except SnapshotCancelled:
                raise
            except BaseException as error:
                with self._lock:
                    self._failure = self._failure or error
                self.stop.set()
                raise

        return pool.submit(guarded)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def counted(self, family: str, items: Iterable[_T], *, count: bool = True) -> Iterator[_T]:
        """Pass items through, counting them (unless told not to) and reporting every page;
        stops with ``SnapshotCancelled`` once another family failed."""
        for item in items:
            if self.stop.is_set():
                raise SnapshotCancelled(family)
            if not count:
                yield item
                continue
            with self._lock:
                self.items[family] += 1
                seen = self.items[family]
            if seen % _REPORT_EVERY == 0:
                self.report(family)
            yield item

    def finish(self, family: str) -> None:
        with self._lock:
            self.done.add(family)
        self.report(family)

    def report(self, family: str) -> None:
        if self.progress is None:
            return
        calls = sum(self.inventory.calls[op] for op in FAMILIES[family])
        with self._lock:
            items, done = self.items[family], family in self.done
        self.progress(
            ListingStatus(
                self.region, family, items, calls, done, 0.0 if done else self._eta(family)
            )
        )

    def _eta(self, family: str) -> float | None:
        """Seconds the family's known remaining calls need at the quotas (``None``: unknown).

        Things and groups are known only from ``expected`` (an earlier snapshot's counts);
        memberships from the static groups still waiting to be listed (one page each, at least).
        """
        limiter = self.inventory.limiter
        if family == EntityKind.MEMBERSHIP.value:
            rate = limiter.rate("ListThingsInThingGroup")
            return self.pending_member_lists / rate if rate else None
        expected = self.expected.get(family)
        if expected is None:
            return None
        left = max(0, expected - self.items[family])
        if family == EntityKind.THING_GROUP.value:
            rate = limiter.rate("DescribeThingGroup")
            return left / rate if rate else None
        rate = limiter.rate(FAMILIES[family][0])
        return math.ceil(left / PAGE_SIZE) / rate if rate else None


def take_snapshot(
    inventory: Inventory,
    region: str,
    *,
    progress: ListingProgress | None = None,
    expected: Mapping[str, int] | None = None,
    clock: Callable[[], int] = now_ms,
) -> Snapshot:
    """Read one region's whole registry through ``inventory``, the listing families at once.

    ``progress`` receives a ``ListingStatus`` as listings advance (from worker threads);
    ``expected`` (family -> count, e.g. an earlier snapshot's) lets it estimate time left.
    Memberships are read for static groups only (a dynamic group's members are computed per
    region). Memberships and billing-group links that name a thing the listing did not return
    are dropped: the thing was deleted while we read (or the service still lists a deleted
    thing), and a link to nothing cannot be replicated. The first listing to fail stops the
    others and its error is raised; so is an interrupt.
    """
    taken_at_ms = clock()
    tracker = _Tracker(region, inventory, progress, expected)
    for family in FAMILIES:  # every family shows from the start; rates count from here
        tracker.report(family)
    things_f, types_f = EntityKind.THING.value, EntityKind.THING_TYPE.value
    groups_f, members_f = EntityKind.THING_GROUP.value, EntityKind.MEMBERSHIP.value
    billing_f = EntityKind.BILLING_GROUP.value

    def listing(family: str, items: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        out = list(tracker.counted(family, items))
        tracker.finish(family)
        return out

    def members_of(group: str) -> list[dict[str, str]]:
        links = list(tracker.counted(members_f, inventory.memberships([group])))
        with tracker._lock:
            tracker.pending_member_lists -= 1
        return links

    def groups_and_members(
        members: ThreadPoolExecutor,
    ) -> tuple[list[dict[str, Any]], list[Future[list[dict[str, str]]]]]:
        groups: list[dict[str, Any]] = []
        member_lists: list[Future[list[dict[str, str]]]] = []
        for group in tracker.counted(groups_f, inventory.thing_groups()):
            groups.append(group)
            if not group.get("query"):  # static: its members are ours to read
                with tracker._lock:
                    tracker.pending_member_lists += 1
                member_lists.append(tracker.submit(members, members_of, group["name"]))
        tracker.finish(groups_f)
        return groups, member_lists

    def billing_links_of(group: str) -> list[dict[str, str]]:
        return list(tracker.counted(billing_f, inventory.billing_memberships([group]), count=False))

    def billing(
        links_pool: ThreadPoolExecutor,
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        groups = list(tracker.counted(billing_f, inventory.billing_groups()))
        futures = [tracker.submit(links_pool, billing_links_of, g["name"]) for g in groups]
        links = [link for future in futures for link in future.result()]
        tracker.finish(billing_f)
        return groups, links

    with (
        ThreadPoolExecutor(len(FAMILIES), thread_name_prefix=f"snapshot-{region}") as families,
        ThreadPoolExecutor(MEMBER_WORKERS, thread_name_prefix=f"members-{region}") as members,
        ThreadPoolExecutor(BILLING_WORKERS, thread_name_prefix=f"billing-{region}") as links_pool,
    ):
        try:
            things_job = tracker.submit(families, listing, things_f, inventory.things())
            types_job = tracker.submit(families, listing, types_f, inventory.thing_types())
            groups_job = tracker.submit(families, groups_and_members, members)
            billing_job = tracker.submit(families, billing, links_pool)
            security = [
                tracker.submit(families, listing_pair, tracker, inventory)
                for listing_pair in (_certificates_and_principals, _policies_and_targets)
            ]
            jobs: list[Future[Any]] = [things_job, types_job, groups_job, billing_job, *security]
            wait(jobs)
            if groups_job.exception() is None:
                wait(groups_job.result()[1])
            tracker.raise_failure()
            things, thing_types = things_job.result(), types_job.result()
            thing_groups, member_lists = groups_job.result()
            memberships_raw = [link for future in member_lists for link in future.result()]
            tracker.finish(members_f)
            billing_groups, billing_links = billing_job.result()
            (certificates, thing_principals), (policies, policy_targets) = (
                job.result() for job in security
            )
        except BaseException:
            tracker.stop.set()  # the other listings end at their next item
            raise

    return _assemble(
        region,
        taken_at_ms,
        things=things,
        thing_types=thing_types,
        thing_groups=thing_groups,
        billing_groups=billing_groups,
        billing_links=billing_links,
        memberships=memberships_raw,
        certificates=certificates,
        thing_principals=thing_principals,
        policies=policies,
        policy_targets=policy_targets,
    )


# The security side's two families: each parent listing also yields its links, counted as a
# family of their own once the parent is done.


def _certificates_and_principals(
    tracker: _Tracker, inventory: Inventory
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    certs: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for cert in tracker.counted(EntityKind.CERTIFICATE.value, inventory.certificates()):
        certs.append(cert)
        links += [
            {
                "name": thing_principal_name(link["thing"], cert["name"]),
                "thing": link["thing"],
                "exclusive": link["exclusive"],
            }
            for link in cert["things"]
        ]
    tracker.finish(EntityKind.CERTIFICATE.value)
    links = list(tracker.counted(EntityKind.THING_PRINCIPAL.value, iter(links)))
    tracker.finish(EntityKind.THING_PRINCIPAL.value)
    return certs, links


def _policies_and_targets(
    tracker: _Tracker, inventory: Inventory
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    policies = list(tracker.counted(EntityKind.POLICY.value, inventory.policies()))
    tracker.finish(EntityKind.POLICY.value)
    targets = [
        {"name": policy_target_name(policy["name"], target)}
        for policy in policies
        for target in policy["targets"]
    ]
    targets = list(tracker.counted(EntityKind.POLICY_TARGET.value, iter(targets)))
    tracker.finish(EntityKind.POLICY_TARGET.value)
    return policies, targets


def _assemble(
    region: str,
    taken_at_ms: int,
    *,
    things: list[dict[str, Any]],
    thing_types: list[dict[str, Any]],
    thing_groups: list[dict[str, Any]],
    billing_groups: list[dict[str, Any]],
    billing_links: list[dict[str, str]],
    memberships: list[dict[str, str]],
    certificates: list[dict[str, Any]],
    thing_principals: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    policy_targets: list[dict[str, Any]],
) -> Snapshot:
    """The snapshot from its listings: billing groups joined onto things; links that name a
    thing the listing did not return dropped (see ``take_snapshot``)."""
    names = {thing["name"] for thing in things}
    billing_of = {
        link["thing"]: link["billing_group"] for link in billing_links if link["thing"] in names
    }
    for thing in things:
        thing["billing_group"] = billing_of.get(thing["name"])
    return Snapshot.from_records(
        region,
        taken_at_ms,
        things=things,
        thing_types=thing_types,
        thing_groups=thing_groups,
        billing_groups=billing_groups,
        memberships=[link for link in memberships if link["thing"] in names],
        certificates=certificates,
        thing_principals=[link for link in thing_principals if link["thing"] in names],
        policies=policies,
        policy_targets=policy_targets,
    )


def plain_value(value: Any) -> Any:
    """A cell as a plain Python value: NA → None, numpy scalars → Python scalars."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def cell_value(column: str, value: Any) -> Any:
    """A cell as the plain value it stands for: canonical JSON columns are decoded."""
    plain = plain_value(value)
    if plain is None or column not in JSON_COLUMNS:
        return plain
    return json.loads(plain)


def desired_fields(kind: EntityKind, row: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """A snapshot row as ``pipeline.model`` state fields (``STATE_FIELDS[kind]``).

    ``row`` is a row of the kind's table (a ``pd.Series`` or a dict of its columns).
    """
    if kind is EntityKind.THING:
        return {
            "thing_type": plain_value(row["thing_type"]),
            "attributes": cell_value("attributes", row["attributes"]) or {},
            "billing_group": plain_value(row["billing_group"]),
        }
    if kind is EntityKind.THING_TYPE:
        return {
            "description": plain_value(row["description"]),
            "searchable_attributes": cell_value(
                "searchable_attributes", row["searchable_attributes"]
            )
            or [],
            "deprecated": bool(plain_value(row["deprecated"])),
            "propagating_attributes": cell_value(
                "propagating_attributes", row["propagating_attributes"]
            )
            or [],
        }
    if kind is EntityKind.THING_GROUP:
        return {
            "parent": plain_value(row["parent"]),
            "description": plain_value(row["description"]),
            "attributes": cell_value("attributes", row["attributes"]) or {},
            "query": cell_value("query", row["query"]),
        }
    if kind is EntityKind.BILLING_GROUP:
        return {"description": plain_value(row["description"])}
    if kind is EntityKind.MEMBERSHIP:
        return {}
    if kind is EntityKind.CERTIFICATE:
        return {"status": plain_value(row["status"]), "pem": plain_value(row["pem"])}
    if kind is EntityKind.POLICY:
        return {"document": plain_value(row["document"])}
    if kind is EntityKind.THING_PRINCIPAL:
        # Where the listing reports no type (moto), the default (NON_EXCLUSIVE_THING).
        return {"exclusive": bool(plain_value(row["exclusive"]) or False)}
    if kind is EntityKind.POLICY_TARGET:
        return {}
    raise ValueError(f"unknown entity kind {kind!r}")

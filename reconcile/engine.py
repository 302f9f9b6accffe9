"""The reconciliation engine: ``snapshot → diff → plan → emit``, composed in one place.

The command line (``reconcile.cli``), the nightly job (``jobs.run``, ``jobs.shard``) and the
in-process pipeline (``sandbox.inprocess``) all reconcile through a ``Reconciler``; each brings only
its edges: how a region is snapshotted (a ``Snapshotter``), which ignore rules and guards apply,
where corrective events go (an ``Emitter``, chosen by ``reconcile.emit.choose_emitter``) and the
clock. The stages themselves stay pure functions over data (``diff_snapshots``, ``build_plan``,
``corrective_changes``); the engine only wires them.

Given the state table's reader (``table``: the table as read in a region), the engine also
composes the three-way audit (``explain``: where each drift was lost, ``reconcile.explain``) and
the replication-health check (``table_vs_target``). After a failover, a reconcile from the DR
region back to the primary takes a ``Failback``: the audit reads the state table as a third
view and the plan leaves out the primary's changes that never replicated
(``reconcile.failback``).

A snapshot lists; it does not read what only a call per entity returns (``EntitySpec.detailed``:
a certificate's PEM and CA). The plan reads those fields for the entities it repairs, in the
source region, through the engine's ``reader`` (``reconcile.details``).

Reconciliation never writes to the destination registry: ``apply`` emits corrective events into
the source region's persist path, and the destination's replicator converges from there (see
docs/design.md, "Reconciliation").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from pipeline.aws import ClientFactory
from pipeline.clock import Clock, now_ms
from pipeline.errors import PermanentError
from pipeline.kinds import KINDS
from pipeline.kinds.shadow_selection import ALL, ShadowSelection
from pipeline.model import EntityKind
from pipeline.statetable import StateTable
from reconcile.details import needs_details, read_details, with_details
from reconcile.diff import diff_snapshots
from reconcile.drift import DriftReport
from reconcile.emit import DryRunEmitter, EmitResult, Emitter, Progress, corrective_changes
from reconcile.explain import explain, read_table, table_vs_target
from reconcile.failback import hold_unreplicated, repairable
from reconcile.guards import CLI_KNOBS, Guards, Knobs, PlanRefusedError
from reconcile.ignore import IgnoreRules
from reconcile.interrupt import at_once
from reconcile.inventory import Inventory, included
from reconcile.plan import Plan, check_fresh, check_same_actions
from reconcile.planner import build_plan
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import ListingProgress, Snapshot, empty_frame, take_snapshot
from reconcile.sweep import WHOLE, Sweep

Snapshotter = Callable[[str], Snapshot]
"""Reads one region's whole registry (or, as the engine's ``table``, the state table as read in
that region): ``snapshotter(region) -> Snapshot``."""


def registry_snapshotter(
    client: ClientFactory,
    *,
    limiter: Callable[[], RateLimiter] = RateLimiter,
    clock: Clock = now_ms,
    progress: ListingProgress | None = None,
    opt_in: Iterable[EntityKind] = (),
    include: Mapping[EntityKind, tuple[str, ...]] | None = None,
    shadows: ShadowSelection = ALL,
    partitions: Mapping[EntityKind, str] | None = None,
    sweep: Sweep = WHOLE,
) -> Snapshotter:
    """Snapshots a region through its IoT client, paced by a fresh ``limiter()`` per snapshot;
    ``progress`` (thread-safe, ``reconcile.progress``) hears every region's listings;
    ``opt_in``: the opt-in kinds to list too (``Listing.opt_in``: shadows, retained messages);
    ``include``: per kind, the name globs its entities must match (``Inventory``); ``shadows``:
    the things whose shadows are listed (``ShadowSelection.lists_under``); ``partitions``: per
    kind, the partition its listing runs in (``reconcile.partition``: the operator's word);
    ``sweep``: the slice of the per-device links listed (``reconcile.sweep``)."""
    kinds = frozenset(opt_in)
    under = {EntityKind.SHADOW: shadows.lists_under}

    def snapshot(region: str) -> Snapshot:
        inventory = Inventory(
            client("iot", region),
            limiter(),
            opt_in=kinds,
            include=include,
            under=under,
            partitions=partitions,
            factory=client,
            sweep=sweep,
        )
        return take_snapshot(inventory, region, progress=progress, clock=clock)

    return snapshot


RegionReader = Callable[[str], Inventory]
"""A region's registry, read entity by entity (``Kind.details``, ``reconcile.details``):
``reader(region) -> Inventory``, paced by its limiter."""


def registry_reader(
    client: ClientFactory, *, limiter: Callable[[], RateLimiter] = RateLimiter
) -> RegionReader:
    """Reads a region through its IoT client (``reconcile.inventory.Inventory``: the one IoT
    adapter, every call counted and paced by a fresh ``limiter()``)."""
    return lambda region: Inventory(client("iot", region), limiter(), factory=client)


def table_snapshotter(
    client: ClientFactory,
    table_name: str,
    *,
    clock: Clock = now_ms,
    opt_in: Iterable[EntityKind] = (),
    include: Mapping[EntityKind, tuple[str, ...]] | None = None,
) -> Snapshotter:
    """Reads the state table ``table_name`` (its replica in the region asked for) by a
    parallel Scan, stamped with ``clock``; without the opt-in kinds the registries' snapshots
    do not list (``opt_in`` as theirs) and the names their ``include`` globs leave out, so the
    table is compared with them kind for kind."""
    kinds = frozenset(opt_in)
    globs = dict(include or {})

    def snapshot(region: str) -> Snapshot:
        read = read_table(StateTable(client("dynamodb", region), table_name), region, clock())
        for kind in KINDS.values():
            frame = kind.spec.frame
            if kind.listing.opt_in and kind.kind not in kinds:
                read = read.with_table(frame, empty_frame(frame))
            elif kind.kind in globs:
                rows = read.frames[frame]
                keep = [included(globs, kind.kind, str(name)) for name in rows["name"]]
                # .loc: a table without rows gives [], which rows[[]] reads as no columns.
                read = read.with_table(frame, rows.loc[keep].reset_index(drop=True))
        return read

    return snapshot


class TableNeededError(PermanentError):
    """An engine asked to read the state table without a reader for it (a wiring bug)."""


class ReaderNeededError(PermanentError):
    """An engine asked to plan a repair that needs fields read per entity (a certificate's PEM)
    without a reader of the source region (a wiring bug)."""


@dataclass(frozen=True)
class Audit:
    """Both snapshots and the drift between them (under the engine's ignore rules)."""

    source: Snapshot
    destination: Snapshot
    report: DriftReport


@dataclass(frozen=True)
class Failback:
    """A reconcile from the DR region back to the primary (``reconcile.failback``), with the
    entities the operator lets the DR version overwrite; the engine reads the state table in the
    source region as a third view (its ``table``)."""

    overwrite: IgnoreRules = field(default_factory=IgnoreRules)


@dataclass(frozen=True)
class Reconciler:
    """Audit two registries, plan the repair within the guards, emit it.

    Both regions are always snapshotted at once (``snapshots``, the one place that does it): the
    snapshot is the longest stage and the API quotas it paces itself to are per region, so two
    regions read together take the time of one. A snapshotter's progress display must therefore
    take both regions' listings at once (``reconcile.progress``'s displays do).
    """

    snapshot: Snapshotter
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    guards: Guards = field(default_factory=Guards)
    emitter: Emitter = field(default_factory=DryRunEmitter)
    clock: Clock = now_ms
    # The state table as read in a region: for ``explain``, ``table_vs_target`` and a failback.
    table: Snapshotter | None = None
    # A registry read entity by entity: the fields a repair needs that no listing returns.
    reader: RegionReader | None = None
    failback: Failback | None = None  # hold the target's unreplicated changes (failback)
    # Source -> destination accounts of policy ARNs, as the replicator's POLICY_ACCOUNT_MAP.
    policy_accounts: Mapping[str, str] = field(default_factory=dict)
    # How the entry point's operator sets the guards: a refusal names them (``Knobs``).
    knobs: Knobs = field(default_factory=lambda: CLI_KNOBS)
    # Which shadows, and which of their sections, the pipeline replicates (SHADOW_INCLUDE, ...):
    # every snapshot read shows only those, and the corrective events carry only those.
    shadows: ShadowSelection = ALL

    def __post_init__(self) -> None:
        if self.failback is not None and self.table is None:
            raise TableNeededError("a failback reconcile reads the state table: pass its reader")

    def snapshots(self, source_region: str, destination_region: str) -> tuple[Snapshot, Snapshot]:
        """Both regions' snapshots, read at once, source first."""
        source, destination = at_once(
            lambda: self._read(self.snapshot, source_region),
            lambda: self._read(self.snapshot, destination_region),
            name="snapshot",
        )
        return source, destination

    def scoped(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` as the pipeline replicates it: only the shadows and sections of
        ``shadows`` (every snapshot the engine reads; a saved one loaded, too)."""
        if self.shadows.everything:
            return snapshot
        return snapshot.narrowed(EntityKind.SHADOW, self.shadows.compared)

    def _read(self, snapshotter: Snapshotter, region: str) -> Snapshot:
        try:
            return self.scoped(snapshotter(region))
        except Exception as error:  # which region, for whoever records it (the job's run record)
            error.add_note(f"reading {region}")
            raise

    def compare(
        self,
        source: Snapshot,
        destination: Snapshot,
        *,
        buckets: int = 1,
        bucket_range: range | None = None,
    ) -> Audit:
        """The drift between two snapshots (one bucket range of it for a shard); for a
        failback, explained and with the target's unreplicated changes held."""
        report = self._diff(source, destination, buckets=buckets, bucket_range=bucket_range)
        audit = Audit(source, destination, report)
        if self.failback is None or not report.drifts:
            return audit
        explained = self.explain(audit).report
        return replace(audit, report=hold_unreplicated(explained, self.failback.overwrite))

    def audit(self, source_region: str, destination_region: str) -> Audit:
        """Snapshot both regions and diff them (read-only)."""
        return self.compare(*self.snapshots(source_region, destination_region))

    def explain(self, audit: Audit) -> Audit:
        """The three-way audit: ``audit`` with each drift's loss point, from the state table
        read in the source region (``reconcile.explain``)."""
        table = self._table(audit.source.region)
        report = explain(
            audit.report,
            audit.source,
            table,
            audit.destination,
            ignore=self.ignore,
            clock=self.clock,
            policy_accounts=self.policy_accounts,
        )
        return replace(audit, report=report)

    def table_vs_target(self, source_region: str, destination_region: str) -> DriftReport:
        """The state table (read in the source region) against the destination registry only:
        the replicator's hop, the source registry not read (``reconcile.explain``)."""
        table = self._table(source_region)
        destination = self._read(self.snapshot, destination_region)
        return table_vs_target(self._diff(table, destination), table)

    def _diff(
        self,
        source: Snapshot,
        destination: Snapshot,
        *,
        buckets: int = 1,
        bucket_range: range | None = None,
    ) -> DriftReport:
        return diff_snapshots(
            source,
            destination,
            ignore=self.ignore,
            buckets=buckets,
            bucket_range=bucket_range,
            clock=self.clock,
            policy_accounts=self.policy_accounts,
        )

    def _table(self, region: str) -> Snapshot:
        if self.table is None:
            raise TableNeededError("reading the state table needs the engine's table reader")
        return self._read(self.table, region)

    def plan(self, audit: Audit) -> Plan:
        """The repair plan for ``audit`` within the guards (raises ``PlanRefusedError``); held
        drifts (failback) are not planned. The fields its upserts need that no listing returns
        are read once the guards have passed the draft, in the source region, for those
        entities only (``reconcile.details``)."""
        try:
            drafted = build_plan(
                repairable(audit.report),
                audit.source,
                audit.destination,
                self.guards,
                now=self.clock(),
                ignore=self.ignore,
            )
        except PlanRefusedError as refusal:
            raise refusal.naming(self.knobs) from refusal
        wanted = needs_details(drafted)
        if not wanted:
            return drafted
        if self.reader is None:
            raise ReaderNeededError(
                f"the repair needs {len(wanted)} entities read one by one in "
                f"{drafted.source_region}: pass the engine's reader"
            )
        return with_details(drafted, read_details(self.reader(drafted.source_region), wanted))

    def verify(self, plan: Plan) -> None:
        """Refuse a saved ``plan`` (``StalePlanError``, ``PlanRefusedError``) unless fresh
        snapshots of its two registries still call for exactly its actions: their fingerprints
        match the plan's, and the plan rebuilt from them under this engine's guards and ignore
        rules (the applier's, never the file's) has the same actions."""
        source, destination = self.snapshots(plan.source_region, plan.target_region)
        check_fresh(
            plan,
            now=self.clock(),
            source_fingerprint=source.fingerprint(),
            target_fingerprint=destination.fingerprint(),
        )
        check_same_actions(plan, self.plan(self.compare(source, destination)))

    def apply(self, plan: Plan, *, progress: Progress | None = None) -> EmitResult:
        """Emit ``plan``'s corrective events into the persist path of its *source* region; the
        engine's clock bounds their timestamps (``reconcile.emit.validated``)."""
        planned = corrective_changes(plan, plan.source_region)
        # Only the sections replicated: the others are the destination's own (a plan's event
        # carries both, and one emitted straight into the table meets no persist step).
        changes = [kept for change in planned if (kept := self.shadows.admitted(change))]
        if not changes:
            return EmitResult()
        return self.emitter.emit(changes, now=self.clock(), progress=progress)

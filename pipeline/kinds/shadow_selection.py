"""Which device shadows the pipeline replicates, and which of their two sections: the one
setting every entry point reads (persist, the nightly job, ``iot-crr``), and its one decision
(``ShadowSelection.keep``). Part of the shadow kind (``pipeline.kinds.shadow``), in a module of
its own only for the size of that one.

- ``SHADOW_INCLUDE``: shadow-name globs (``fnmatch``, case-sensitive), separated by commas or
  blanks; empty or unset: every shadow. The classic (unnamed) shadow is named ``~classic``
  (``pipeline.kinds.shadow.CLASSIC``: ``~`` is in no shadow name), so ``~classic`` selects it
  and ``*`` every shadow, the classic one included.
- ``SHADOW_EXCLUDE``: globs of shadows left out even when included (``$*``: the shadows whose
  names start with ``$``; ``telemetry-*``).
- A glob with ``#`` matches ``<thing>#<shadow>``: ``gateway-*#*`` is every shadow of the things
  whose names start with ``gateway-``, ``*#config`` the same as ``config``. A snapshot lists
  the shadows only of the things such globs can select (``lists_under``): the per-thing calls
  that dominate a large fleet's shadow listing (docs/shadows.md) are made for those alone.
- ``SHADOW_SECTIONS``: ``desired``, ``reported`` or ``both`` (the default): the sections
  replicated. The other one is each region's own: the replicator leaves it as the
  destination has it, and the audit does not compare it.

Applied where a shadow's state enters the pipeline or is compared:

- persist (``pipeline.ingest.persist_change``): a change of a shadow not selected is skipped,
  never written to the state table, and a selected one keeps only the selected sections (a
  corrective event's too, which carries both);
- the replicator converges only the sections an item holds (``shadow_calls``), so a section
  persist left out stays the destination's;
- snapshots (``reconcile.snapshot.Snapshot.scoped``; the registries' and the state table's):
  a shadow not selected is left out, and a section not replicated reads as empty in every view,
  so neither shows drift nor is repaired.

Unselected shadows are still read by the snapshot's listing (ListNamedShadowsForThing returns
names only, and the names are known only after it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from pipeline.errors import EventValidationError
from pipeline.kinds.shadow import CLASSIC, EMPTY, SECTIONS
from pipeline.model import KEY_SEPARATOR, Change, EntityKind

INCLUDE_VARIABLE = "SHADOW_INCLUDE"
EXCLUDE_VARIABLE = "SHADOW_EXCLUDE"
SECTIONS_VARIABLE = "SHADOW_SECTIONS"
VARIABLES = (INCLUDE_VARIABLE, EXCLUDE_VARIABLE, SECTIONS_VARIABLE)

# A glob over shadow names ([$a-zA-Z0-9:_-], 1-64) and the classic shadow's token, optionally
# after a glob over thing names ([a-zA-Z0-9:_-], 1-128) and "#" (AWS IoT API Reference,
# GetThingShadow), with fnmatch's own characters.
_GLOB = re.compile(r"(?:[a-zA-Z0-9:_*?!\[\]-]{1,128}#)?[$a-zA-Z0-9:_~*?!\[\]-]{1,64}", re.ASCII)
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class ShadowSelection:
    """Shadows whose name matches an ``include`` glob (none given: every shadow) and no
    ``exclude`` glob; of those, the ``sections`` replicated."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sections: tuple[str, ...] = SECTIONS

    @property
    def everything(self) -> bool:
        return not self.include and not self.exclude and set(self.sections) == set(SECTIONS)

    def selects(self, name: str) -> bool:
        """Whether shadow ``name`` (``<thing>#<shadow or ~classic>``) is replicated."""
        if self.include and not any(_matches(name, glob) for glob in self.include):
            return False
        return not any(_matches(name, glob) for glob in self.exclude)

    def lists_under(self, thing: Mapping[str, Any]) -> bool:
        """Whether a snapshot lists the shadows of ``thing`` (a thing's record): not when it
        can have no shadow selected, as the globs naming things (``<thing>#<shadow>``) say."""
        name = str(thing["name"])
        if any(
            _thing_glob(glob)
            and glob.endswith(f"{KEY_SEPARATOR}*")
            and fnmatchcase(name, _thing_glob(glob))
            for glob in self.exclude
        ):
            return False
        return not self.include or any(
            not _thing_glob(glob) or fnmatchcase(name, _thing_glob(glob)) for glob in self.include
        )

    def keep(self, name: str, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """The decision: ``None`` for a shadow not replicated; otherwise ``state`` with only
        the sections replicated (an absent section is the destination's own)."""
        if not self.selects(name):
            return None
        return {key: value for key, value in state.items() if key not in SECTIONS or key in self}

    def __contains__(self, section: object) -> bool:
        return section in self.sections

    def admitted(self, change: Change) -> Change | None:
        """A change as persist writes it (``None``: skipped); other kinds' pass unchanged."""
        if change.kind is not EntityKind.SHADOW:
            return change
        kept = self.keep(change.name, change.fields)
        if kept is None:
            return None
        return change if kept == change.fields else replace(change, fields=kept)

    def compared(self, name: str, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """A snapshot's record as compared (``None``: left out): a section not replicated
        reads as empty in every view."""
        kept = self.keep(name, state)
        if kept is None:
            return None
        return {**kept, **{key: EMPTY for key in SECTIONS if key not in self}}

    def describe(self) -> str:
        """``shadows: include config,~classic; exclude $*; desired only``; "" for everything."""
        if self.everything:
            return ""
        parts = [f"include {','.join(self.include)}"] if self.include else []
        parts += [f"exclude {','.join(self.exclude)}"] if self.exclude else []
        if set(self.sections) != set(SECTIONS):
            parts.append(f"{self.sections[0]} only")
        return "shadows: " + "; ".join(parts)


ALL = ShadowSelection()


def _thing_glob(glob: str) -> str:
    """The thing part of a ``<thing>#<shadow>`` glob ("" for a glob of shadow names)."""
    thing, separator, _ = glob.partition(KEY_SEPARATOR)
    return thing if separator else ""


def _matches(name: str, glob: str) -> bool:
    """A glob with ``#`` matches the whole ``<thing>#<shadow>``; one without, the shadow's name
    (``~classic`` for the classic shadow)."""
    if KEY_SEPARATOR in glob:
        return fnmatchcase(name, glob)
    return fnmatchcase(name.partition(KEY_SEPARATOR)[2] or CLASSIC, glob)


def globs(variable: str, text: str) -> tuple[str, ...]:
    """Globs separated by commas or blanks, each checked: a glob no shadow name can match is a
    mistake worth refusing (``EventValidationError`` naming ``variable``)."""
    found = tuple(glob for glob in _SEPARATORS.split(text.strip()) if glob)
    for glob in found:
        if _GLOB.fullmatch(glob) is None:
            raise EventValidationError(
                variable,
                f"{glob!r} is no shadow-name glob ([$a-zA-Z0-9:_-], fnmatch's *?[!], "
                f"{CLASSIC} for the classic shadow, after 'thing-glob#' for some things only)",
            )
    return found


def sections(variable: str, text: str) -> tuple[str, ...]:
    """``desired``, ``reported``, or ``both`` (empty: both)."""
    value = text.strip()
    if value in ("", "both"):
        return SECTIONS
    if value not in SECTIONS:
        raise EventValidationError(variable, f"{value!r}: expected desired, reported or both")
    return (value,)


def parse_selection(include: str = "", exclude: str = "", only: str = "") -> ShadowSelection:
    """The selection from its three settings' text (``EventValidationError`` naming the bad
    one's variable)."""
    return ShadowSelection(
        globs(INCLUDE_VARIABLE, include),
        globs(EXCLUDE_VARIABLE, exclude),
        sections(SECTIONS_VARIABLE, only),
    )


def selection_from_env(env: Mapping[str, str]) -> ShadowSelection:
    """The selection an entry point's environment sets (unset: every shadow, both sections)."""
    return parse_selection(*(env.get(variable, "") for variable in VARIABLES))

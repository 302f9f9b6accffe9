"""Ignore rules: drift an operator has decided not to see (and therefore not to repair).

Flow: ``diff_snapshots(..., ignore=rules)`` filters the drift list before the report is built,
and the repair plan is built from the report, so one rule silences both. Rules come from a
``.iotdriftignore`` file (one pattern per line, ``#`` starts a comment line) and from
``--ignore`` options.

Pattern syntax (globs as in ``fnmatch``, case-sensitive)::

    entity:name-glob               drop every drift of matching entities
    entity:name-glob:field-glob    drop matching fields from a drift's details; a "changed"
                                   drift with no fields left is dropped

``entity`` is an ``EntityKind`` value (thing, thing_type, thing_group, billing_group,
membership), a short alias (type, group, billing, member) or a glob such as ``*``. Membership
names are ``thing#group``. Examples: ``thing:test-*``, ``thing:*:attributes.lastSeen``,
``membership:*#staging-*``, ``*:tmp-*``. Names may contain ``:``; a trailing ``:part`` is read
as a field glob only when it can match a state field (so ``thing:plant:line-*`` is a name glob,
while ``thing:plant:*`` means every field of ``plant``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from pipeline.errors import PermanentError
from pipeline.model import ENTITIES, STATE_FIELDS, EntityKind
from reconcile.drift import Drift, DriftReport, changed_severity

DEFAULT_FILE = ".iotdriftignore"

_ALIASES = {spec.alias: kind.value for kind, spec in ENTITIES.items() if spec.alias is not None}
_KINDS = tuple(kind.value for kind in EntityKind)
_FIELDS = frozenset(f for names in STATE_FIELDS.values() for f in names)


class IgnorePatternError(PermanentError):
    """An ignore pattern that cannot be parsed; ``origin`` says where it came from."""

    def __init__(self, pattern: str, reason: str, origin: str = "--ignore") -> None:
        super().__init__(f"{origin}: bad ignore pattern {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason
        self.origin = origin


class IgnoreFileError(PermanentError):
    """The ignore file cannot be read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"ignore file {path}: {reason}")
        self.path = path


@dataclass(frozen=True)
class IgnoreRule:
    entity: str  # an EntityKind value or a glob over them
    name: str  # glob over entity names
    field: str | None = None  # glob over detail fields; None = the whole drift
    text: str = ""  # the pattern as written

    @classmethod
    def parse(cls, text: str, origin: str = "--ignore") -> IgnoreRule:
        pattern = text.strip()
        entity, sep, rest = pattern.partition(":")
        if not sep or not entity or not rest:
            raise IgnorePatternError(text, "expected entity:name-glob[:field-glob]", origin)
        entity = _ALIASES.get(entity, entity)
        if not any(fnmatchcase(kind, entity) for kind in _KINDS):
            raise IgnorePatternError(
                text,
                f"entity matches none of {', '.join(_KINDS)} (or {', '.join(_ALIASES)})",
                origin,
            )
        # Names may contain ':' (AWS allows it), so a trailing ':part' is a field glob only when
        # it can name a state field ("attributes.lastSeen", "desc*", "*").
        name, field = rest, None
        head, colon, tail = rest.rpartition(":")
        if colon and head and tail:
            root = tail.split(".", 1)[0]
            if any(fnmatchcase(f, root) for f in _FIELDS):
                name, field = head, tail
        return cls(entity=entity, name=name, field=field, text=pattern)

    def matches_entity(self, entity: EntityKind, name: str) -> bool:
        return fnmatchcase(entity.value, self.entity) and fnmatchcase(name, self.name)


@dataclass(frozen=True)
class IgnoreRules:
    """A set of ignore patterns; ``IgnoreRules(patterns=("thing:test-*",))`` parses them.

    ``sources`` says where the patterns came from, as ``(origin, count)`` pairs, so a command can
    say what it loaded (``describe``): a forgotten ignore file silently hides drift otherwise.
    """

    patterns: tuple[str, ...] = ()
    sources: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    rules: tuple[IgnoreRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = tuple(p.strip() for p in self.patterns if p.strip())
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "rules", tuple(IgnoreRule.parse(p) for p in patterns))

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], origin: str = "--ignore") -> IgnoreRules:
        kept = tuple(p for p in patterns if p.strip())
        return cls(kept, ((origin, len(kept)),) if kept else ())

    @classmethod
    def from_file(
        cls, path: Path, extra: Iterable[str] = (), *, missing_ok: bool = False
    ) -> IgnoreRules:
        """Rules from an ignore file (blank lines and lines starting with ``#`` skipped) plus
        ``extra`` patterns (the ``--ignore`` options). ``missing_ok`` makes an absent file
        mean "no rules" (the default ``.iotdriftignore`` is optional). A bad line is reported
        as ``path:line``."""
        path = Path(path)
        patterns: list[str] = []
        read = True
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as error:
            if not missing_ok:
                raise IgnoreFileError(path, "not found") from error
            lines, read = [], False
        except OSError as error:
            raise IgnoreFileError(path, str(error)) from error
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            # Only whole-line comments: '#' is also the membership name separator.
            if not stripped or stripped.startswith("#"):
                continue
            IgnoreRule.parse(stripped, f"{path}:{number}")  # fail here, with the line number
            patterns.append(stripped)
        from_file = cls(tuple(patterns), ((str(path.resolve()), len(patterns)),) if read else ())
        return from_file + cls.from_patterns(extra)

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(self.patterns + other.patterns, self.sources + other.sources)

    def describe(self) -> str:
        """``ignore rules: 2 from /repo/.iotdriftignore, 1 from --ignore``; "" when none was
        asked for (no file read, no pattern given)."""
        if not self.sources:
            return ""
        parts = ", ".join(f"{count} from {origin}" for origin, count in self.sources)
        return f"ignore rules: {parts}"

    def __bool__(self) -> bool:
        return bool(self.rules)

    def ignores(self, entity: EntityKind, name: str, field: str | None = None) -> bool:
        """Whether a drift (``field=None``) or one of its fields is ignored."""
        for rule in self.rules:
            if not rule.matches_entity(entity, name):
                continue
            if rule.field is None or (field is not None and fnmatchcase(field, rule.field)):
                return True
        return False

    def filter(self, drifts: Iterable[Drift]) -> Iterator[Drift]:
        """The drifts that remain visible, with ignored detail fields removed."""
        for drift in drifts:
            relevant = [r for r in self.rules if r.matches_entity(drift.entity, drift.name)]
            if not relevant:
                yield drift
                continue
            if any(r.field is None for r in relevant):
                continue
            details = {
                key: values
                for key, values in drift.details.items()
                if not any(fnmatchcase(key, r.field or "") for r in relevant)
            }
            if details == drift.details:
                yield drift
            elif drift.kind == "changed":
                if details:
                    yield dataclasses.replace(
                        drift, details=details, severity=changed_severity(drift.entity, details)
                    )
            else:
                yield dataclasses.replace(drift, details=details)

    def apply(self, report: DriftReport) -> DriftReport:
        """``report`` with these rules applied (e.g. to a report loaded from JSON)."""
        return dataclasses.replace(report, drifts=tuple(self.filter(report.drifts)))

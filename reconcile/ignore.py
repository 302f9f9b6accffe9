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

Matching costs one dict lookup per entity for the rules without a glob in their name, plus one
compiled pattern per rule whose name is a glob (``IgnoreRules.candidates``): linear in rules +
drifts, however many exact names a file lists (issue 22: 200,000 names used to cost each drift
200,000 glob matches). Every glob is compiled once.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import InitVar, dataclass, field
from fnmatch import translate
from pathlib import Path

from pipeline.errors import PermanentError
from pipeline.kinds import ENTITIES, STATE_FIELDS
from pipeline.model import EntityKind
from reconcile.drift import Drift, DriftReport, changed_severity

DEFAULT_FILE = ".iotdriftignore"

_ALIASES = {spec.alias: kind.value for kind, spec in ENTITIES.items() if spec.alias is not None}
_KINDS = tuple(kind.value for kind in EntityKind)
_FIELDS = frozenset(f for names in STATE_FIELDS.values() for f in names)
_GLOB_CHARACTER = re.compile(r"[*?\[]")


def _is_glob(pattern: str) -> bool:
    return _GLOB_CHARACTER.search(pattern) is not None


@functools.lru_cache(maxsize=1024)
def _matcher(glob: str) -> Callable[[str], bool]:
    """``fnmatch.fnmatchcase(text, glob)`` as a function compiled once: the rules keep theirs
    (the index, ``IgnoreRule.matches_field``), so a glob is compiled once per rule however many
    drifts it meets (fnmatch's own cache recompiles beyond 32,768 patterns)."""
    match = re.compile(translate(glob)).match
    return lambda text: match(text) is not None


@functools.cache
def _kinds(entity: str) -> tuple[EntityKind, ...]:
    """The entity kinds an entity glob (or kind value) names."""
    return tuple(kind for kind in EntityKind if _matcher(entity)(kind.value))


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
        if not _kinds(entity):
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
            if root in _FIELDS or (_is_glob(root) and any(map(_matcher(root), _FIELDS))):
                name, field = head, tail
        return cls(entity=entity, name=name, field=field, text=pattern)

    def matches_field(self, field_name: str | None) -> bool:
        """Whether the rule drops ``field_name`` of a drift it names (None: the whole drift)."""
        if self.field is None:
            return True
        return field_name is not None and self._field_matcher(field_name)

    @functools.cached_property
    def _field_matcher(self) -> Callable[[str], bool]:
        return _matcher(self.field or "")


@dataclass(frozen=True)
class _Index:
    """Rules by what they name: exact names in a dict, name globs compiled, per entity kind."""

    exact: dict[EntityKind, dict[str, list[IgnoreRule]]]
    globs: dict[EntityKind, list[tuple[Callable[[str], bool], IgnoreRule]]]

    @classmethod
    def of(cls, rules: Iterable[IgnoreRule]) -> _Index:
        exact: dict[EntityKind, dict[str, list[IgnoreRule]]] = {}
        globs: dict[EntityKind, list[tuple[Callable[[str], bool], IgnoreRule]]] = {}
        for rule in rules:
            glob = _matcher(rule.name) if _is_glob(rule.name) else None
            for kind in _kinds(rule.entity):
                if glob is not None:
                    globs.setdefault(kind, []).append((glob, rule))
                    continue
                by_name = exact.setdefault(kind, {})
                same = by_name.get(rule.name)
                if same is None:
                    by_name[rule.name] = [rule]
                else:
                    same.append(rule)
        return cls(exact, globs)

    def candidates(self, entity: EntityKind, name: str) -> list[IgnoreRule]:
        found = list(self.exact.get(entity, {}).get(name, ()))
        found.extend(rule for matches, rule in self.globs.get(entity, ()) if matches(name))
        return found


@dataclass(frozen=True)
class IgnoreRules:
    """A set of ignore patterns; ``IgnoreRules(patterns=("thing:test-*",))`` parses them.

    ``sources`` says where the patterns came from, as ``(origin, count)`` pairs, so a command can
    say what it loaded (``describe``): a forgotten ignore file silently hides drift otherwise.
    """

    patterns: tuple[str, ...] = ()
    sources: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    # The patterns already parsed, in order (``from_file``, ``__add__``): parsed once only.
    parsed: InitVar[tuple[IgnoreRule, ...] | None] = None
    rules: tuple[IgnoreRule, ...] = field(init=False, repr=False, compare=False)
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self, parsed: tuple[IgnoreRule, ...] | None) -> None:
        patterns = tuple(p.strip() for p in self.patterns if p.strip())
        object.__setattr__(self, "patterns", patterns)
        rules = parsed if parsed is not None else tuple(IgnoreRule.parse(p) for p in patterns)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "_index", _Index.of(rules))

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
        parsed: list[IgnoreRule] = []
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
            parsed.append(IgnoreRule.parse(stripped, f"{path}:{number}"))  # with its line
            patterns.append(stripped)
        sources = ((str(path.resolve()), len(patterns)),) if read else ()
        options = cls.from_patterns(extra)
        return cls(
            tuple(patterns) + options.patterns,
            sources + options.sources,
            tuple(parsed) + options.rules,
        )

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(
            self.patterns + other.patterns, self.sources + other.sources, self.rules + other.rules
        )

    def describe(self) -> str:
        """``ignore rules: 2 from /repo/.iotdriftignore, 1 from --ignore``; "" when none was
        asked for (no file read, no pattern given)."""
        if not self.sources:
            return ""
        parts = ", ".join(f"{count} from {origin}" for origin, count in self.sources)
        return f"ignore rules: {parts}"

    def __bool__(self) -> bool:
        return bool(self.rules)

    def candidates(self, entity: EntityKind, name: str) -> list[IgnoreRule]:
        """The rules that name this entity (whole, or some of its fields): the rules with its
        exact name, found by one lookup, and the name globs that match it."""
        return self._index.candidates(entity, name)

    def ignores(self, entity: EntityKind, name: str, field: str | None = None) -> bool:
        """Whether a drift (``field=None``) or one of its fields is ignored."""
        return any(rule.matches_field(field) for rule in self.candidates(entity, name))

    def filter(self, drifts: Iterable[Drift]) -> Iterator[Drift]:
        """The drifts that remain visible, with ignored detail fields removed."""
        for drift in drifts:
            relevant = self.candidates(drift.entity, drift.name)
            if not relevant:
                yield drift
                continue
            if any(r.field is None for r in relevant):
                continue
            details = {
                key: values
                for key, values in drift.details.items()
                if not any(r.matches_field(key) for r in relevant)
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

"""Ignore rules: pattern syntax, the ignore file, and their effect on a diff (no network)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.ignore import IgnoreFileError, IgnorePatternError, IgnoreRule, IgnoreRules
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"


def drifting_pair() -> tuple[Snapshot, Snapshot]:
    source = Snapshot.from_records(
        SRC,
        1,
        things=[
            {"name": "test-1"},
            {"name": "tmp-1"},
            {"name": "prod-1", "attributes": {"lastSeen": "1", "colour": "red"}},
            {"name": "prod-2", "attributes": {"lastSeen": "1"}},
        ],
        thing_groups=[{"name": "staging-a"}, {"name": "tmp-g"}, {"name": "prod"}],
        memberships=[
            {"thing": "prod-1", "group": "staging-a"},
            {"thing": "prod-1", "group": "prod"},
        ],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[
            {"name": "prod-1", "attributes": {"lastSeen": "2", "colour": "blue"}},
            {"name": "prod-2", "attributes": {"lastSeen": "2"}},
        ],
        thing_groups=[{"name": "staging-a"}, {"name": "prod"}],
    )
    return source, target


def names(rules: IgnoreRules | None) -> set[tuple[str, str]]:
    source, target = drifting_pair()
    return {(d.entity.value, d.name) for d in diff_snapshots(source, target, ignore=rules).drifts}


def test_without_rules_everything_is_reported() -> None:
    assert names(None) == {
        ("thing_group", "tmp-g"),
        ("thing", "test-1"),
        ("thing", "tmp-1"),
        ("thing", "prod-1"),
        ("thing", "prod-2"),
        ("membership", "prod-1#staging-a"),
        ("membership", "prod-1#prod"),
    }


@pytest.mark.parametrize(
    ("pattern", "hidden"),
    [
        ("thing:test-*", {("thing", "test-1")}),
        ("*:tmp-*", {("thing", "tmp-1"), ("thing_group", "tmp-g")}),
        ("group:tmp-*", {("thing_group", "tmp-g")}),  # alias
        ("membership:*#staging-*", {("membership", "prod-1#staging-a")}),
        # prod-2 differs only in lastSeen: nothing left to report; prod-1 still differs in colour
        ("thing:*:attributes.lastSeen", {("thing", "prod-2")}),
    ],
)
def test_each_pattern_hides_exactly_its_drifts(pattern: str, hidden: set[tuple[str, str]]) -> None:
    assert names(None) - names(IgnoreRules((pattern,))) == hidden


def test_field_rules_strip_details_and_recompute_severity() -> None:
    source, target = drifting_pair()
    report = diff_snapshots(
        source, target, ignore=IgnoreRules.from_patterns(["thing:prod-*:attributes.lastSeen"])
    )
    prod1 = next(d for d in report.drifts if d.name == "prod-1")
    assert prod1.details == {"attributes.colour": {"source": "red", "target": "blue"}}
    assert prod1.severity == "medium"


def test_apply_filters_an_existing_report() -> None:
    source, target = drifting_pair()
    report = diff_snapshots(source, target)
    filtered = IgnoreRules(("thing:*",)).apply(report)
    assert {d.entity for d in filtered.drifts} == {EntityKind.THING_GROUP, EntityKind.MEMBERSHIP}
    assert filtered.counts == report.counts


def test_ignore_file_with_comments_and_extra_patterns(tmp_path: Path) -> None:
    path = tmp_path / ".iotdriftignore"
    path.write_text("# lab devices come and go\n\nthing:test-*\n   \n  membership:*#staging-*  \n")
    rules = IgnoreRules.from_file(path, ["*:tmp-*"])
    assert rules.patterns == ("thing:test-*", "membership:*#staging-*", "*:tmp-*")
    assert names(rules) == {("thing", "prod-1"), ("thing", "prod-2"), ("membership", "prod-1#prod")}


def test_ignore_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / ".iotdriftignore"
    path.write_text("thing:ok\nwidget:x\n")
    with pytest.raises(IgnorePatternError, match=r"\.iotdriftignore:2"):
        IgnoreRules.from_file(path)
    with pytest.raises(IgnoreFileError):
        IgnoreRules.from_file(tmp_path / "absent")
    assert not IgnoreRules.from_file(tmp_path / "absent", missing_ok=True)


@pytest.mark.parametrize("bad", ["thing", "thing:", ":x", "widget:x", "nothing*:x"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(IgnorePatternError):
        IgnoreRules((bad,))


def test_names_may_contain_colons() -> None:
    # ':' is legal in IoT names; a trailing part is a field only if it can name a field
    assert IgnoreRule.parse("thing:plant:line-4") == IgnoreRule(
        "thing", "plant:line-4", None, "thing:plant:line-4"
    )
    rule = IgnoreRule.parse("thing:plant:*:attributes.x")
    assert (rule.name, rule.field) == ("plant:*", "attributes.x")
    rules = IgnoreRules(("thing:plant:line-*",))
    assert rules.ignores(EntityKind.THING, "plant:line-4")
    assert not rules.ignores(EntityKind.THING, "plant")
    # ambiguous: a trailing glob that can match a field is read as a field glob
    assert IgnoreRule.parse("thing:plant:*").field == "*"


def test_rules_combine() -> None:
    combined = IgnoreRules(("thing:a",)) + IgnoreRules(("thing:b",))
    assert combined.patterns == ("thing:a", "thing:b")
    assert combined.ignores(EntityKind.THING, "b")
    assert not combined.ignores(EntityKind.THING_GROUP, "b")


def test_rules_say_how_many_were_loaded_and_from_where(tmp_path: Path) -> None:
    path = tmp_path / ".iotdriftignore"
    path.write_text("# comment\nthing:test-*\nthing:*:attributes.lastSeen\n")
    rules = IgnoreRules.from_file(path, ["*:tmp-*"])
    assert rules.describe() == f"ignore rules: 2 from {path.resolve()}, 1 from --ignore"
    # an absent optional file and no options: nothing to say
    assert IgnoreRules.from_file(tmp_path / "absent", missing_ok=True).describe() == ""
    # an empty file that was read still says so (it may be the wrong file)
    (tmp_path / "empty").write_text("# nothing yet\n")
    assert IgnoreRules.from_file(tmp_path / "empty").describe().startswith("ignore rules: 0 from")
    env = IgnoreRules.from_patterns(["thing:a", " "], origin="IGNORE_PATTERNS")
    assert env.describe() == "ignore rules: 1 from IGNORE_PATTERNS"


# ---- at scale (issue 22, item 13) -------------------------------------------------------------


def test_an_entity_meets_only_the_rules_that_name_it_however_many_exact_names() -> None:
    # 200,000 exact names used to cost every drift 200,000 glob matches (about 40 s on a
    # 300-thing audit): an exact name is now one lookup, and only name globs are matched.
    retired = tuple(f"thing:retired-{i}" for i in range(200_000))
    rules = IgnoreRules((*retired, "thing:test-*", "*:tmp-*", "thing:*:attributes.lastSeen"))
    assert rules.candidates(EntityKind.THING, "prod-1") == list(rules.rules[-1:])
    assert [r.text for r in rules.candidates(EntityKind.THING, "retired-7")] == [
        "thing:retired-7",
        "thing:*:attributes.lastSeen",
    ]
    assert [r.text for r in rules.candidates(EntityKind.THING_GROUP, "tmp-1")] == ["*:tmp-*"]
    assert rules.candidates(EntityKind.THING_GROUP, "retired-7") == []
    assert rules.ignores(EntityKind.THING, "retired-199999")
    assert rules.ignores(EntityKind.THING, "prod-1", "attributes.lastSeen")
    assert not rules.ignores(EntityKind.THING, "prod-1", "attributes.colour")


_PATTERN_NAMES = ("a", "a:b", "a*", "*", "a?", "[ab]", "b:*", "retired-1")
_PATTERN_FIELDS = (None, "attributes.x", "attributes.*", "description", "*")


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(
        st.tuples(
            st.sampled_from(("thing", "group", "member", "*", "thing*")),
            st.sampled_from(_PATTERN_NAMES),
            st.sampled_from(_PATTERN_FIELDS),
        ),
        max_size=6,
    ),
    entity=st.sampled_from(list(EntityKind)),
    name=st.sampled_from(("a", "a:b", "ab", "b", "b:c", "retired-1", "x")),
    field=st.sampled_from((None, "attributes.x", "attributes.y", "description")),
)
def test_matching_agrees_with_matching_every_rule_one_by_one(
    patterns: list[tuple[str, str, str | None]],
    entity: EntityKind,
    name: str,
    field: str | None,
) -> None:
    # The reference: each rule's entity, name and field globs tried in turn (fnmatch), as
    # before the index.
    texts = tuple(":".join(p for p in pattern if p is not None) for pattern in patterns)
    rules = IgnoreRules(texts)
    expected = any(
        fnmatchcase(entity.value, rule.entity)
        and fnmatchcase(name, rule.name)
        and (rule.field is None or (field is not None and fnmatchcase(field, rule.field)))
        for rule in rules.rules
    )
    assert rules.ignores(entity, name, field) == expected

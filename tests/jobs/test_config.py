"""``run_config_from_env``: a valid environment, defaults, and every bad variable named."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, run_config_from_env
from jobs.nightly import main
from jobs.run import reconciler
from pipeline.kinds.shadow_selection import ShadowSelection
from pipeline.model import EntityKind

GOOD = {
    "SOURCE_REGION": "us-east-1",
    "TARGET_REGION": "eu-west-1",
    "STATE_TABLE": "iot-crr-state",
    "REPORT_LOCATION": "s3://reports-bucket/reports",
}


def test_minimal_environment_gives_the_defaults() -> None:
    config = run_config_from_env(GOOD)

    assert (config.source_region, config.destination_region) == ("us-east-1", "eu-west-1")
    assert config.state_table == "iot-crr-state"
    assert config.guards.max_changes == 1000
    assert config.guards.allow_deletes is False
    assert config.persist_state_machine_arn is None
    assert config.emit_via == "table"
    assert config.run_id is None
    assert config.list_shadows is False  # opt-in: per-thing calls
    assert config.retained_topics == ()  # opt-in: retained messages not listed
    assert config.shadows.everything  # every shadow, both sections
    assert config.partitions == {}  # every listing whole: a partition is the operator's word


def test_every_optional_variable_is_read() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:persist"
    env = {
        **GOOD,
        "PERSIST_STATE_MACHINE_ARN": arn,
        "MAX_CHANGES": "0",
        "ALLOW_DELETES": "True",
        "RUN_ID": "backfill-1",
        "AWS_REGION": "eu-central-1",
        "IGNORE_PATTERNS": "thing:test-*; thing:*:attributes.lastSeen",
        "POLICY_ACCOUNT_MAP": "111111111111=222222222222",
        "LIST_SHADOWS": "yes",
        "RETAINED_TOPICS": "config/*; status/dev-? ;",
        "SHADOW_INCLUDE": "config, ~classic",
        "SHADOW_EXCLUDE": "$*",
        "SHADOW_SECTIONS": "desired",
        "LIST_IN_PARTS": " thing=type ,",
    }

    config = run_config_from_env(env)

    assert config.persist_state_machine_arn == arn
    assert config.emit_via == "stepfunctions"
    assert config.guards.max_changes is None  # 0 means no cap, as on the CLI
    assert config.guards.allow_deletes is True
    assert config.run_id == "backfill-1"
    assert config.report_region == "eu-central-1"
    assert config.ignore.patterns == ("thing:test-*", "thing:*:attributes.lastSeen")
    assert config.policy_accounts == {"111111111111": "222222222222"}
    assert config.list_shadows is True
    assert config.retained_topics == ("config/*", "status/dev-?")
    assert config.shadows == ShadowSelection(("config", "~classic"), ("$*",), ("desired",))
    assert reconciler(config, lambda service, region: None, lambda: 0).shadows == config.shadows
    assert config.partitions == {EntityKind.THING: "type"}


def test_the_jobs_engine_diffs_policies_with_the_account_map() -> None:
    config = run_config_from_env({**GOOD, "POLICY_ACCOUNT_MAP": "111111111111=222222222222"})
    engine = reconciler(config, lambda service, region: None, lambda: 0)
    assert engine.policy_accounts == {"111111111111": "222222222222"}


def test_a_local_directory_is_a_report_location() -> None:
    assert run_config_from_env({**GOOD, "REPORT_LOCATION": "out/reports"}).report_location == (
        "out/reports"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SOURCE_REGION", ""),
        ("SOURCE_REGION", "US East"),
        ("TARGET_REGION", None),
        ("TARGET_REGION", "us-east-1"),  # same as the source
        ("STATE_TABLE", ""),
        ("REPORT_LOCATION", None),
        ("REPORT_LOCATION", "s3:///prefix"),
        ("REPORT_LOCATION", "gs://bucket/x"),
        ("PERSIST_STATE_MACHINE_ARN", "persist"),
        ("MAX_CHANGES", "-1"),
        ("MAX_CHANGES", "lots"),
        ("ALLOW_DELETES", "maybe"),
        ("LIST_SHADOWS", "sometimes"),
        ("SHADOW_INCLUDE", "things/*"),
        ("SHADOW_EXCLUDE", "a b/c"),
        ("SHADOW_SECTIONS", "metadata"),
        ("RUN_ID", "2026/01/01"),
        ("IGNORE_PATTERNS", "nonsense"),
        ("POLICY_ACCOUNT_MAP", "us-east-1=eu-west-1"),
        ("LIST_IN_PARTS", "thing=colour"),
        ("LIST_IN_PARTS", "thing_group=type"),
    ],
)
def test_each_bad_variable_is_named(variable: str, value: str | None) -> None:
    env = dict(GOOD)
    if value is None:
        env.pop(variable, None)
    else:
        env[variable] = value

    with pytest.raises(ConfigError) as caught:
        run_config_from_env(env)

    assert caught.value.variables == (variable,)
    assert variable in str(caught.value)


def test_all_bad_variables_are_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        run_config_from_env({"MAX_CHANGES": "x"})

    assert set(caught.value.variables) == {
        "SOURCE_REGION",
        "TARGET_REGION",
        "STATE_TABLE",
        "REPORT_LOCATION",
        "MAX_CHANGES",
    }


def test_main_exits_non_zero_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an environment without the job's variables
    for name in (*GOOD, "PERSIST_STATE_MACHINE_ARN", "MAX_CHANGES", "ALLOW_DELETES", "RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOURCE_REGION", "us-east-1")

    # WHEN the container entry point runs
    code = main([])

    # THEN it fails with exit code 2 and says which variable is missing
    assert code == 2
    assert "TARGET_REGION" in capsys.readouterr().err


def test_readiness_samples_twenty_devices_unless_told() -> None:
    assert run_config_from_env(GOOD).readiness_sample == 20
    config = run_config_from_env(
        {**GOOD, "READINESS_SAMPLE": "0", "READINESS_PUBLISH": "telemetry/{thing}; status"}
    )
    assert config.readiness_sample == 0
    assert config.readiness_publish == ("telemetry/{thing}", "status")


def test_bad_readiness_settings_are_named() -> None:
    env = {**GOOD, "READINESS_SAMPLE": "some", "READINESS_PUBLISH": ";".join("t" * 10)}
    with pytest.raises(ConfigError) as raised:
        run_config_from_env(env)
    assert set(raised.value.problems) == {"READINESS_SAMPLE", "READINESS_PUBLISH"}

"""The handlers' settings: a malformed variable is a one-line error naming it."""

from __future__ import annotations

import pytest

from pipeline.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("STATE_TABLE", "t")
    monkeypatch.delenv("POLICY_ACCOUNT_MAP", raising=False)


def test_no_account_map_maps_nothing() -> None:
    assert load_settings().policy_account_map == {}


def test_the_policy_account_map_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_ACCOUNT_MAP", "111111111111=222222222222")
    assert load_settings().policy_account_map == {"111111111111": "222222222222"}


@pytest.mark.parametrize(
    "value", ["111111111111", "1111=2222", "us-east-1=eu-west-1", "111111111111=eu-west-1"]
)
def test_a_bad_account_map_is_a_settings_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("POLICY_ACCOUNT_MAP", value)
    with pytest.raises(SettingsError, match=r"^POLICY_ACCOUNT_MAP=") as raised:
        load_settings()
    assert "\n" not in str(raised.value)

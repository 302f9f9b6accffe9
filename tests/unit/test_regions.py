"""Region names are checked against botocore's partitions before any call."""

from __future__ import annotations

import pytest

from reconcile.regions import UnknownRegionError, check_region, partitions


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_regions_of_every_partition_pass(region: str) -> None:
    assert check_region(region) == region


def test_a_typo_names_the_option_the_likely_region_and_the_partitions_regions() -> None:
    with pytest.raises(UnknownRegionError) as caught:
        check_region("eu-wst-1", "--target-region")

    message = str(caught.value)
    assert message.startswith("--target-region 'eu-wst-1' is not a region")
    assert "did you mean eu-west-1?" in message
    assert "(aws: " in message and "us-west-2" in message
    assert "\n" not in message


def test_the_list_is_botocores() -> None:
    assert "us-east-1" in partitions()["aws"]

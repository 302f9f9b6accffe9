"""Region names checked before any call: a typo is one line naming the partition's regions,
not a DNS error or (against an endpoint override) a silently empty registry.

The list is botocore's own (its ``endpoints`` data, one list per partition: aws, aws-cn,
aws-us-gov, ...), so it is as current as the installed botocore. Pure lookups, no I/O beyond
botocore's bundled data.
"""

from __future__ import annotations

import difflib
from functools import cache

import botocore.session


class UnknownRegionError(ValueError):
    """A region name no partition of the installed botocore knows."""


@cache
def partitions() -> dict[str, tuple[str, ...]]:
    """Partition name -> its region names, from botocore's endpoints data."""
    data = botocore.session.get_session().get_data("endpoints")
    return {p["partition"]: tuple(sorted(p["regions"])) for p in data["partitions"]}


def check_region(name: str, option: str = "region") -> str:
    """``name`` if some partition has it; else ``UnknownRegionError`` naming the closest
    partition's regions (and the likeliest meant one)."""
    known = partitions()
    if any(name in regions for regions in known.values()):
        return name
    everything = [region for regions in known.values() for region in regions]
    guess = difflib.get_close_matches(name, everything, n=1)
    partition = next((p for p, regions in known.items() if guess and guess[0] in regions), "aws")
    hint = f"; did you mean {guess[0]}?" if guess else ""
    raise UnknownRegionError(
        f"{option} {name!r} is not a region of botocore's partitions{hint} "
        f"({partition}: {', '.join(known[partition])})"
    )

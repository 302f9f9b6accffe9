"""What one refusal the emulation claims AWS makes is (``Refusal``), and the documentation roots
the claims' sources cite. The claims themselves: ``refusals.REFUSALS`` (the whole table, which
includes ``quota_refusals``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

API = "https://docs.aws.amazon.com/iot/latest/apireference/API_"
GUIDE = "https://docs.aws.amazon.com/iot/latest/developerguide/"


@dataclass(frozen=True)
class Refusal:
    operation: str
    code: str
    message: str  # a str.format template
    source: str
    message_seen: bool  # True: the exact text appears in a public report of AWS's answer
    by: Literal["emulation", "moto"] = "emulation"

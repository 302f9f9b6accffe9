"""What the README and the docs say, checked against what they describe (issue 22 item 15)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sandbox.provision import DEFAULT_TABLE_NAME
from tests.infra.infra_templates import all_templates

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def test_the_docs_name_the_state_table_as_the_stacks_and_the_sandbox_do() -> None:
    templates: dict[str, dict[str, Any]] = all_templates()
    defaults = {t["Parameters"]["StateTableName"]["Default"] for t in templates.values()}
    assert defaults == {DEFAULT_TABLE_NAME}
    named = re.compile(r"(?:--state-table|STATE_TABLE=|--table-name)\s*([A-Za-z0-9_.-]+)")
    for doc in DOCS:
        for found in named.findall(doc.read_text(encoding="utf-8")):
            if found != "NAME":  # a placeholder
                assert found == DEFAULT_TABLE_NAME, (doc.name, found)


def test_the_readme_counts_the_commands_it_lists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = re.search(
        r"^## Try it: (\w+) commands[^\n]*\n+```console\n(.*?)```", readme, re.M | re.S
    )
    assert heading is not None
    word, block = heading.groups()
    commands = [line for line in block.splitlines() if line.strip()]
    assert NUMBERS[word] == len(commands), commands

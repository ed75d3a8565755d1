"""docs/migrating-from-prefect.md: the counts at the top match the rows, and every
module path the page names as added exists."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-prefect.md"
STATUSES = {"as is": "Supported as is", "differently": "Supported differently"}
STATUSES["not supported"] = "Not supported"


def test_the_counts_match_the_rows() -> None:
    text = DOC.read_text()
    rows = Counter(
        cells[1].strip()
        for line in text.splitlines()
        if line.startswith("| ")
        and len(cells := line.split(" | ")) >= 2
        and cells[1].strip() in STATUSES
    )
    for status, heading in STATUSES.items():
        assert f"| {heading} | {rows[status]} |" in text, (heading, rows[status])
    assert f"| **Total** | **{sum(rows.values())}** |" in text


def test_the_added_modules_exist() -> None:
    text = DOC.read_text()
    added = text[text.index("## Names added for Prefect code") :]
    modules = set(re.findall(r"`(stratoflow(?:\.[a-z_]+)+)", added))
    for name in sorted(modules):
        parts = name.split(".")
        while parts:  # the longest importable prefix, then attributes
            try:
                module = importlib.import_module(".".join(parts))
                break
            except ModuleNotFoundError:
                parts.pop()
        rest = name.split(".")[len(parts) :]
        target: object = module
        for attribute in rest:
            target = getattr(target, attribute)

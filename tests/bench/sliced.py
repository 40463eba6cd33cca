"""A bench run as a user runs it, on the bundled sample's first months."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from sia.cli import app
from sia.cli.demo import DATASETS, load


def bench_on_sample(folder: Path, until: datetime, *args: str) -> dict[str, Any]:
    """`sia bench --events FILE ARGS --json` on the sample's events before `until`; its
    answer, with `sliced`: how many events it was given."""
    events = [e for e in load(DATASETS[0])[0] if e.occurred_at < until]
    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(e.model_dump(mode="json")) + "\n" for e in events))
    outcome = CliRunner().invoke(app, ["bench", "--events", str(path), *args, "--json"])
    assert outcome.exit_code == 0, outcome.output
    answer: dict[str, Any] = json.loads(outcome.output)
    answer["sliced"] = len(events)
    return answer

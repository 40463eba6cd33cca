"""`sia --help` a newcomer can follow: every command grouped, summarised in one line, and
every option and argument explained. The checks walk the whole command tree, so a new
command or option without help fails here."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sia.cli import app

PANELS = ["Start here", "Data", "Delivery", "Thresholds", "Service", "Scale-out (Kafka)",
          "Measure"]


def walk(command: Any, path: str = "sia") -> Iterator[tuple[str, Any]]:
    """Every command under `command` (typer's own click: duck-typed)."""
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}")


ROOT = typer.main.get_command(app)
COMMANDS = list(walk(ROOT))
IDS = [path for path, _ in COMMANDS]


def test_the_tree_is_walked() -> None:
    assert {"sia alerts", "sia snooze list", "sia mute lift", "sia thresholds show",
            "sia import csv", "sia worker"} <= set(IDS)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_and_argument_has_help(path: str, command: Any) -> None:
    missing = [p.name for p in command.params
               if not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"{path}: no help for {missing}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_says_what_it_does_in_one_line(path: str,
                                                      command: Any) -> None:
    text = inspect.cleandoc(command.help or "")
    assert text, f"{path} has no help"
    first = text.split("\n\n")[0]
    # typer lists commands with their first paragraph, keeping its line breaks: a
    # docstring wrapped by hand shows as ragged lines in `sia --help`
    assert "\n" not in first, f"{path}: the summary is wrapped by hand: {first!r}"
    assert len(first) <= 110, f"{path}: the summary is too long for one line: {first!r}"


def test_every_command_is_in_a_panel_in_the_newcomer_s_order() -> None:
    panels = {name: getattr(c, "rich_help_panel", None) for name, c in ROOT.commands.items()}
    assert not [n for n, p in panels.items() if p not in PANELS], panels
    order = [p for p in dict.fromkeys(panels[n] for n in ROOT.list_commands(None))]
    assert order == PANELS
    assert [n for n, p in panels.items() if p == "Start here"][:4] == [
        "demo", "replay", "alerts", "detectors"]
    result = CliRunner().invoke(app, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    shown = [line for line in result.output.splitlines() if line.startswith("╭─ ")]
    assert [s.strip("╭─ ╮").split(" ─")[0] for s in shown][1:] == PANELS  # after Options


def test_version_is_the_installed_distribution_s() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"sia {version('sia')}\n"


def test_version_falls_back_to_the_package_when_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    import sia

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(sia, "__version__", "9.8.7", raising=False)
    result = CliRunner().invoke(app, ["--version"])
    assert result.output == "sia 9.8.7\n"

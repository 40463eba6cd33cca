"""`sia thresholds`: against a data folder no server runs on, and against a running
server (the same answers as /v1/thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

from api.conftest import serving  # type: ignore[import-not-found]
from api.test_live import post_all  # type: ignore[import-not-found]
from typer.testing import CliRunner

from sia.cli import app
from sia.cli.demo import DATASETS, load

runner = CliRunner()


def sia(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_data_folder_s_thresholds_change_with_a_reason_and_roll_back(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, text = sia("thresholds", "apply", "--set", "drift.lost_probability=0.9",
                     "--team", "UK", "--reason", "UK too noisy", "--data-dir", data, "--json")
    assert code == 0, text
    answer = json.loads(text)
    assert answer["version"] == 2 and answer["recorded"]["diff"][0]["after"] == 0.9
    code, text = sia("thresholds", "show", "--team", "UK", "--data-dir", data, "--json")
    lost = json.loads(text)["detectors"]["drift"]["thresholds"]["lost_probability"]
    assert (lost["value"], lost["source"]) == (0.9, "team UK")
    code, text = sia("thresholds", "apply", "--set", "drift.lost_probabilty=0.9",
                     "--reason", "typo", "--data-dir", data)
    assert code == 2 and "lost_probabilty: unknown key" in text.replace("\n", " ")
    assert sia("thresholds", "rollback", "1", "--reason", "back", "--data-dir", data)[0] == 0
    code, text = sia("thresholds", "history", "--data-dir", data, "--json")
    assert [v["kind"] for v in json.loads(text)] == ["rollback", "apply", "initial"]


def test_the_cli_talks_to_a_running_server(tmp_path: Path) -> None:
    events = [e.model_dump(mode="json") for e in load(DATASETS[0])[0]]
    with serving(tmp_path / "data") as server:
        post_all(server, events)
        server.wait_learned()
        common = ["--url", server.url, "--key", server.keys["manager_uk"]]
        code, text = sia("thresholds", "preview", "--set", "drift.lost_probability=0.9",
                         "--team", "UK", *common, "--json")
        assert code == 0, text
        preview = json.loads(text)
        assert preview["removed"]["count"] > 0
        assert preview["before"]["precision"]["horizon_days"] == 90
        code, text = sia("thresholds", "preview", "--set", "drift.lost_probability=0.9",
                         "--team", "UK", "--horizon", "8w", *common)
        assert code == 0, text
        assert "precision (56-day outcomes known)" in text and "  drift: " in text, text
        code, text = sia("thresholds", "apply", "--set", "drift.lost_probability=0.9",
                         "--team", "UK", "--reason", "as previewed", *common)
        assert code == 0 and "thresholds version 2" in text, text
        assert server.runtime.thresholds.current().version == 2
        code, text = sia("thresholds", "apply", "--set", "drift.lost_probability=0.9",
                         "--team", "US", "--reason", "not mine", *common)
        assert code == 2 and "403" in text
        code, text = sia("thresholds", "show", "--data-dir", str(tmp_path / "data"))
        assert code == 2 and "in use" in text.replace("\n", " ")  # the server holds it


def test_a_rep_s_own_raise_and_mute_in_a_data_folder(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, text = sia("thresholds", "apply", "--rep", "R1", "--set", "drift.lost_probability=0.9",
                     "--mute", "trend", "--reason", "my own", "--data-dir", data, "--json")
    assert code == 0, text
    assert {(e["key"], e["scope"], e["name"], e["after"])
            for e in json.loads(text)["recorded"]["diff"]} == {
        ("lost_probability", "rep", "R1", 0.9), ("muted", "rep", "R1", True)}
    code, text = sia("thresholds", "show", "--rep", "R1", "--data-dir", data, "--json")
    shown = json.loads(text)["detectors"]
    lost = shown["drift"]["thresholds"]["lost_probability"]
    assert (lost["value"], lost["source"]) == (0.9, "rep R1") and shown["trend"]["muted"]
    code, text = sia("thresholds", "apply", "--rep", "R1", "--set", "drift.gap_alpha=0.5",
                     "--reason", "no", "--data-dir", data)
    assert code == 2 and "a learning parameter" in text.replace("\n", " ")
    code, text = sia("thresholds", "apply", "--rep", "R1", "--unmute", "trend",
                     "--reason", "back", "--data-dir", data)
    assert code == 0 and "trend.muted True -> False" in text, text
    code, text = sia("thresholds", "apply", "--rep", "R1", "--set", "drift.lost_probability=null",
                     "--reason", "the team's is fine", "--data-dir", data)
    assert code == 0 and "drift.lost_probability 0.9 -> None" in text, text


def test_a_rep_key_tunes_its_own_through_the_server(tmp_path: Path) -> None:
    with serving(tmp_path / "data") as server:
        common = ["--url", server.url, "--key", server.keys["rep"]]
        code, text = sia("thresholds", "apply", "--set", "drift.lost_probability=0.9",
                         "--reason", "mine", *common)
        assert code == 0 and "thresholds version 2" in text, text
        code, text = sia("thresholds", "apply", "--set", "drift.lost_probability=0.9",
                         "--rep", "R2", "--reason", "not mine", *common)
        assert code == 2 and "403" in text
        code, text = sia("thresholds", "show", *common)
        assert code == 0 and "rep R1" in text and "lost_probability = 0.9 (rep R1)" in text

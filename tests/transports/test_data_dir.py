"""Where a worker's Faust app keeps its data folder (SIA_KAFKA_DATA_DIR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sia.alerts.store import AlertStore
from sia.policy import PolicyConfig
from sia.settings import Settings
from sia.transports.kafka.app import SiaApp


def _app(**values: Any) -> SiaApp:
    return SiaApp(Settings(_env_file=None, kafka_app_id="shop", **values),  # type: ignore[call-arg]
                  list, PolicyConfig(), store=AlertStore("sqlite://"), redis=None)


def test_the_data_folder_goes_inside_the_setting_one_folder_per_app_id(tmp_path: Path
                                                                         ) -> None:
    sia = _app(kafka_data_dir=str(tmp_path))
    assert Path(sia.app.conf.datadir) == tmp_path / "shop-data"


def test_unset_it_is_fausts_default_in_the_working_directory() -> None:
    sia = _app(kafka_data_dir=None)
    assert Path(sia.app.conf.datadir) == Path("shop-data")


def test_the_tests_keep_faust_folders_out_of_the_checkout() -> None:
    # tests/conftest.py points every Faust app of the test run (workers included) at a
    # temporary folder, so no "<app id>-data" folder is left in the working directory
    assert Settings().kafka_data_dir and not Path(Settings().kafka_data_dir).is_relative_to(
        Path.cwd())

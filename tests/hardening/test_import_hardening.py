"""Import and replay hardening (issue 18, "Silent fallbacks in configuration"): rows an
import cannot convert are kept with their line and reason, an import of nothing fails,
and a truncated `.gz` loses only what is past the cut."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sia.alerts.store import AlertStore
from sia.cli import app
from sia.cli.demo import sample_path
from sia.events.reader import Reject, read_events

MAPPING = """\
group_by: Invoice
type: order
fields:
  event_id: {template: "crm-{Invoice}"}
  occurred_at: {column: Date, format: "%Y-%m-%d %H:%M", timezone: Europe/London}
  customer_id: Customer
  order_id: Invoice
  currency: {value: GBP}
lines:
  product_id: Sku
  quantity: Qty
  unit_price: Price
"""
HEADER = "Invoice,Date,Customer,Sku,Qty,Price"


def sia(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def export(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    csv_path, mapping = tmp_path / "export.csv", tmp_path / "mapping.yaml"
    csv_path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    mapping.write_text(MAPPING, encoding="utf-8")
    return csv_path, mapping


def rejects_in(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_import_where_every_row_fails_exits_non_zero_and_keeps_every_row(
        tmp_path: Path) -> None:
    rows = [f"10{i},2024-03-0{i} 10:00,C{i},SKU{i},many,1.50" for i in range(1, 6)]
    csv_path, mapping = export(tmp_path, rows)
    kept = tmp_path / "rejects.jsonl"
    code, text = sia("import", "csv", str(csv_path), "--mapping", str(mapping),
                     "-o", str(tmp_path / "out.jsonl"), "--rejects", str(kept))
    # before: exit 0, "wrote out.jsonl" (empty), and no rejects file
    assert code == 1 and "nothing imported" in text
    rejected = rejects_in(kept)
    assert [r["line"] for r in rejected] == [2, 3, 4, 5, 6]
    assert all(r["source"] == str(csv_path) and "quantity" in str(r["reason"])
               for r in rejected)
    assert rejected[0]["raw"] == rows[0]  # the row as it was, to fix and import again


def test_an_import_keeps_the_rows_it_could_not_convert_and_imports_the_rest(
        tmp_path: Path) -> None:
    rows = ["1001,2024-03-01 10:00,C1,SKU1,2,1.50",
            "1002,2024-03-01 11:00,C2,SKU2,two,1.50",  # not a number
            "1003,2024-03-01 12:00,C3,SKU3,1",  # a field short
            "1004,2024-03-01 13:00,C4,SKU4,1,2.00"]
    csv_path, mapping = export(tmp_path, rows)
    kept = tmp_path / "rejects.jsonl"
    code, text = sia("import", "csv", str(csv_path), "--mapping", str(mapping),
                     "-o", str(tmp_path / "out.jsonl"), "--rejects", str(kept))
    assert code == 0, text
    assert "2 rows could not be converted" in text.replace("\n", " ")
    rejected = rejects_in(kept)
    assert [(r["line"], r["raw"]) for r in rejected] == [(3, rows[1]), (4, rows[2])]
    assert "5 fields, the header has 6" in str(rejected[1]["reason"])
    written = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["event_id"] for line in written] == ["crm-1001", "crm-1004"]


def test_an_import_without_a_single_data_row_exits_non_zero(tmp_path: Path) -> None:
    csv_path, mapping = export(tmp_path, [])
    code, text = sia("import", "csv", str(csv_path), "--mapping", str(mapping),
                     "-o", str(tmp_path / "out.jsonl"), "--rejects",
                     str(tmp_path / "rejects.jsonl"))
    assert code == 1 and "nothing imported" in text


# --- a truncated .gz -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cut_events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The bundled sample as events, gzipped, cut at 70% of its bytes; and how many
    complete lines it still holds."""
    folder = tmp_path_factory.mktemp("cut")
    whole = folder / "events.jsonl.gz"
    code, text = sia("import", "online-retail", str(sample_path()), "-o", str(whole))
    assert code == 0, text
    data = whole.read_bytes()
    cut = folder / "cut.jsonl.gz"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    readable = 0
    with gzip.open(cut, "rt", encoding="utf-8") as handle:
        try:
            for _ in handle:
                readable += 1
        except EOFError:
            pass
    return cut, readable


def test_a_truncated_gz_yields_every_good_record_then_says_where_it_ends(
        cut_events: tuple[Path, int]) -> None:
    cut, readable = cut_events
    records = list(read_events(cut))  # before: EOFError out of the iteration
    *good, last = records
    assert len(good) == readable and not any(isinstance(r, Reject) for r in good)
    assert isinstance(last, Reject) and last.source == str(cut)
    assert last.line == readable + 1 and last.reason.startswith("file ends early")
    assert "EOFError" in last.reason


def test_a_replay_of_a_truncated_gz_stores_the_alerts_of_the_events_before_the_cut(
        cut_events: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cut, readable = cut_events
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "a.db"
    code, text = sia("replay", str(cut), "--db", str(db))
    # before: "Aborted." (EOFError), and none of the alerts stored; after: what came
    # before the cut is stored, and the exit code says the file was not read to its end
    flat = text.replace("\n", " ")
    assert code == 1, text
    assert f"{cut}:{readable + 1}" in flat and "file ends early" in flat
    store = AlertStore(f"sqlite:///{db}")
    try:
        assert store.count() > 0
    finally:
        store.close()
    (kept,) = [json.loads(line) for line in
               (tmp_path / "sia-rejects.jsonl").read_text().splitlines()]
    assert kept["line"] == readable + 1

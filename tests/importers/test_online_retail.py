"""The dedicated UCI Online Retail importer, on a small handwritten CSV."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from sia.events import parse_event
from sia.importers.online_retail import MANAGERS, TEAMS, ImportReport, convert, owner_rep

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = """\
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom
536365,84406b,CREAM CUPID HEARTS COAT HANGER,8,2010-12-01 08:26:00,2.75,17850,United Kingdom
536370,22728,ALARM CLOCK BAKELIKE PINK,24,2011-06-01 08:45:00,3.75,12583.0,France
536371,22086,PAPER CHAIN KIT 50'S CHRISTMAS,80,2010-12-01 09:00:00,2.55,,United Kingdom
536372,22632,HAND WARMER RED POLKA DOT,-6,2010-12-01 09:01:00,1.85,17850,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527,United Kingdom
C536380,22556,PLASTERS IN TIN CIRCUS PARADE,12,2010-12-01 09:42:00,1.65,14527,United Kingdom
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,14527,United Kingdom
536381,22139,RETROSPOT TEA SET CERAMIC,1,2010-12-01 09:45:00,-4.95,12345,Japan
536382,22139,RETROSPOT TEA SET CERAMIC,many,2010-12-01 09:46:00,4.95,12345,Japan
536383,22139,RETROSPOT TEA SET CERAMIC,2,12/01/2010 09:47,4.95,12345,Japan
536384,21754,HOME BUILDING BLOCK WORD,0,2010-12-01 09:48:00,5.95,12345,Japan
"""
TRANSACTIONS = ("order", "return")


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "online_retail.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    return path


def run(path: Path, **kwargs: Any) -> tuple[list[dict[str, Any]], ImportReport]:
    report = ImportReport()
    return list(convert(path, report, **kwargs)), report


def by_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_invoice_lines_are_grouped_into_one_order(csv_path: Path) -> None:
    events, _ = run(csv_path)
    (order,) = [e for e in events if e.get("order_id") == "536365"]
    assert order == {
        "type": "order", "event_id": "online-retail-536365",
        "occurred_at": "2010-12-01T08:26:00+00:00", "customer_id": "17850",
        "rep_id": owner_rep("17850", "United Kingdom"), "order_id": "536365",
        "currency": "GBP",
        "lines": [{"product_id": "85123A", "quantity": 6.0, "unit_price": 2.55},
                  {"product_id": "71053", "quantity": 6.0, "unit_price": 3.39},
                  {"product_id": "84406B", "quantity": 8.0, "unit_price": 2.75}],
    }


def test_c_invoices_are_returns_with_positive_quantities(csv_path: Path) -> None:
    events, report = run(csv_path)
    (ret,) = by_type(events, "return")
    assert ret["order_id"] == "C536379"
    assert ret["lines"] == [{"product_id": "D", "quantity": 1.0, "unit_price": 27.5}]
    assert report.returns == 1


def test_london_local_time_gets_the_right_offset_and_other_date_formats_read(
        csv_path: Path) -> None:
    events, _ = run(csv_path)
    when = {e["order_id"]: e["occurred_at"] for e in events if e["type"] in TRANSACTIONS}
    assert when["536370"] == "2011-06-01T08:45:00+01:00"  # British Summer Time
    assert when["536383"] == "2010-12-01T09:47:00+00:00"  # US-style date


def test_skipped_rows_are_counted_with_reasons(csv_path: Path) -> None:
    events, report = run(csv_path)
    skipped = dict(report.skipped)
    unreadable = [k for k in skipped if k.startswith("unreadable row")]
    assert skipped == {
        "no CustomerID (guest checkout)": 1,
        "stock correction (quantity sign does not match invoice)": 3,
        "invoice kind 'A' is not a sale or return": 1,
        "negative unit price": 1,
        unreadable[0]: 1,
    }
    assert "many" in unreadable[0]
    assert report.rows == ROWS.count("\n")
    converted = sum(len(e["lines"]) for e in events if e["type"] in TRANSACTIONS)
    assert converted + sum(skipped.values()) == report.rows  # nothing dropped silently


def test_customer_ids_exported_as_floats_are_normalised(csv_path: Path) -> None:
    events, _ = run(csv_path)
    assert {e["customer_id"] for e in by_type(events, "customer")} == {"17850", "12583",
                                                                        "14527", "12345"}


def test_reference_events_come_first_then_transactions_by_time(csv_path: Path) -> None:
    events, _ = run(csv_path)
    kinds = [e["type"] for e in events]
    first_transaction = min(kinds.index(k) for k in TRANSACTIONS)
    assert set(kinds[:first_transaction]) == {"rep", "customer", "product"}
    assert set(kinds[first_transaction:]) <= set(TRANSACTIONS)
    # reps, then customers, then products, each sorted by id
    reference = kinds[:first_transaction]
    assert reference == sorted(reference, key=["rep", "customer", "product"].index)
    for kind, key in (("customer", "customer_id"), ("product", "product_id")):
        ids = [e[key] for e in by_type(events, kind)]
        assert ids == sorted(ids)
    times = [parse_event(e).occurred_at for e in events[first_transaction:]]
    assert times == sorted(times)
    # reference data is dated at the first transaction, so it is known before any order
    start = min(times)
    assert {parse_event(e).occurred_at for e in events[:first_transaction]} == {start}


def test_rep_and_segment_enrichment_is_deterministic(csv_path: Path) -> None:
    events, _ = run(csv_path)
    again, _ = run(csv_path)
    assert events == again

    reps = {e["rep_id"]: e for e in by_type(events, "rep")}
    assert len(reps) == sum(len(r) for r in TEAMS.values()) + len(MANAGERS)
    customers = {e["customer_id"]: e for e in by_type(events, "customer")}
    assert customers["17850"]["segment"] == "domestic"
    assert customers["12583"]["segment"] == "export"
    assert customers["12583"]["region"] == "France"
    # CRC-32, not Python's salted hash(): the same owner on every machine and run.
    assert customers["17850"]["owner_rep_id"] == "rep-hannah-lewis"
    assert customers["12583"]["owner_rep_id"] == "rep-sofia-rossi"
    assert customers["12345"]["owner_rep_id"] == "rep-daniel-kim"
    teams = {"United Kingdom": "UK", "France": "Europe", "Japan": "International"}
    for customer in customers.values():
        owner = reps[customer["owner_rep_id"]]
        assert owner["team"] == teams[customer["region"]]
        assert owner.get("manager_id") in reps  # owners are reps, not managers
    for order in events:
        if order["type"] in TRANSACTIONS:
            assert order["rep_id"] == customers[order["customer_id"]]["owner_rep_id"]


def test_products_are_named_by_their_most_common_description(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(HEADER + "1,P1,MUG RED,1,2011-01-01 10:00:00,1,1,United Kingdom\n"
                    "2,P1,RED MUG,1,2011-01-02 10:00:00,1,1,United Kingdom\n"
                    "3,P1,RED MUG,1,2011-01-03 10:00:00,1,1,United Kingdom\n", encoding="utf-8")
    events, _ = run(path)
    (product,) = by_type(events, "product")
    assert product["name"] == "RED MUG"


def test_report_counts_match_the_output(csv_path: Path) -> None:
    events, report = run(csv_path)
    assert report.events == len(events)
    assert report.orders == len(by_type(events, "order")) == 3
    assert report.returns == len(by_type(events, "return"))
    assert report.customers == len(by_type(events, "customer"))
    assert report.products == len(by_type(events, "product"))
    assert report.lines()[0].startswith(f"read {report.rows:,} rows; wrote {len(events):,}")


def test_all_output_validates(csv_path: Path) -> None:
    events, _ = run(csv_path)
    assert events
    for event in events:
        assert parse_event(event).type == event["type"]


def test_customer_selection_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "online_retail.csv.gz"
    path.write_bytes(gzip.compress((HEADER + ROWS).encode()))
    events, report = run(path, customers={"12583"})
    assert [e["order_id"] for e in events if e["type"] in TRANSACTIONS] == ["536370"]
    assert report.skipped["customer not in the selected sample"] > 0


def test_empty_file_gives_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(HEADER, encoding="utf-8")
    assert run(path) == ([], ImportReport())


def test_row_missing_trailing_country_cell_is_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(HEADER + "536365,85123A,X,6,2010-12-01 08:26:00,2.55,17850\n",
                    encoding="utf-8")
    events, _ = run(path)
    assert all(parse_event(e) for e in events)


def test_row_without_stock_code_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "nostock.csv"
    path.write_text(HEADER + "536365,,X,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n",
                    encoding="utf-8")
    events, _ = run(path)
    for event in events:
        parse_event(event)

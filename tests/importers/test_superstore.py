"""The Superstore importer, on small handwritten CSVs (money computed by hand in comments)."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import sia
from sia.events import parse_event
from sia.importers.superstore import ImportReport, convert

HEADER = ("Row ID,Order ID,Order Date,Ship Date,Ship Mode,Customer ID,Customer Name,Segment,"
          "Country/Region,City,State/Province,Postal Code,Region,Product ID,Category,"
          "Sub-Category,Product Name,Sales,Quantity,Discount,Profit\n")
ANN_WEST = "AA-1,Ann Able,Consumer,United States,Seattle,Washington,98103,West"
ANN_EAST = "AA-1,Ann Able,Consumer,United States,Boston,Massachusetts,02108,East"
BOB = "BB-2,Bob Brown,Corporate,United States,Portland,Oregon,97201,West"
NOBODY = ",Nobody,Consumer,United States,Portland,Oregon,97201,West"
CARL1 = "CC-1,Carl Cole,Home Office,Canada,Toronto,Ontario,M5V,East"
CARL2 = "CC-2,Carl Cole,Home Office,Canada,Toronto,Ontario,M5V,East"
PAPER = "P-1,Office Supplies,Paper,Paper A"
PAPER_ALT = "P-1,Office Supplies,Paper,Paper Alt"
CHAIR = "P-2,Furniture,Chairs,Chair B"
PHONE = "P-3,Technology,Phones,Phone C"
TABLE = [  # Order ID, Order Date, Ship Date, customer, product, "Sales,Quantity,Discount,Profit"
    ("O-1", "2021-03-10", "2021-03-14", ANN_WEST, PAPER, "16.448,2,0.2,5.5512"),
    ("O-1", "2021-03-10", "2021-03-14", ANN_WEST, CHAIR, "300,3,0.5,-60"),
    ("O-2", "2021-01-05", "2021-01-08", ANN_EAST, PAPER, "20,2,0.0,8"),
    ("O-3", "2021-07-01", "2021-07-03", ANN_EAST, PHONE, "0,1,1.0,-5"),
    ("O-4", "2021-02-01", "2021-02-02", BOB, PAPER_ALT, "12,1,0.0,2"),
    ("O-4", "2021-02-01", "2021-02-02", BOB, CHAIR, "12,x,0.0,2"),  # unreadable
    ("O-5", "2021-02-03", "2021-02-04", NOBODY, PAPER, "12,1,0.0,2"),  # no Customer ID
    ("O-6", "2021-02-03", "2021-02-04", BOB, PAPER, "12,0,0.0,2"),  # quantity 0
    ("O-7", "2021-04-01", "2021-04-03", CARL1, CHAIR, "100,1,0.0,10"),  # one order id,
    ("O-7", "2021-04-01", "2021-04-03", CARL2, CHAIR, "180,2,0.1,0"),  # two customer ids
]
ROWS = "".join(f"{n},{order},{ordered},{shipped},Standard Class,{who},{what},{money}\n"
               for n, (order, ordered, shipped, who, what, money) in enumerate(TABLE, 1))
PEOPLE = "Regional Manager,Region\nSadie Pawthorne,West\nChuck Magee,East\n"
RETURNS = "Returned,Order ID\nYes,O-1\nYes,O-1\nYes,O-99\nYes,O-7\n"
SADIE, CHUCK = "rep-sadie-pawthorne", "rep-chuck-magee"


def write(folder: Path, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(folder / "superstore_orders.csv.gz", "wt", encoding="utf-8") as handle:
            handle.write(HEADER + ROWS)
    else:
        (folder / "superstore_orders.csv").write_text(HEADER + ROWS, encoding="utf-8")
    (folder / "superstore_people.csv").write_text(PEOPLE, encoding="utf-8")
    (folder / "superstore_returns.csv").write_text(RETURNS, encoding="utf-8")
    return folder


def run(folder: Path) -> tuple[list[dict[str, Any]], ImportReport]:
    report = ImportReport()
    events = list(convert(folder, report))
    for event in events:
        parse_event(event)
    return events, report


@pytest.fixture
def imported(tmp_path: Path) -> tuple[list[dict[str, Any]], ImportReport]:
    return run(write(tmp_path / "superstore"))


def of_type(events: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    key = {"rep": "rep_id", "customer": "customer_id", "product": "product_id"}.get(
        kind, "order_id")
    return {e[key]: e for e in events if e["type"] == kind}


def test_rows_of_an_order_are_grouped_with_hand_computed_money(imported: Any) -> None:
    events, _ = imported
    order = of_type(events, "order")["O-1"]
    assert order == {
        "type": "order", "event_id": "superstore-O-1",
        "occurred_at": "2021-03-10T12:00:00-05:00",  # noon, Eastern Standard Time
        "customer_id": "AA-1", "rep_id": SADIE, "order_id": "O-1", "currency": "USD",
        "lines": [
            # 16.448 / 2 = 8.224; 8.224 / (1 - 0.2) = 10.28; (16.448 - 5.5512) / 2 = 5.4484
            {"product_id": "P-1", "quantity": 2.0, "unit_price": 8.224, "list_price": 10.28,
             "unit_cost": 5.4484, "category": "Paper"},
            # 300 / 3 = 100; 100 / 0.5 = 200; (300 - -60) / 3 = 120 > 100: a loss-making line
            {"product_id": "P-2", "quantity": 3.0, "unit_price": 100.0, "list_price": 200.0,
             "unit_cost": 120.0, "category": "Chairs"},
        ],
    }


@pytest.mark.parametrize(("order_id", "when", "rep", "line"), [
    # 20 / 2 = 10, no discount: list 10; (20 - 8) / 2 = 6
    ("O-2", "2021-01-05T12:00:00-05:00", CHUCK,
     {"product_id": "P-1", "quantity": 2.0, "unit_price": 10.0, "list_price": 10.0,
      "unit_cost": 6.0, "category": "Paper"}),
    # Discount 1 (100%): no list price; (0 - -5) / 1 = 5; summer time offset
    ("O-3", "2021-07-01T12:00:00-04:00", CHUCK,
     {"product_id": "P-3", "quantity": 1.0, "unit_price": 0.0, "unit_cost": 5.0,
      "category": "Phones"}),
    # the unreadable second row of O-4 is dropped, the order keeps its good line
    ("O-4", "2021-02-01T12:00:00-05:00", SADIE,
     {"product_id": "P-1", "quantity": 1.0, "unit_price": 12.0, "list_price": 12.0,
      "unit_cost": 10.0, "category": "Paper"}),
])
def test_single_line_orders(imported: Any, order_id: str, when: str, rep: str,
                            line: dict[str, Any]) -> None:
    events, _ = imported
    order = of_type(events, "order")[order_id]
    assert (order["occurred_at"], order["rep_id"], order["lines"]) == (when, rep, [line])


def test_an_order_id_shared_by_two_customers_is_split(imported: Any) -> None:
    events, _ = imported
    orders = of_type(events, "order")
    first, second = orders["O-7/CC-1"], orders["O-7/CC-2"]
    assert (first["customer_id"], first["event_id"]) == ("CC-1", "superstore-O-7/CC-1")
    # 180 / 2 = 90; 90 / 0.9 = 100; (180 - 0) / 2 = 90
    assert second["lines"] == [{"product_id": "P-2", "quantity": 2.0, "unit_price": 90.0,
                                "list_price": 100.0, "unit_cost": 90.0,
                                "category": "Chairs"}]
    assert "O-7" not in orders


def test_returns_are_the_whole_order_a_week_after_shipping(imported: Any) -> None:
    events, report = imported
    returns = [e for e in events if e["type"] == "return"]
    assert [r["order_id"] for r in returns] == ["O-1", "O-7/CC-1", "O-7/CC-2"]
    o1 = returns[0]
    # shipped 2021-03-14 + 7 days = 2021-03-21, after the switch to summer time
    assert o1["occurred_at"] == "2021-03-21T12:00:00-04:00"
    assert o1["event_id"] == "superstore-return-O-1"
    assert o1["lines"] == of_type(events, "order")["O-1"]["lines"]
    assert (o1["customer_id"], o1["rep_id"]) == ("AA-1", SADIE)
    assert returns[1]["occurred_at"] == "2021-04-10T12:00:00-04:00"  # 04-03 + 7
    assert report.returns == 3


def test_reference_data_first_then_by_time(imported: Any) -> None:
    events, _ = imported
    kinds = [e["type"] for e in events]
    assert kinds == ["rep"] * 2 + ["customer"] * 4 + ["product"] * 3 + [
        "order", "order", "order", "return", "order", "order", "return", "return", "order"]
    first = "2021-01-05T12:00:00-05:00"  # O-2, the earliest order
    assert {e["occurred_at"] for e in events if e["type"] in ("rep", "customer", "product")} \
        == {first}
    transactions = [e["order_id"] for e in events if e["type"] in ("order", "return")]
    assert transactions == ["O-2", "O-4", "O-1", "O-1", "O-7/CC-1", "O-7/CC-2", "O-7/CC-1",
                            "O-7/CC-2", "O-3"]


def test_reps_are_the_regional_managers(imported: Any) -> None:
    events, _ = imported
    assert of_type(events, "rep")[SADIE] == {
        "type": "rep", "event_id": "superstore-rep-sadie-pawthorne", "occurred_at":
        "2021-01-05T12:00:00-05:00", "rep_id": SADIE, "name": "Sadie Pawthorne",
        "team": "West", "email": "sadie-pawthorne@example.com",
        "timezone": "America/New_York"}


@pytest.mark.parametrize(("customer", "segment", "region", "owner", "city", "state"), [
    # AA-1: West 2 rows, East 2 rows: a tie, so the region seen first (West);
    # the first order by date is O-2 (Boston), although it is the third row
    ("AA-1", "Consumer", "West", SADIE, "Boston", "Massachusetts"),
    ("BB-2", "Corporate", "West", SADIE, "Portland", "Oregon"),
    ("CC-1", "Home Office", "East", CHUCK, "Toronto", "Ontario"),
])
def test_customers_and_owner_reps(imported: Any, customer: str, segment: str, region: str,
                                  owner: str, city: str, state: str) -> None:
    events, _ = imported
    record = of_type(events, "customer")[customer]
    assert (record["segment"], record["region"], record["owner_rep_id"]) == (
        segment, region, owner)
    assert record["attributes"] == {"city": city, "state": state}


def test_the_most_frequent_region_wins(tmp_path: Path) -> None:
    folder = write(tmp_path / "s")
    extra = f"11,O-8,2021-08-01,2021-08-02,Standard Class,{ANN_EAST},{PAPER},10,1,0,1\n"
    (folder / "superstore_orders.csv").write_text(HEADER + ROWS + extra, encoding="utf-8")
    events, _ = run(folder)
    record = of_type(events, "customer")["AA-1"]
    assert (record["region"], record["owner_rep_id"]) == ("East", CHUCK)  # East 3, West 2


def test_products_take_the_median_of_what_was_seen(imported: Any) -> None:
    events, report = imported
    products = of_type(events, "product")
    # P-1 list prices 10.28, 10, 12 -> median 10.28; unit costs 5.4484, 6, 10 -> 6;
    # named "Paper A" twice, "Paper Alt" once
    assert products["P-1"] == {
        "type": "product", "event_id": "superstore-product-P-1",
        "occurred_at": "2021-01-05T12:00:00-05:00", "product_id": "P-1", "name": "Paper A",
        "category": "Office Supplies", "list_price": 10.28, "unit_cost": 6.0}
    # P-2 list prices 200, 100, 100 -> 100; costs 120, 90, 90 -> 90
    assert (products["P-2"]["list_price"], products["P-2"]["unit_cost"]) == (100.0, 90.0)
    # P-3 was only sold at 100% discount: no list price; cost 5
    assert "list_price" not in products["P-3"] and products["P-3"]["unit_cost"] == 5.0
    assert (report.customers, report.products) == (4, 3)


def test_skipped_and_odd_rows_are_counted_with_reasons(imported: Any) -> None:
    events, report = imported
    assert dict(report.skipped) == {
        "unreadable Sales, Quantity, Discount or Profit": 1,
        "missing Order ID, Customer ID or Product ID": 1,
        "Quantity not positive": 1,
        "returns file: repeated row of an order already returned": 1,
        "returns file: Order ID not among the imported orders": 1,
    }
    assert dict(report.kept) == {
        "no list_price (Discount is 100% or outside [0, 1))": 1,
        "Order ID shared by several Customer IDs (split per customer)": 2,
    }
    assert report.rows == 10 + 4
    assert (report.orders, report.events) == (6, len(events)) == (6, 18)


def test_gzipped_orders_give_the_same_events(tmp_path: Path) -> None:
    plain, _ = run(write(tmp_path / "plain"))
    zipped, _ = run(write(tmp_path / "zipped", gz=True))
    assert plain == zipped


def test_the_bundled_sample_imports_and_validates() -> None:
    folder = Path(sia.__file__).parent / "data" / "superstore"
    events, report = run(folder)
    assert report.orders > 1000 and report.returns > 50 and report.customers > 200
    assert len({e["event_id"] for e in events}) == len(events)
    reference = [e["type"] in ("rep", "customer", "product") for e in events]
    assert reference == sorted(reference, reverse=True)
    assert [e["type"] for e in events[:4]] == ["rep"] * 4
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 400_000

"""The CRM Sales Opportunities importer, on small handwritten CSVs."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import sia
from sia.events import parse_event
from sia.importers.crm_opportunities import ImportReport, convert, product_key, slug

PRODUCTS = """\
product,series,sales_price
GTX Basic,GTX,550
GTX Pro,GTX,4821
MG Special,MG,55
MG Advanced,MG,3393
GTX Plus Pro,GTX,5482
GTX Plus Basic,GTX,1096
GTK 500,GTK,26768
ZZ One,ZZ,10
ZZ Two,ZZ,20
ZZ Three,ZZ,20
"""
TEAMS = """\
sales_agent,manager,regional_office
Moses Frase,Dustin Brinkmann,Central
Anna Snelling,Dustin Brinkmann,Central
Violet Mclelland,Cara Losch,East
"""
ACCOUNTS = """\
account,sector,year_established,revenue,employees,office_location,subsidiary_of
Acme Corporation,technolgy,1996,1100.04,2822,United States,
Gekko & Co,retail,1990,2520.83,2210,United States,Acme Corporation
Quiet Co,medical,2000,10,5,Philipines,
"""
PIPELINE = """\
opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
W1,Moses Frase,GTXPro,Acme Corporation,Won,2016-10-20,2017-03-01,4514
L1,Anna Snelling,MG Special,Acme Corporation,Lost,2016-10-25,2017-01-10,0
E1,Anna Snelling,GTX Basic,Gekko & Co,Engaging,2017-06-01,,
N1,Violet Mclelland,GTX Basic,,Engaging,2017-06-02,,
N2,Violet Mclelland,GTX Basic,,Prospecting,,,
P1,Moses Frase,GTX Basic,Gekko & Co,Prospecting,,,
W2,Moses Frase,GTK 500,Gekko & Co,Won,2017-02-01,2017-07-04,25000
"""
MOSES, ANNA = "rep-moses-frase", "rep-anna-snelling"


def write(folder: Path, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "products.csv").write_text(PRODUCTS, encoding="utf-8")
    (folder / "sales_teams.csv").write_text(TEAMS, encoding="utf-8")
    (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    if gz:
        with gzip.open(folder / "sales_pipeline.csv.gz", "wt", encoding="utf-8") as handle:
            handle.write(PIPELINE)
    else:
        (folder / "sales_pipeline.csv").write_text(PIPELINE, encoding="utf-8")
    return folder


def run(folder: Path) -> tuple[list[dict[str, Any]], ImportReport]:
    report = ImportReport()
    events = list(convert(folder, report))
    for event in events:
        parse_event(event)
    return events, report


@pytest.fixture
def imported(tmp_path: Path) -> tuple[list[dict[str, Any]], ImportReport]:
    return run(write(tmp_path / "crm"))


def refs(events: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    key = f"{kind}_id"
    return {e[key]: e for e in events if e["type"] == kind}


def test_ids_are_slugs() -> None:
    assert slug("Gekko & Co") == "gekko-co"
    assert slug("Mei-Mei Johns") == "mei-mei-johns"
    assert product_key("GTXPro") == product_key("GTX Pro") == "gtxpro"


def test_a_won_deal_is_two_opportunity_events_and_an_order(imported: Any) -> None:
    events, _ = imported
    w1 = [e for e in events if e["event_id"].startswith("W1-")]
    base = {"type": "opportunity", "opportunity_id": "W1", "customer_id": "acme-corporation",
            "rep_id": MOSES, "product_id": "gtx-pro"}  # "GTXPro" in the pipeline
    assert w1 == [
        {**base, "event_id": "W1-engaging", "occurred_at": "2016-10-20T09:00:00-04:00",
         "stage": "engaging"},
        {**base, "event_id": "W1-won", "occurred_at": "2017-03-01T17:00:00-05:00",
         "stage": "won", "amount": 4514.0},
        {"type": "order", "event_id": "W1-order", "occurred_at": "2017-03-01T17:00:00-05:00",
         "customer_id": "acme-corporation", "rep_id": MOSES, "order_id": "W1",
         "currency": "USD",
         "lines": [{"product_id": "gtx-pro", "quantity": 1.0, "unit_price": 4514.0,
                    "list_price": 4821.0, "category": "GTX"}]},
    ]


@pytest.mark.parametrize(("opportunity", "stages"), [
    ("L1", [("engaging", "2016-10-25T09:00:00-04:00", None),
            ("lost", "2017-01-10T17:00:00-05:00", 0.0)]),
    ("E1", [("engaging", "2017-06-01T09:00:00-04:00", None)]),
    ("W2", [("engaging", "2017-02-01T09:00:00-05:00", None),
            ("won", "2017-07-04T17:00:00-04:00", 25000.0)]),
    ("N1", []),  # no account
    ("N2", []),  # no account
    ("P1", []),  # prospecting: no date
])
def test_opportunity_stages(imported: Any, opportunity: str,
                            stages: list[tuple[str, str, float | None]]) -> None:
    events, _ = imported
    seen = [(e["stage"], e["occurred_at"], e.get("amount")) for e in events
            if e["type"] == "opportunity" and e["opportunity_id"] == opportunity]
    assert seen == stages


def test_only_won_deals_are_orders(imported: Any) -> None:
    events, report = imported
    orders = [e for e in events if e["type"] == "order"]
    assert [(o["order_id"], o["lines"][0]["product_id"], o["lines"][0]["unit_price"],
             o["lines"][0]["list_price"]) for o in orders] == [
        ("W1", "gtx-pro", 4514.0, 4821.0), ("W2", "gtk-500", 25000.0, 26768.0)]
    assert report.orders == 2


def test_skips_are_counted_with_reasons(imported: Any) -> None:
    events, report = imported
    assert dict(report.skipped) == {
        "no account (cannot be tied to a customer)": 2,
        "prospecting without engage_date (no date for an event)": 1,
    }
    assert report.rows == 7
    assert report.events == len(events) == 5 + 3 + 10 + 7 + 2


def test_reference_first_then_by_time(imported: Any) -> None:
    events, _ = imported
    kinds = [e["type"] for e in events]
    assert kinds[:18] == ["rep"] * 5 + ["customer"] * 3 + ["product"] * 10
    first = "2016-10-20T09:00:00-04:00"
    assert {e["occurred_at"] for e in events[:18]} == {first}
    assert [e["event_id"] for e in events[18:]] == [
        "W1-engaging", "L1-engaging", "L1-lost", "W2-engaging", "W1-won", "W1-order",
        "E1-engaging", "W2-won", "W2-order"]


def test_reps_agents_and_managers(imported: Any) -> None:
    events, _ = imported
    reps = refs(events, "rep")
    assert list(reps) == ["rep-dustin-brinkmann", "rep-cara-losch", MOSES, ANNA,
                          "rep-violet-mclelland"]
    assert reps["rep-dustin-brinkmann"] == {
        "type": "rep", "event_id": "crm-rep-dustin-brinkmann",
        "occurred_at": "2016-10-20T09:00:00-04:00", "rep_id": "rep-dustin-brinkmann",
        "name": "Dustin Brinkmann", "team": "Central",
        "email": "dustin-brinkmann@example.com", "timezone": "America/Chicago"}
    assert (reps[MOSES]["team"], reps[MOSES]["manager_id"]) == (
        "Central", "rep-dustin-brinkmann")
    assert (reps["rep-violet-mclelland"]["manager_id"],
            reps["rep-violet-mclelland"]["timezone"]) == ("rep-cara-losch", "America/New_York")


@pytest.mark.parametrize(("customer", "segment", "region", "owner"), [
    # Acme: Moses 1 (W1), Anna 1 (L1): a tie, the alphabetically first name (Anna)
    ("acme-corporation", "technology", "United States", ANNA),  # "technolgy" fixed
    # Gekko: Moses 2 (P1 counts although it gives no event, W2), Anna 1 (E1)
    ("gekko-co", "retail", "United States", MOSES),
    ("quiet-co", "medical", "Philippines", None),  # no opportunity: no owner
])
def test_customers_and_owner_reps(imported: Any, customer: str, segment: str, region: str,
                                  owner: str | None) -> None:
    events, _ = imported
    record = refs(events, "customer")[customer]
    assert (record["segment"], record["region"], record.get("owner_rep_id")) == (
        segment, region, owner)


def test_customer_attributes(imported: Any) -> None:
    events, _ = imported
    gekko = refs(events, "customer")["gekko-co"]
    assert gekko["name"] == "Gekko & Co"
    assert gekko["attributes"] == {"year_established": 1990, "revenue": 2520.83,
                                   "employees": 2210, "subsidiary_of": "Acme Corporation"}
    assert refs(events, "customer")["acme-corporation"]["attributes"]["subsidiary_of"] is None


@pytest.mark.parametrize(("product", "tier", "upgrade_to", "price"), [
    # GTX by price: Basic 550 < Plus Basic 1096 < Pro 4821 < Plus Pro 5482
    ("gtx-basic", "entry", ["gtx-plus-basic"], 550.0),
    ("gtx-plus-basic", "mid", ["gtx-pro"], 1096.0),
    ("gtx-pro", "mid", ["gtx-plus-pro"], 4821.0),
    ("gtx-plus-pro", "premium", [], 5482.0),
    ("mg-special", "entry", ["mg-advanced"], 55.0),
    ("mg-advanced", "premium", [], 3393.0),
    ("gtk-500", None, [], 26768.0),  # alone in its series: no tier
    ("zz-one", "entry", ["zz-two", "zz-three"], 10.0),  # two at the next price
    ("zz-two", "premium", [], 20.0),
    ("zz-three", "premium", [], 20.0),
])
def test_product_tiers_and_upgrades(imported: Any, product: str, tier: str | None,
                                    upgrade_to: list[str], price: float) -> None:
    events, _ = imported
    record = refs(events, "product")[product]
    assert (record.get("tier"), record["upgrade_to"], record["list_price"]) == (
        tier, upgrade_to, price)
    assert record["category"] == product.split("-")[0].upper()


def test_gzipped_pipeline_gives_the_same_events(tmp_path: Path) -> None:
    plain, _ = run(write(tmp_path / "plain"))
    zipped, _ = run(write(tmp_path / "zipped", gz=True))
    assert plain == zipped


def test_the_bundled_sample_imports_and_validates() -> None:
    folder = Path(sia.__file__).parent / "data" / "crm_sales_opportunities"
    events, report = run(folder)
    assert (report.rows, report.orders, report.customers, report.products) == (
        8800, 4238, 85, 7)
    assert dict(report.skipped) == {
        "no account (cannot be tied to a customer)": 1425,
        "prospecting without engage_date (no date for an event)": 163,
    }
    assert len({e["event_id"] for e in events}) == len(events)
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 400_000

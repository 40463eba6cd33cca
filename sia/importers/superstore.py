"""Import Tableau's "Sample - Superstore" (newer edition) into canonical events.

Input folder: `superstore_orders.csv.gz` (or `superstore_orders.csv`), `superstore_people.csv`
(regional manager of each region) and `superstore_returns.csv` (returned order ids).

Mapping:
- One `order` per Order ID, its rows grouped as lines. Per line: unit_price = Sales / Quantity
  (net, after discount), list_price = unit_price / (1 - Discount) (left out when Discount is
  1 or outside [0, 1)), unit_cost = (Sales - Profit) / Quantity (it exceeds unit_price on the
  loss-making lines, where Profit is negative), category = Sub-Category. Currency USD. Money is
  rounded to 6 decimals (float noise only).
- The data has dates only, no times: occurred_at is the Order Date at 12:00 America/New_York.
- rep_id of an order is the regional manager of the order's Region.
- Returned orders (superstore_returns.csv, whose rows repeat: duplicates are dropped) become a
  `return` of all the order's lines. The data has no return date: a return is dated
  Ship Date + 7 days at 12:00 America/New_York, an assumption.
- Reference data, dated at the first order: the regional managers are the reps
  (rep_id "rep-<slug of name>", team = region, <slug>@example.com, America/New_York);
  customers (segment = Segment, region = their most frequent Region, ties to the region seen
  first, owner rep = that region's manager, attributes {city, state} of their first order);
  products (category = Category, the top level; lines carry the Sub-Category; name = the most
  frequent Product Name, as 32 product ids carry two names; list_price and unit_cost = the
  median per-unit values seen over the product's lines).

Oddities kept, not dropped, are counted in `report.kept` with the reason:
two order ids are shared by four Customer IDs of one person (Harry Olson, HO-15231..15234): such
an order is split into one order per customer, order_id "<Order ID>/<Customer ID>"; the same
product on two lines of an order (11 cases, 2 exact copies) keeps both lines.
"""

from __future__ import annotations

import csv
import gzip
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sia.importers.online_retail import ImportReport

__all__ = ["ImportReport", "convert", "rep_id", "slug"]

NEW_YORK = ZoneInfo("America/New_York")
NOON = time(12, 0)
RETURN_AFTER_SHIP = timedelta(days=7)
ORDERS = ("superstore_orders.csv.gz", "superstore_orders.csv")
PEOPLE = "superstore_people.csv"
RETURNS = "superstore_returns.csv"
PREFIX = "superstore"


def slug(text: str) -> str:
    """Lower-case words joined by hyphens: "Sadie Pawthorne" -> "sadie-pawthorne"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def rep_id(name: str) -> str:
    """Rep id of a regional manager."""
    return f"rep-{slug(name)}"


def _money(value: float) -> float:
    return round(value, 6) + 0.0  # + 0.0 turns -0.0 into 0.0


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _at_noon(day: date) -> datetime:
    return datetime.combine(day, NOON, tzinfo=NEW_YORK)


@dataclass
class _Order:
    order_id: str
    customer_id: str
    ordered: date
    shipped: date
    region: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    products: set[str] = field(default_factory=set)


@dataclass
class _CustomerInfo:
    name: str
    segment: str
    city: str
    state: str
    first: date
    regions: Counter[str] = field(default_factory=Counter)


@dataclass
class _ProductInfo:
    category: str
    names: Counter[str] = field(default_factory=Counter)
    list_prices: list[float] = field(default_factory=list)
    unit_costs: list[float] = field(default_factory=list)


def _orders_path(folder: Path) -> Path:
    for name in ORDERS:
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"no {' or '.join(ORDERS)} in {folder}")


def _managers(folder: Path) -> dict[str, str]:
    """Region -> regional manager's name, in file order."""
    managers: dict[str, str] = {}
    with _open(folder / PEOPLE) as handle:
        for row in csv.DictReader(handle):
            region = (row.get("Region") or "").strip()
            name = (row.get("Regional Manager") or "").strip()
            if region and name:
                managers.setdefault(region, name)
    return managers


def _line(row: dict[str, str], report: ImportReport) -> dict[str, Any] | None:
    """One order line from a row, or None when the row is skipped (counted)."""
    try:
        sales = float(row.get("Sales") or "")
        quantity = float(row.get("Quantity") or "")
        discount = float(row.get("Discount") or "0")
        profit = float(row.get("Profit") or "")
    except ValueError:
        report.skipped["unreadable Sales, Quantity, Discount or Profit"] += 1
        return None
    if quantity <= 0:
        report.skipped["Quantity not positive"] += 1
        return None
    if sales < 0:
        report.skipped["negative Sales"] += 1
        return None
    unit_price = sales / quantity
    line: dict[str, Any] = {"product_id": row["Product ID"].strip(),
                            "quantity": quantity, "unit_price": _money(unit_price)}
    if 0 <= discount < 1:
        line["list_price"] = _money(unit_price / (1 - discount))
    else:
        report.kept["no list_price (Discount is 100% or outside [0, 1))"] += 1
    cost = sales - profit
    if cost >= 0:
        line["unit_cost"] = _money(cost / quantity)
    else:
        report.kept["no unit_cost (Profit above Sales)"] += 1
    sub_category = (row.get("Sub-Category") or "").strip()
    if sub_category:
        line["category"] = sub_category
    return line


def convert(folder: Path, report: ImportReport | None = None) -> Iterator[dict[str, Any]]:
    """Canonical events (as dicts): reference data first, then orders and returns by time."""
    report = report if report is not None else ImportReport()
    folder = Path(folder)
    managers = _managers(folder)
    orders: dict[tuple[str, str], _Order] = {}
    customers_of: dict[str, list[str]] = {}  # Order ID -> its Customer IDs, in file order
    customers: dict[str, _CustomerInfo] = {}
    products: dict[str, _ProductInfo] = {}
    with _open(_orders_path(folder)) as handle:
        for row in csv.DictReader(handle):
            report.rows += 1
            order_id = (row.get("Order ID") or "").strip()
            customer = (row.get("Customer ID") or "").strip()
            product = (row.get("Product ID") or "").strip()
            if not (order_id and customer and product):
                report.skipped["missing Order ID, Customer ID or Product ID"] += 1
                continue
            try:
                ordered = date.fromisoformat((row.get("Order Date") or "").strip())
                shipped = date.fromisoformat((row.get("Ship Date") or "").strip())
            except ValueError:
                report.skipped["unreadable Order Date or Ship Date"] += 1
                continue
            line = _line(row, report)
            if line is None:
                continue
            region = (row.get("Region") or "").strip()
            entry = orders.get((order_id, customer))
            if entry is None:
                entry = orders[(order_id, customer)] = _Order(order_id, customer, ordered,
                                                              shipped, region)
                customers_of.setdefault(order_id, []).append(customer)
            elif (ordered, shipped, region) != (entry.ordered, entry.shipped, entry.region):
                report.kept["dates or Region differ from the order's first row "
                               "(first row's used)"] += 1
            if product in entry.products:
                report.kept["same product on two lines of one order"] += 1
            entry.products.add(product)
            entry.lines.append(line)

            info = customers.get(customer)
            if info is None:
                info = customers[customer] = _CustomerInfo(
                    (row.get("Customer Name") or "").strip(), (row.get("Segment") or "").strip(),
                    (row.get("City") or "").strip(), (row.get("State/Province") or "").strip(),
                    ordered)
            elif ordered < info.first:
                info.city = (row.get("City") or "").strip()
                info.state = (row.get("State/Province") or "").strip()
                info.first = ordered
            if region:
                info.regions[region] += 1
            pinfo = products.get(product)
            if pinfo is None:
                pinfo = products[product] = _ProductInfo((row.get("Category") or "").strip())
            pinfo.names[(row.get("Product Name") or "").strip()] += 1
            if "list_price" in line:
                pinfo.list_prices.append(line["list_price"])
            if "unit_cost" in line:
                pinfo.unit_costs.append(line["unit_cost"])
    if not orders:
        return
    for order_id, ids in customers_of.items():
        if len(ids) > 1:
            for customer in ids:
                report.kept["Order ID shared by several Customer IDs (split per "
                               "customer)"] += len(orders[(order_id, customer)].lines)

    transactions: list[tuple[datetime, dict[str, Any]]] = []
    for (order_id, customer), entry in orders.items():
        shared = len(customers_of[order_id]) > 1
        oid = f"{order_id}/{customer}" if shared else order_id
        if entry.region not in managers:
            report.kept["no regional manager for the order's Region (no rep_id)"] += (
                len(entry.lines))
        transactions.append((_at_noon(entry.ordered), {
            "type": "order", "event_id": f"{PREFIX}-{oid}",
            "occurred_at": _at_noon(entry.ordered).isoformat(), "customer_id": customer,
            "rep_id": rep_id(managers[entry.region]) if entry.region in managers else None,
            "order_id": oid, "currency": "USD", "lines": entry.lines}))
    transactions += _returns(folder, orders, customers_of, managers, report)
    transactions.sort(key=lambda item: item[0])

    start = transactions[0][0].isoformat()
    for ref in _reference(start, managers, customers, products, report):
        report.events += 1
        yield ref
    for _, event in transactions:
        if event["rep_id"] is None:
            del event["rep_id"]
        report.events += 1
        if event["type"] == "order":
            report.orders += 1
        else:
            report.returns += 1
        yield event


def _returns(folder: Path, orders: dict[tuple[str, str], _Order],
             customers_of: dict[str, list[str]], managers: dict[str, str],
             report: ImportReport) -> list[tuple[datetime, dict[str, Any]]]:
    out: list[tuple[datetime, dict[str, Any]]] = []
    path = folder / RETURNS
    if not path.exists():
        return out
    seen: set[str] = set()
    with _open(path) as handle:
        for row in csv.DictReader(handle):
            report.rows += 1
            order_id = (row.get("Order ID") or "").strip()
            if (row.get("Returned") or "").strip().lower() != "yes":
                report.skipped["returns file: Returned is not Yes"] += 1
                continue
            if order_id in seen:
                report.skipped["returns file: repeated row of an order already returned"] += 1
                continue
            seen.add(order_id)
            ids = customers_of.get(order_id)
            if ids is None:
                report.skipped["returns file: Order ID not among the imported orders"] += 1
                continue
            for customer in ids:
                entry = orders[(order_id, customer)]
                oid = f"{order_id}/{customer}" if len(ids) > 1 else order_id
                when = _at_noon(entry.shipped + RETURN_AFTER_SHIP)
                out.append((when, {
                    "type": "return", "event_id": f"{PREFIX}-return-{oid}",
                    "occurred_at": when.isoformat(), "customer_id": customer,
                    "rep_id": rep_id(managers[entry.region]) if entry.region in managers
                    else None,
                    "order_id": oid, "currency": "USD",
                    "lines": [dict(line) for line in entry.lines]}))
    return out


def _reference(at: str, managers: dict[str, str], customers: dict[str, _CustomerInfo],
               products: dict[str, _ProductInfo],
               report: ImportReport) -> Iterator[dict[str, Any]]:
    for team, name in managers.items():
        rid = rep_id(name)
        yield {"type": "rep", "event_id": f"{PREFIX}-{rid}", "occurred_at": at,
               "rep_id": rid, "name": name, "team": team, "email": f"{rid[4:]}@example.com",
               "timezone": "America/New_York"}
    for customer, info in customers.items():
        region = info.regions.most_common(1)[0][0] if info.regions else None
        event: dict[str, Any] = {
            "type": "customer", "event_id": f"{PREFIX}-customer-{customer}", "occurred_at": at,
            "customer_id": customer, "name": info.name or None, "segment": info.segment or None,
            "region": region, "attributes": {"city": info.city, "state": info.state}}
        if region in managers:
            event["owner_rep_id"] = rep_id(managers[region])
        report.customers += 1
        yield event
    for product, pinfo in products.items():
        event = {"type": "product", "event_id": f"{PREFIX}-product-{product}",
                 "occurred_at": at, "product_id": product,
                 "name": pinfo.names.most_common(1)[0][0] or None,
                 "category": pinfo.category or None}
        if pinfo.list_prices:
            event["list_price"] = _money(statistics.median(pinfo.list_prices))
        if pinfo.unit_costs:
            event["unit_cost"] = _money(statistics.median(pinfo.unit_costs))
        report.products += 1
        yield event

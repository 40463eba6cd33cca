"""Import the UCI "Online Retail" export into canonical events.

One invoice becomes one `order` (or a `return` for invoice numbers starting with
"C", with positive quantities). Lines without a CustomerID (guest checkouts) cannot
be tied to a customer and are skipped and counted, as are invoices of other kinds
(bad-debt adjustments "A...") and stock corrections (negative quantities on normal
invoices). InvoiceDate is UK local time: it is read as Europe/London.

The data has no sales reps. SIA adds a deterministic, documented enrichment so that
routing and per-team thresholds have something to work with: each country group is a
team (UK, Europe, International) with a manager and a few reps, and a customer's owner
rep is chosen by a stable hash (CRC-32) of the customer id within the team. Segment is
"domestic" for the United Kingdom and "export" otherwise.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
EUROPE = {
    "Austria", "Belgium", "Channel Islands", "Cyprus", "Czech Republic", "Denmark", "EIRE",
    "European Community", "Finland", "France", "Germany", "Greece", "Iceland", "Italy",
    "Lithuania", "Malta", "Netherlands", "Norway", "Poland", "Portugal", "Spain", "Sweden",
    "Switzerland",
}
TEAMS: dict[str, list[str]] = {
    "UK": ["Alex Morgan", "Priya Shah", "Tom Barker", "Hannah Lewis", "Sam Okafor",
           "Grace Chen"],
    "Europe": ["Lena Vogel", "Marc Dubois", "Sofia Rossi"],
    "International": ["Daniel Kim", "Maya Patel"],
}
MANAGERS = {"UK": "Ruth Ellis", "Europe": "Jonas Berg", "International": "Nadia Haddad"}


@dataclass
class ImportReport:
    """What an import read, wrote and skipped, with reasons."""

    rows: int = 0
    events: int = 0
    orders: int = 0
    returns: int = 0
    customers: int = 0
    products: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)  # odd rows imported anyway, and how

    def lines(self) -> list[str]:
        """Summary for a person."""
        out = [f"read {self.rows:,} rows; wrote {self.events:,} events "
               f"({self.orders:,} orders, {self.returns:,} returns, {self.customers:,} "
               f"customers, {self.products:,} products, reps and teams)"]
        out += [f"skipped {n:,} rows: {why}" for why, n in self.skipped.most_common()]
        out += [f"kept {n:,} odd rows: {why}" for why, n in self.kept.most_common()]
        return out


def team_of(country: str) -> str:
    """Team that serves a country."""
    if country == "United Kingdom":
        return "UK"
    return "Europe" if country in EUROPE else "International"


def rep_id(name: str) -> str:
    """Stable rep id from a rep's name."""
    return "rep-" + name.lower().replace(" ", "-")


def owner_rep(customer_id: str, country: str) -> str:
    """Deterministic owner rep of a customer: CRC-32 of the id within the country's team."""
    reps = TEAMS[team_of(country)]
    return rep_id(reps[zlib.crc32(customer_id.encode()) % len(reps)])


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _local_time(text: str) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=LONDON)
        except ValueError:
            continue
    raise ValueError(f"unrecognised InvoiceDate {text!r}")


def convert(path: Path, report: ImportReport | None = None,
            customers: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Canonical events (as dicts) from the CSV, reference data first, then by time."""
    report = report if report is not None else ImportReport()
    invoices: dict[str, dict[str, Any]] = {}
    countries: dict[str, str] = {}
    names: dict[str, Counter[str]] = {}
    with _open(path) as handle:
        for row in csv.DictReader(handle):
            report.rows += 1
            customer = (row.get("CustomerID") or "").strip()
            if customer.endswith(".0"):
                customer = customer[:-2]
            if not customer:
                report.skipped["no CustomerID (guest checkout)"] += 1
                continue
            if customers is not None and customer not in customers:
                report.skipped["customer not in the selected sample"] += 1
                continue
            invoice = (row.get("InvoiceNo") or "").strip()
            is_return = invoice.startswith("C")
            if not (invoice[1:] if is_return else invoice).isdigit():
                report.skipped[f"invoice kind {invoice[:1]!r} is not a sale or return"] += 1
                continue
            try:
                quantity = float(row.get("Quantity") or "")
                price = float(row.get("UnitPrice") or "")
                when = _local_time((row.get("InvoiceDate") or "").strip())
            except ValueError as exc:
                report.skipped[f"unreadable row: {exc}"] += 1
                continue
            if (quantity < 0) != is_return or quantity == 0:
                report.skipped["stock correction (quantity sign does not match invoice)"] += 1
                continue
            if price < 0:
                report.skipped["negative unit price"] += 1
                continue
            product = (row.get("StockCode") or "").strip().upper()
            if not product:
                report.skipped["no StockCode"] += 1
                continue
            names.setdefault(product, Counter())[(row.get("Description") or "").strip()] += 1
            countries.setdefault(customer, (row.get("Country") or "").strip() or "Unspecified")
            entry = invoices.get(invoice)
            if entry is None:
                entry = invoices[invoice] = {
                    "type": "return" if is_return else "order",
                    "event_id": f"online-retail-{invoice}",
                    "occurred_at": when,
                    "customer_id": customer,
                    "rep_id": owner_rep(customer, countries[customer]),
                    "order_id": invoice,
                    "currency": "GBP",
                    "lines": [],
                }
            entry["lines"].append({"product_id": product, "quantity": abs(quantity),
                                   "unit_price": price})
    if not invoices:
        return
    start = min(e["occurred_at"] for e in invoices.values())
    yield from _reference_events(start, countries, names, report)
    for entry in sorted(invoices.values(), key=lambda e: e["occurred_at"]):
        entry["occurred_at"] = entry["occurred_at"].isoformat()
        report.events += 1
        if entry["type"] == "order":
            report.orders += 1
        else:
            report.returns += 1
        yield entry


def _reference_events(start: datetime, countries: dict[str, str],
                      names: dict[str, Counter[str]],
                      report: ImportReport) -> Iterator[dict[str, Any]]:
    at = start.isoformat()
    for team, reps in TEAMS.items():
        manager = rep_id(MANAGERS[team])
        yield {"type": "rep", "event_id": f"online-retail-rep-{manager}", "occurred_at": at,
               "rep_id": manager, "name": MANAGERS[team], "team": team,
               "email": f"{manager[4:]}@example.com"}
        for name in reps:
            rid = rep_id(name)
            yield {"type": "rep", "event_id": f"online-retail-rep-{rid}", "occurred_at": at,
                   "rep_id": rid, "name": name, "team": team, "manager_id": manager,
                   "email": f"{rid[4:]}@example.com", "timezone": "Europe/London"}
            report.events += 1
        report.events += 1
    for customer, country in sorted(countries.items()):
        yield {"type": "customer", "event_id": f"online-retail-customer-{customer}",
               "occurred_at": at, "customer_id": customer, "region": country,
               "segment": "domestic" if country == "United Kingdom" else "export",
               "owner_rep_id": owner_rep(customer, country)}
        report.events += 1
        report.customers += 1
    for product, counter in sorted(names.items()):
        description = counter.most_common(1)[0][0] or None
        yield {"type": "product", "event_id": f"online-retail-product-{product}",
               "occurred_at": at, "product_id": product, "name": description}
        report.events += 1
        report.products += 1

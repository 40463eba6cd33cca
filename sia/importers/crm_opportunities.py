"""Import Maven Analytics' "CRM Sales Opportunities" sample into canonical events.

Input folder: `sales_pipeline.csv` (or `.csv.gz`), `sales_teams.csv`, `accounts.csv`,
`products.csv` (each may also be gzipped).

Mapping:
- Reps: every sales agent (rep_id "rep-<slug of name>", team = regional_office,
  manager_id = "rep-<slug of manager>") and every manager (team = the office of their agents;
  in this data each manager runs one office). Email <slug>@example.com; timezone from the
  office (Central America/Chicago, East America/New_York, West America/Los_Angeles: an
  assumption, the data names offices only).
- Customers: the accounts. customer_id = slug of the account name ("Gekko & Co" ->
  "gekko-co"), segment = sector, region = office_location, owner_rep_id = the agent with the
  most opportunities (any stage) on the account, ties to the alphabetically first name,
  attributes {year_established, revenue, employees, subsidiary_of}. Two typos of the data are
  fixed: sector "technolgy" -> "technology", office "Philipines" -> "Philippines".
- Products: product_id = slug of the name ("GTX Pro" -> "gtx-pro"), category = series,
  list_price = sales_price, no cost in the data. Within a series ordered by price, tier is
  "entry" for the cheapest, "premium" for the most expensive and "mid" between (none for a
  series of one product, GTK 500, as there is nothing to compare), and upgrade_to is the next
  pricier product(s) of the series (several when tied at that price). The pipeline writes
  "GTXPro" for "GTX Pro" (see the dataset's README): product names are matched ignoring case,
  spaces and punctuation.
- The data has dates only, no times; all are read as America/New_York. Each opportunity
  with an engage_date gives an `opportunity` at stage "engaging" at 09:00 (event_id
  "<opportunity_id>-engaging"); a Won or Lost one with a close_date gives stage "won"/"lost"
  at 17:00 with amount = close_value (event_id "<id>-won" / "<id>-lost"; every Lost deal has
  close_value 0 in this data). Each Won deal also gives an `order` (event_id "<id>-order",
  order_id = opportunity_id) of 1 unit of the product at unit_price = close_value,
  list_price = sales_price, category = series, USD, rep_id = the agent, at the close time.
- Skipped and counted: opportunities without an account (1,425: they cannot be tied to a
  customer), "Prospecting" ones without an engage_date (163 with an account: no date, so no
  event), and unreadable rows. Reference data comes first, dated at the first event.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sia.importers.online_retail import ImportReport

__all__ = ["ImportReport", "convert", "product_key", "rep_id", "slug"]

NEW_YORK = ZoneInfo("America/New_York")
ENGAGED_AT = time(9, 0)
CLOSED_AT = time(17, 0)
OFFICE_TIMEZONES = {"Central": "America/Chicago", "East": "America/New_York",
                    "West": "America/Los_Angeles"}
SECTOR_FIXES = {"technolgy": "technology"}
LOCATION_FIXES = {"Philipines": "Philippines"}
PREFIX = "crm"


def slug(text: str) -> str:
    """Lower-case words joined by hyphens: "Gekko & Co" -> "gekko-co"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def product_key(name: str) -> str:
    """Name ignoring case, spaces and punctuation: "GTXPro" and "GTX Pro" -> "gtxpro"."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def rep_id(name: str) -> str:
    """Rep id of an agent or a manager."""
    return f"rep-{slug(name)}"


def _path(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no {name} (or {name}.gz) in {folder}")


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with _open(_path(folder, name)) as handle:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(handle)]


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Product:
    product_id: str
    name: str
    series: str
    price: float


def _products(rows: list[dict[str, str]]) -> tuple[dict[str, _Product], list[dict[str, Any]]]:
    """Products by name key, and their reference records (without dates) in file order."""
    by_key: dict[str, _Product] = {}
    for row in rows:
        price = _float(row.get("sales_price", ""))
        name = row.get("product", "")
        if not name or price is None or price < 0:
            continue
        by_key.setdefault(product_key(name),
                          _Product(slug(name), name, row.get("series", ""), price))
    records = []
    for product in by_key.values():
        series = sorted((p for p in by_key.values() if p.series == product.series),
                        key=lambda p: p.price)
        prices = sorted({p.price for p in series})
        pricier = [p for p in prices if p > product.price]
        tier: str | None = None
        if len(prices) > 1:
            tier = ("entry" if product.price == prices[0]
                    else "premium" if product.price == prices[-1] else "mid")
        upgrade_to = [p.product_id for p in series if pricier and p.price == pricier[0]]
        record: dict[str, Any] = {"product_id": product.product_id, "name": product.name,
                                  "category": product.series or None,
                                  "list_price": product.price, "upgrade_to": upgrade_to}
        if tier is not None:
            record["tier"] = tier
        records.append(record)
    return by_key, records


def _reps(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Reference records of the managers, then the agents, in file order."""
    offices: dict[str, Counter[str]] = {}
    for row in rows:
        if row.get("manager"):
            offices.setdefault(row["manager"], Counter())[row.get("regional_office", "")] += 1
    out: list[dict[str, Any]] = []
    for manager, counter in offices.items():
        office = counter.most_common(1)[0][0]
        out.append(_rep(manager, office, None))
    for row in rows:
        if row.get("sales_agent"):
            out.append(_rep(row["sales_agent"], row.get("regional_office", ""),
                            row.get("manager") or None))
    return out


def _rep(name: str, office: str, manager: str | None) -> dict[str, Any]:
    rid = rep_id(name)
    record: dict[str, Any] = {"rep_id": rid, "name": name, "team": office or None,
                              "email": f"{rid[4:]}@example.com"}
    if manager:
        record["manager_id"] = rep_id(manager)
    if office in OFFICE_TIMEZONES:
        record["timezone"] = OFFICE_TIMEZONES[office]
    return record


def _customers(rows: list[dict[str, str]],
               agents_by_account: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        name = row.get("account", "")
        if not name:
            continue
        sector = row.get("sector", "")
        location = row.get("office_location", "")
        record: dict[str, Any] = {
            "customer_id": slug(name), "name": name,
            "segment": SECTOR_FIXES.get(sector, sector) or None,
            "region": LOCATION_FIXES.get(location, location) or None,
            "attributes": {"year_established": _int(row.get("year_established", "")),
                           "revenue": _float(row.get("revenue", "")),
                           "employees": _int(row.get("employees", "")),
                           "subsidiary_of": row.get("subsidiary_of") or None}}
        counts = agents_by_account.get(name)
        if counts:
            top = max(counts.values())
            record["owner_rep_id"] = rep_id(min(a for a, n in counts.items() if n == top))
        out.append(record)
    return out


def _at(day: str, clock: time) -> datetime:
    return datetime.combine(date.fromisoformat(day), clock, tzinfo=NEW_YORK)


def convert(folder: Path, report: ImportReport | None = None) -> Iterator[dict[str, Any]]:
    """Canonical events (as dicts): reference data first, then opportunities and orders."""
    report = report if report is not None else ImportReport()
    folder = Path(folder)
    products, product_records = _products(_rows(folder, "products.csv"))
    teams = _rows(folder, "sales_teams.csv")
    known_agents = {row["sales_agent"] for row in teams if row.get("sales_agent")}
    account_rows = _rows(folder, "accounts.csv")
    accounts = {row["account"] for row in account_rows if row.get("account")}
    agents_by_account: dict[str, Counter[str]] = {}
    timed: list[tuple[datetime, dict[str, Any]]] = []
    for row in _rows(folder, "sales_pipeline.csv"):
        report.rows += 1
        opportunity = row.get("opportunity_id", "")
        account = row.get("account", "")
        agent = row.get("sales_agent", "")
        stage = row.get("deal_stage", "").lower()
        if not opportunity or not agent:
            report.skipped["no opportunity_id or sales_agent"] += 1
            continue
        if not account:
            report.skipped["no account (cannot be tied to a customer)"] += 1
            continue
        if account not in accounts:
            report.skipped["account not in accounts.csv"] += 1
            continue
        agents_by_account.setdefault(account, Counter())[agent] += 1
        product = products.get(product_key(row.get("product", "")))
        if product is None:
            report.skipped["product not in products.csv"] += 1
            continue
        events = _opportunity_events(row, stage, product, report)
        if not events:
            continue
        if agent not in known_agents:
            report.kept["sales_agent not in sales_teams.csv (no rep record)"] += 1
        timed += events
    if not timed:
        return
    timed.sort(key=lambda item: item[0])
    at = timed[0][0].isoformat()
    for kind, key, records in (
            ("rep", "rep_id", _reps(teams)),
            ("customer", "customer_id", _customers(account_rows, agents_by_account)),
            ("product", "product_id", product_records)):
        for record in records:
            report.events += 1
            if kind == "customer":
                report.customers += 1
            elif kind == "product":
                report.products += 1
            event_id = (f"{PREFIX}-{record[key]}" if kind == "rep"  # "crm-rep-<slug>"
                        else f"{PREFIX}-{kind}-{record[key]}")
            yield {"type": kind, "event_id": event_id,
                   "occurred_at": at, **record}
    for _, event in timed:
        report.events += 1
        if event["type"] == "order":
            report.orders += 1
        yield event


def _opportunity_events(row: dict[str, str], stage: str, product: _Product,
                        report: ImportReport) -> list[tuple[datetime, dict[str, Any]]]:
    """The events of one pipeline row (counted as skipped when there are none)."""
    opportunity = row["opportunity_id"]
    base = {"opportunity_id": opportunity, "customer_id": slug(row["account"]),
            "rep_id": rep_id(row["sales_agent"]), "product_id": product.product_id}
    engage, close = row.get("engage_date", ""), row.get("close_date", "")
    try:
        engaged = _at(engage, ENGAGED_AT) if engage else None
        closed = _at(close, CLOSED_AT) if close else None
    except ValueError:
        report.skipped["unreadable engage_date or close_date"] += 1
        return []
    out: list[tuple[datetime, dict[str, Any]]] = []
    if engaged is not None:
        out.append((engaged, {"type": "opportunity", "event_id": f"{opportunity}-engaging",
                              "occurred_at": engaged.isoformat(), **base,
                              "stage": "engaging"}))
    if stage in ("won", "lost"):
        value = _float(row.get("close_value", ""))
        if closed is None or value is None or value < 0:
            report.kept[f"{stage} without a close_date or close_value "
                           "(no close event)"] += 1
        else:
            out.append((closed, {"type": "opportunity", "event_id": f"{opportunity}-{stage}",
                                 "occurred_at": closed.isoformat(), **base, "stage": stage,
                                 "amount": value}))
            if stage == "won":
                out.append((closed, {
                    "type": "order", "event_id": f"{opportunity}-order",
                    "occurred_at": closed.isoformat(), "customer_id": base["customer_id"],
                    "rep_id": base["rep_id"], "order_id": opportunity, "currency": "USD",
                    "lines": [{"product_id": product.product_id, "quantity": 1.0,
                               "unit_price": value, "list_price": product.price,
                               "category": product.series or None}]}))
    if not out:
        if stage == "prospecting":
            report.skipped["prospecting without engage_date (no date for an event)"] += 1
        else:
            report.skipped[f"{stage or 'no deal_stage'} without any date"] += 1
    return out

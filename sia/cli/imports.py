"""`sia import ...`: convert dataset and CRM exports into canonical JSON Lines events.

An import that writes no event exits 1 (every row rejected, or none to read): a file of
nothing must not pass for a conversion. `sia import csv` keeps each row it could not
convert in a rejects file (JSON Lines: CSV file, line, reason, the row), as `sia replay`
keeps bad records.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from sia.cli.common import console, errors, fail
from sia.config import ConfigError
from sia.events.models import parse_event
from sia.events.reader import RejectSink
from sia.importers.online_retail import ImportReport, convert

import_app = typer.Typer(help="Convert exports into canonical events (JSON Lines).",
                         no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("-o", "--output", help="events file (.jsonl or .jsonl.gz)")]


def _write(events: Iterable[dict[str, Any]], output: Path) -> int:
    """Validate and write events; an importer bug shows as a clear error, not a bad file."""
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with _open_for_write(output) as handle:
        for data in events:
            parse_event(data)  # every written event honours the contract
            handle.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
    return written


def _open_for_write(output: Path) -> IO[str]:
    if output.suffix == ".gz":
        return gzip.open(output, "wt", encoding="utf-8")
    return output.open("w", encoding="utf-8")


def _report(report: ImportReport, output: Path, rejects: RejectSink | None = None) -> None:
    for line in report.lines():
        console.print(line, highlight=False)
    if rejects is not None and rejects.count:
        errors.print(f"{rejects.count:,} rows could not be converted; kept in {rejects.path}",
                     highlight=False)
    if report.events == 0:
        fail(f"nothing imported: {report.rows:,} rows read, no event written to {output}",
             code=1)
    console.print(f"wrote {output}", highlight=False)


@import_app.command("online-retail")
def online_retail(
    csv_file: Annotated[Path, typer.Argument(help="UCI Online Retail CSV (.csv or .csv.gz)")],
    output: OutOpt,
) -> None:
    """The UCI Online Retail dataset (see sia/importers/online_retail.py for the mapping)."""
    if not csv_file.exists():
        fail(f"{csv_file}: no such file")
    report = ImportReport()
    _write(convert(csv_file, report), output)
    _report(report, output)


@import_app.command("csv")
def generic_csv(
    csv_file: Annotated[Path, typer.Argument(help="CSV export (.csv or .csv.gz)")],
    mapping: Annotated[Path, typer.Option("--mapping", "-m",
                                          help="column mapping, e.g. config/mappings/*.yaml")],
    output: OutOpt,
    rejects: Annotated[Path, typer.Option(
        help="where rows that could not be converted are kept (JSON Lines, appended)")]
    = Path("sia-import-rejects.jsonl"),
) -> None:
    """Any CSV export, driven by a column-mapping file."""
    from sia.importers.csv_mapping import convert_with_mapping

    if not csv_file.exists():
        fail(f"{csv_file}: no such file")
    report = ImportReport()
    sink = RejectSink(rejects)
    try:
        _write(convert_with_mapping(csv_file, mapping, report, rejects=sink), output)
    except ConfigError as exc:
        fail(str(exc))
    finally:
        sink.close()
    _report(report, output, sink)


@import_app.command("superstore")
def superstore(
    folder: Annotated[Path, typer.Argument(
        help="folder with superstore_orders.csv(.gz), superstore_people.csv, "
             "superstore_returns.csv")],
    output: OutOpt,
) -> None:
    """Tableau's Superstore sample (profit and discount per line; see the importer)."""
    from sia.importers.superstore import convert as convert_superstore

    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    report = ImportReport()
    _write(convert_superstore(folder, report), output)
    _report(report, output)


@import_app.command("crm-opportunities")
def crm_opportunities(
    folder: Annotated[Path, typer.Argument(
        help="folder with sales_pipeline.csv, sales_teams.csv, accounts.csv, products.csv")],
    output: OutOpt,
) -> None:
    """Maven Analytics' CRM Sales Opportunities (agents, managers, won and lost deals)."""
    from sia.importers.crm_opportunities import convert as convert_crm

    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    report = ImportReport()
    _write(convert_crm(folder, report), output)
    _report(report, output)


@import_app.command("bgnbd")
def bgnbd(
    output: OutOpt,
    customers: Annotated[int, typer.Option(min=1, help="customers in the base")] = 23_570,
    weeks: Annotated[float, typer.Option(min=1, help="weeks followed")] = 78.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same stream")] = 1,
    order: Annotated[str, typer.Option(
        help="time, or customer (sorted by customer, as CDNOW's file is: not in time "
             "order)")] = "time",
) -> None:
    """A generated base of rare buyers, CDNOW's shape (its fitted BG/NBD model).

    Most customers buy once or twice; orders carry no reps, product detail or costs
    (see sia/importers/bgnbd.py)."""
    from sia.importers.bgnbd import rare_buyers

    if order not in ("time", "customer"):
        fail(f"--order {order!r}: use time or customer")
    report = ImportReport()
    _write(rare_buyers(report, customers=customers, weeks=weeks, seed=seed,
                       order="time" if order == "time" else "customer"), output)
    _report(report, output)

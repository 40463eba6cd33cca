"""Rebuild the bundled Superstore and CRM Sales Opportunities demo samples.

- sia/data/superstore/: every row of the customers whose CRC-32 of Customer ID is divisible
  by 3 (about one customer in three, whole history) from superstore_orders.csv.gz; the
  people file unchanged; the returns file filtered to the kept orders (rows unmodified).
- sia/data/crm_sales_opportunities/: the four CSVs whole and unmodified; the pipeline is
  gzipped as sales_pipeline.csv.gz.

Gzip headers carry no time stamp, so a rebuild is byte-identical.
Usage: python scripts/make_demo_samples_extra.py [DATASETS_DIR]   (default ../shared/datasets)
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "sia" / "data"


def keep(customer: str) -> bool:
    """One customer in three, chosen by a stable hash."""
    return bool(customer) and zlib.crc32(customer.encode()) % 3 == 0


def _write_gzip(path: Path, text: str) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as raw:
        raw.write(text.encode("utf-8"))


def superstore(source: Path, out: Path) -> None:
    """The Superstore subset."""
    out.mkdir(parents=True, exist_ok=True)
    kept_orders: set[str] = set()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rows = 0
    with gzip.open(source / "superstore_orders.csv.gz", "rt", encoding="utf-8",
                   newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        writer.writerow(header)
        customer_col, order_col = header.index("Customer ID"), header.index("Order ID")
        for row in reader:
            if keep(row[customer_col].strip()):
                writer.writerow(row)
                kept_orders.add(row[order_col].strip())
                rows += 1
    _write_gzip(out / "superstore_orders.csv.gz", buffer.getvalue())
    shutil.copyfile(source / "superstore_people.csv", out / "superstore_people.csv")
    returned = 0
    with (source / "superstore_returns.csv").open(encoding="utf-8", newline="") as handle, \
            (out / "superstore_returns.csv").open("w", encoding="utf-8", newline="") as dest:
        reader = csv.reader(handle)
        writer = csv.writer(dest, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        col = header.index("Order ID")
        for row in reader:
            if row[col].strip() in kept_orders:
                writer.writerow(row)
                returned += 1
    print(f"superstore: {rows} order rows, {len(kept_orders)} orders, "
          f"{returned} returns rows -> {out}")


def crm(source: Path, out: Path) -> None:
    """The CRM Sales Opportunities files, whole."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("sales_teams.csv", "accounts.csv", "products.csv"):
        shutil.copyfile(source / name, out / name)
    _write_gzip(out / "sales_pipeline.csv.gz",
                (source / "sales_pipeline.csv").read_text(encoding="utf-8"))
    print(f"crm_sales_opportunities: 4 files -> {out}")


def main(datasets: Path) -> None:
    """Write both samples under sia/data."""
    superstore(datasets / "superstore", DATA / "superstore")
    crm(datasets / "crm_sales_opportunities", DATA / "crm_sales_opportunities")
    for path in sorted((DATA / "superstore").iterdir()) + sorted(
            (DATA / "crm_sales_opportunities").iterdir()):
        print(f"  {path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets")

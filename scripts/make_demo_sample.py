"""Rebuild sia/data/online_retail_sample.csv.gz from the full UCI Online Retail file.

Keeps every row of the customers whose CRC-32 of CustomerID is divisible by 6 (about
one customer in six, with their whole history), so the sample is deterministic.
Usage: python scripts/make_demo_sample.py ../shared/datasets/online_retail/online_retail.csv.gz
"""

from __future__ import annotations

import csv
import gzip
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "sia" / "data" / "online_retail_sample.csv.gz"


def keep(customer: str) -> bool:
    """One customer in six, chosen by a stable hash."""
    return bool(customer) and zlib.crc32(customer.encode()) % 6 == 0


def main(source: str) -> None:
    """Write the sample next to the package."""
    kept = 0
    with gzip.open(source, "rt", encoding="utf-8", newline="") as src, \
            gzip.GzipFile(OUT, "wb", mtime=0) as raw:
        import io
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.reader(src)
        writer = csv.writer(out, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        col = header.index("CustomerID")
        for row in reader:
            if keep(row[col].strip()):
                writer.writerow(row)
                kept += 1
        out.flush()
        out.detach()
    print(f"wrote {kept} rows to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])

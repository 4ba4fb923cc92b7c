"""Build the bundled demo price snapshot (cloudarb/data/price_snapshot.csv) from the real catalogs.

Usage:
    python scripts/build_snapshot.py [--data ../shared/data] [--out cloudarb/data/price_snapshot.csv]

Reads the three real price files under <data>/prices (GCP pricing table, Lambda and Vast SkyPilot
catalogs), normalizes them with `ingestion.catalogs`, and writes one row per quote. GCP rows carry
their own snapshot date; the anycloud catalogs carry none, so they are stamped with --catalog-date
(default: the GCP snapshot date, the day the data set was assembled). If the file would exceed
--max-bytes, only the cheapest regions per (provider, instance type, spot) are kept, so every GPU
type survives. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingestion.catalogs import (  # noqa: E402
    load_gcp_pricing_table,
    load_skypilot_vms,
    load_snapshot,
    write_snapshot,
)
from ingestion.schemas import PriceQuote  # noqa: E402

GCP_FILE = "gcp_cyclenerd_gpu_instances_latest.csv"
LAMBDA_FILE = "anycloud_lambda_gpu_vms.csv"
VAST_FILE = "anycloud_vast_gpu_vms.csv"


def _trim(quotes: list[PriceQuote], regions_per_offer: int) -> list[PriceQuote]:
    """Keep the cheapest N regions of every (provider, instance type, spot) offer."""
    groups: dict[tuple[str, str, bool], list[PriceQuote]] = defaultdict(list)
    for quote in quotes:
        groups[(quote.provider, quote.instance_type, quote.spot)].append(quote)
    kept: list[PriceQuote] = []
    for group in groups.values():
        kept.extend(sorted(group, key=lambda q: (q.price_per_hour, q.region))[:regions_per_offer])
    return kept


def build(data: Path, out: Path, *, catalog_date: date | None, max_bytes: int) -> dict[str, object]:
    prices = data / "prices"
    gcp = load_gcp_pricing_table(prices / GCP_FILE)
    stamp = catalog_date or max(q.observed_at for q in gcp).date()
    lam = load_skypilot_vms(prices / LAMBDA_FILE, provider="lambda", observed_at=stamp)
    vast = load_skypilot_vms(
        prices / VAST_FILE, provider="vast", observed_at=stamp, gpu_memory_field="total"
    )
    quotes = sorted(
        gcp + lam + vast, key=lambda q: (q.provider, q.gpu_model, q.instance_type, q.region, q.spot)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = write_snapshot(quotes, out)
    trimmed_to: int | None = None
    for regions in (8, 4, 2, 1):
        if out.stat().st_size < max_bytes:
            break
        rows = write_snapshot(_trim(quotes, regions), out)
        trimmed_to = regions
    reread = load_snapshot(out)
    return {
        "out": str(out),
        "bytes": out.stat().st_size,
        "rows": rows,
        "reread_rows": len(reread),
        "trimmed_to_regions_per_offer": trimmed_to,
        "by_provider": dict(Counter(q.provider for q in reread)),
        "gpu_models": sorted({q.gpu_model for q in reread}),
        "unknown_gpu_models": sorted({q.gpu_model for q in reread if not q.gpu_model_known}),
        "catalog_date": stamp.isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "cloudarb" / "data" / "price_snapshot.csv")
    parser.add_argument("--catalog-date", type=date.fromisoformat, default=None)
    parser.add_argument("--max-bytes", type=int, default=1_000_000)
    args = parser.parse_args()
    summary = build(args.data, args.out, catalog_date=args.catalog_date, max_bytes=args.max_bytes)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

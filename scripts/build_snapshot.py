"""Build the bundled demo price snapshot (cloudarb/data/price_snapshot.csv) from the real catalogs.

Usage:
    python scripts/build_snapshot.py [--data ../shared/data] [--out cloudarb/data/price_snapshot.csv]

Reads every shared price file under <data>/prices that `ingestion.catalog_report.SHARED_CATALOGS`
names (GCP pricing table; Lambda, Vast and Azure anycloud catalogs; SkyPilot's AWS p family), each
under its declared convention through the one loader (`ingestion.catalogs.load_catalog`): every
stored quote passed the data-sheet check, every refused row is counted by reason. The SkyPilot-format
files carry no date, so they are stamped with --catalog-date (default: the day the data set was
assembled). If the file would exceed --max-bytes, only the cheapest regions per (provider, instance
type, spot) are kept, so every GPU type survives. Prints a JSON summary with the per-file figures
that cloudarb/data/SNAPSHOT.md quotes.
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

from ingestion.catalog_report import CATALOG_DATE, SHARED_CATALOGS  # noqa: E402
from ingestion.catalogs import load_catalog, load_snapshot, write_snapshot  # noqa: E402
from ingestion.schemas import PriceQuote  # noqa: E402


def _trim(quotes: list[PriceQuote], regions_per_offer: int) -> list[PriceQuote]:
    """Keep the cheapest N regions of every (provider, instance type, spot) offer."""
    groups: dict[tuple[str, str, bool], list[PriceQuote]] = defaultdict(list)
    for quote in quotes:
        groups[(quote.provider, quote.instance_type, quote.spot)].append(quote)
    kept: list[PriceQuote] = []
    for group in groups.values():
        kept.extend(sorted(group, key=lambda q: (q.price_per_hour, q.region))[:regions_per_offer])
    return kept


def build(data: Path, out: Path, *, catalog_date: date, max_bytes: int) -> dict[str, object]:
    prices = data / "prices"
    quotes: list[PriceQuote] = []
    files = []
    for name, convention in SHARED_CATALOGS:
        path = prices / name
        if not path.exists():
            files.append({"source": name, "missing": True})
            continue
        loaded = load_catalog(path, convention=convention, observed_at=catalog_date)
        quotes.extend(loaded.offers)
        files.append({**loaded.summary(), "source": name})
    quotes.sort(key=lambda q: (q.provider, q.gpu_model, q.instance_type, q.region, q.zone, q.spot))
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
        "by_provider": dict(sorted(Counter(q.provider for q in reread).items())),
        "gpu_models": sorted({q.gpu_model for q in reread}),
        "catalog_date": catalog_date.isoformat(),
        "files": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "cloudarb" / "data" / "price_snapshot.csv")
    parser.add_argument("--catalog-date", type=date.fromisoformat, default=CATALOG_DATE)
    parser.add_argument("--max-bytes", type=int, default=1_000_000)
    args = parser.parse_args()
    summary = build(args.data, args.out, catalog_date=args.catalog_date, max_bytes=args.max_bytes)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

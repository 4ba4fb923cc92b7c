"""Per shared catalog file: rows read, offers stored, quarantined by reason, skipped by reason.

Usage:
    python -m ingestion.catalog_report [PRICES_DIR] [--json]

PRICES_DIR defaults to ../shared/data/prices. Prints a Markdown table (or JSON) of what
`ingestion.catalogs.load_catalog` does with each file under its declared convention.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from ingestion.catalogs import load_catalog

SHARED_CATALOGS: tuple[tuple[str, str], ...] = (
    ("gcp_cyclenerd_gpu_instances_latest.csv", "gcp"),
    ("anycloud_lambda_gpu_vms.csv", "lambda"),
    ("anycloud_vast_gpu_vms.csv", "vast"),
    ("skypilot_v8_aws_p_family_gpu_vms.csv", "aws"),
    ("anycloud_azure_gpu_vms.csv", "azure"),
)
"""Each shared price file and the convention it is written in."""

CATALOG_DATE = date(2026, 7, 30)
"""The day the shared data set was assembled (the SkyPilot-format files carry no date)."""


def shared_catalog_summaries(prices_dir: Path) -> list[dict[str, Any]]:
    """`CatalogLoad.summary()` of every shared catalog present in ``prices_dir``."""
    summaries = []
    for name, convention in SHARED_CATALOGS:
        path = prices_dir / name
        if path.exists():
            load = load_catalog(path, convention=convention, observed_at=CATALOG_DATE)
            summaries.append({**load.summary(), "source": name})
    return summaries


def _cell(counts: dict[str, int]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"


def markdown(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| file | convention | rows read | offers (on-demand + spot) | quarantined rows by reason | skipped rows |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['source']} | {s['convention']} | {s['rows_read']} | {s['offers']} "
            f"({s['on_demand_offers']} + {s['spot_offers']}) | "
            f"{s['quarantined_rows']} ({_cell(s['quarantined_by_reason'])}) | {_cell(s['skipped'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
    summaries = shared_catalog_summaries(Path(paths[0]) if paths else default)
    sys.stdout.write((json.dumps(summaries, indent=2) if as_json else markdown(summaries)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

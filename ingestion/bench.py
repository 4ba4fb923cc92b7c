"""Throughput of the simulator and of row building, as JSON (``python -m ingestion.bench``).

The application's ingest benchmark writes simulator ticks; this measures the library side alone:
how fast ticks are generated (numpy batches) and turned into COPY-ready row tuples. Timings depend
on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

from ingestion.catalogs import load_snapshot
from ingestion.simulator import MarketConfig, MarketSimulator


def run(snapshot: Path, ticks: int, row_ticks: int, seed: int) -> dict[str, object]:
    offers = load_snapshot(snapshot)
    base = MarketConfig(seed=seed)
    steps = max(1, -(-ticks // len(offers)))
    config = base.model_copy(update={"end": base.start + base.step * steps})
    sim = MarketSimulator(offers, config=config)
    began = time.perf_counter()
    generated = sum(len(batch) for batch in sim.batches())
    batch_s = time.perf_counter() - began

    row_steps = max(1, -(-row_ticks // len(offers)))
    row_sim = MarketSimulator(offers, config=base.model_copy(update={"end": base.start + base.step * row_steps}))
    began = time.perf_counter()
    rows = sum(1 for _ in row_sim.rows())
    rows_s = time.perf_counter() - began
    return {
        "offers": len(offers),
        "batch_ticks": generated,
        "batch_seconds": round(batch_s, 3),
        "batch_ticks_per_s": round(generated / batch_s),
        "row_ticks": rows,
        "row_seconds": round(rows_s, 3),
        "row_ticks_per_s": round(rows / rows_s),
        "step": str(timedelta(seconds=base.step.total_seconds())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=Path("cloudarb/data/price_snapshot.csv"))
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--row-ticks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.snapshot, args.ticks, args.row_ticks, args.seed)))


if __name__ == "__main__":
    main()

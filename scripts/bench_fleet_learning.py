"""How fast the served interruption rate learns from our own fleet: the p3.2xlarge preemption traces
(``../shared/data/risk/spot_traces/preemption``, four AWS zones, 177 h each, April 2023) replayed as if
they were our deploy rows, through the real path (deploy rows -> ``fleet_evidence`` -> ``load_feed``).

Per zone and per hours of fleet history H (0, 10, 50, 177): the first H hours of the zone's trace become
instance rows (each alive run one spot instance, interrupted where the trace dies), and the served rate of
a p3.2xlarge spot offer in that zone is compared with the rate the whole trace observed (interruptions /
alive hours over the 177 h). Two priors: the advisor alone (the default configuration) and the advisor
calibrated on the *other* zones' traces (the zone itself held out, so its own record enters only as
fleet evidence). Prints JSON.

    PYTHONPATH=. .venv/bin/python scripts/bench_fleet_learning.py [--traces DIR] [--hours 10 50 177]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete

from cloudarb.context import Context, build_context
from cloudarb.db.models import Offer
from cloudarb.db.models_deploy import DeployInstance
from cloudarb.db.types import utcnow
from cloudarb.forecasts import feed
from forecasting.spot_traces import SpotTrace, load_spot_traces
from tests.support import make_settings

DEFAULT_TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "risk" / "spot_traces"


def offers(zone: str) -> list[Offer]:
    region = zone.rstrip("abcdefghijklmnopqrstuvwxyz")
    now = utcnow()

    def one(key: str, spot: bool, price: float) -> Offer:
        return Offer(offer_key=key, provider="aws", region=region, zone=zone, instance_type="p3.2xlarge",
                     gpu_model="V100", gpu_count=1, vram_gb=16, vcpus=8, ram_gb=61, spot=spot, price_per_hour=price,
                     price_per_gpu_hour=price, capacity="available", observed_at=now)

    return [one("spot", True, 0.918), one("od", False, 3.06)]


def replay(ctx: Context, trace: SpotTrace, hours: float) -> tuple[int, float]:
    """Write the first ``hours`` of the trace as deploy rows ending now; (interruptions, alive hours)."""
    ticks = trace.data[: int(round(hours * 3600.0 / trace.gap_seconds))]
    now = utcnow()
    start = now - timedelta(seconds=len(ticks) * trace.gap_seconds)
    drops, alive = 0, 0.0
    with ctx.db.session() as session:
        session.execute(delete(DeployInstance))
        i, n = 0, len(ticks)
        while i < n:
            if ticks[i] != 1:
                i += 1
                continue
            j = i
            while j < n and ticks[j] == 1:
                j += 1
            began = start + timedelta(seconds=i * trace.gap_seconds)
            ended = start + timedelta(seconds=j * trace.gap_seconds)
            interrupted = ended if j < n else None  # a run still alive at the cut is still running
            session.add(DeployInstance(
                key=f"replay-{i}", provider="aws", region=trace.region, zone=trace.zone, instance_type="p3.2xlarge",
                spot=True, price_per_hour=0.918, state="terminated" if interrupted else "running",
                created_at=began, state_at=ended, launched_at=began, running_at=began, billing_started_at=began,
                billing_stopped_at=interrupted, ended_at=interrupted, interrupted_at=interrupted))
            drops += interrupted is not None
            alive += (min(ended, now) - began).total_seconds() / 3600.0
            i = j
    return drops, alive


def held_out_traces(root: Path, zone: str, tmp: Path) -> Path:
    """A traces folder without the zone's preemption trace (the other files linked, not copied)."""
    folder = tmp / f"traces-without-{zone}" / root.name
    folder.mkdir(parents=True)
    for sub in root.iterdir():
        if sub.is_dir():
            (folder / sub.name).symlink_to(sub.resolve(), target_is_directory=True)
    with (root / "index.csv").open() as src, (folder / "index.csv").open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            if not (row["trace_kind"] == "preemption" and row["zone"] == zone):
                writer.writerow(row)
    return folder


def served_rate(ctx: Context, zone: str) -> tuple[float, str]:
    with ctx.db.session() as session:
        f = feed.load_feed(session, ctx.settings, offers(zone), horizon_hours=1)
    return f.rates["spot"], f.risk["spot"].source


def run(root: Path, hours: list[float]) -> dict[str, Any]:
    traces = [t for t in load_spot_traces(root) if t.kind == "preemption" and t.instance_type == "p3.2xlarge"]
    out: dict[str, Any] = {"traces": str(root), "hours": hours, "zones": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for trace in traces:
            d_all, e_all = trace.interruptions()
            observed = d_all / e_all
            zone_out: dict[str, Any] = {"observed_rate": round(observed, 4), "interruptions": d_all,
                                        "alive_hours": round(e_all, 1), "priors": {}}
            for prior in ("advisor", "advisor+traces (zone held out)"):
                extra: dict[str, Any] = {}
                if prior != "advisor":
                    extra["forecast_spot_traces_dir"] = str(held_out_traces(root, trace.zone, tmp))
                data = tmp / f"{trace.zone}-{len(zone_out['priors'])}"
                data.mkdir()
                settings = make_settings(database_url=f"sqlite:///{data}/bench.db", data_dir=data,
                                         seed_snapshot=False, **extra)
                ctx = build_context(settings)
                try:
                    rows = []
                    for h in [0.0, *hours]:
                        drops, alive = replay(ctx, trace, h) if h > 0 else (0, 0.0)
                        rate, source = served_rate(ctx, trace.zone)
                        rows.append({"hours": h, "fleet_interruptions": drops, "fleet_alive_hours": round(alive, 1),
                                     "served_rate": round(rate, 5), "served_over_observed": round(rate / observed, 3),
                                     "abs_log_error": round(abs(math.log(rate / observed)), 3), "source": source})
                    zone_out["priors"][prior] = rows
                finally:
                    ctx.close()
            out["zones"][trace.zone] = zone_out
    for prior in ("advisor", "advisor+traces (zone held out)"):
        out.setdefault("summary", {})[prior] = {
            str(h): round(float(np.median([z["priors"][prior][k]["served_over_observed"]
                                           for z in out["zones"].values()])), 3)
            for k, h in enumerate([0.0, *hours])}
    out["summary_note"] = "median over zones of served rate / the zone's observed rate, by hours of fleet history"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    ap.add_argument("--hours", type=float, nargs="+", default=[10.0, 50.0, 177.0])
    args = ap.parse_args(argv)
    if not (args.traces / "index.csv").is_file():
        print(json.dumps({"error": f"no traces at {args.traces}"}))
        return 1
    print(json.dumps(run(args.traces, args.hours), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The lines as one CSV table (``allocation.csv``), for spreadsheets and tools without a format here."""

from __future__ import annotations

import csv
import io

from cloudarb.deploy.renderers.plan import Plan, Rendered, RenderedFile

FORMAT = "csv"
COLUMNS = ("line", "workload_id", "provider", "seller", "region", "instance_type", "gpu_model", "instances",
           "gpus", "gpus_per_instance", "hourly_cost", "price_per_instance", "spot", "offer_key", "key")


def render(plan: Plan) -> Rendered:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for ln in plan.lines:
        writer.writerow([ln.index, ln.workload_id, ln.provider, ln.seller, ln.region, ln.instance_type, ln.gpu_model,
                         ln.instances, ln.gpus, ln.gpus_per_instance, f"{ln.hourly_cost:.6f}",
                         f"{ln.price_per_instance:.6f}", "true" if ln.spot else "false", ln.offer_key, plan.key(ln)])
    return Rendered(FORMAT, (RenderedFile("allocation.csv", buf.getvalue(), "text/csv"),))

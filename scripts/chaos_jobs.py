"""Chaos figures for the job pipeline and the API, as one JSON document on stdout.

Starts a private stack (its own PostgreSQL cluster and Redis server on free ports, an API server and a
worker; never the shared services), then:
- per fault (Redis restarted empty, PostgreSQL stopped and restarted, a worker killed), while jobs are
  submitted: jobs accepted, refused with 503, server errors, jobs stuck (not terminal within the
  reaper's bound), acknowledged writes missing, seconds until every accepted job was terminal;
- read-your-writes failures on one keep-alive connection, per write route (``--ryw`` rounds);
- server errors under a bounded schemathesis run (``--fuzz-examples`` per operation and mode) and in
  the hostile-input table;
- the API process's peak memory before and after a 300 MB chunked body without credentials.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python scripts/chaos_jobs.py [--only faults|api]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability import chaos, probes
from tests.reliability.fuzz import fuzz
from tests.reliability.stack import Stack, available


def api_figures(stack: Stack, *, ryw: int, fuzz_examples: int) -> dict[str, Any]:
    assert stack.api is not None
    key = stack.api_key("chaos-api")
    out: dict[str, Any] = {}
    before = probes.peak_rss_mb(stack.api.pid)
    port = int(stack.base.rsplit(":", 1)[1])
    (status, sent_mb), seconds = probes.elapsed(lambda: probes.chunked_oversized("127.0.0.1", port, total_mb=300))
    out["chunked_300mb"] = {"status": status, "mb_sent_before_answer": sent_mb, "seconds": round(seconds, 2),
                            "api_peak_rss_mb_before": round(before, 1),
                            "api_peak_rss_mb_after": round(probes.peak_rss_mb(stack.api.pid), 1)}
    import httpx

    with httpx.Client(base_url=stack.base, timeout=30) as client:
        answers = probes.hostile_answers(client.request, {"X-API-Key": key})
    out["hostile_inputs"] = {"rows": len(answers), "server_errors": sum(1 for a in answers if a[2] >= 500),
                             "not_4xx": [a[:3] for a in answers if not 400 <= a[2] < 500]}
    failures, seconds = probes.elapsed(lambda: probes.read_your_writes(stack.base, key, n=ryw, users=min(ryw, 25)))
    out["read_your_writes"] = {"rounds": ryw, "failures": sum(failures.values()), "per_route": failures,
                               "seconds": round(seconds, 1)}
    (sent, errors), seconds = probes.elapsed(lambda: fuzz(stack.base, key, max_examples=fuzz_examples))
    out["fuzzing"] = {"requests": sent, "server_errors": len(errors), "examples": errors[:5],
                      "seconds": round(seconds, 1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["faults", "api"], default=None)
    parser.add_argument("--ryw", type=int, default=100)
    parser.add_argument("--fuzz-examples", type=int, default=25)
    args = parser.parse_args()
    reason = available()
    if reason:
        print(json.dumps({"skipped": reason}))
        return 1
    stack = Stack()
    stack.values["RATE_LIMIT_PER_MINUTE"] = "1000000"
    started = time.monotonic()
    report: dict[str, Any] = {}
    try:
        stack.start(workers=1)
        if args.only in (None, "api"):
            report["api"] = api_figures(stack, ryw=args.ryw, fuzz_examples=args.fuzz_examples)
        if args.only in (None, "faults"):
            report["reaper_bound_s"] = chaos.bound_s(stack)
            report["faults"] = [scenario(stack).as_dict() for scenario in chaos.SCENARIOS.values()]
    finally:
        stack.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Are the request counters right when several server processes answer? Printed as one JSON document.

Starts ``cloudarb serve --workers N`` (SQLite file, Redis for the production mode that several
processes need; default ``redis://127.0.0.1:6379/14``) on a free port, sends ``--requests`` GET /livez
from a few client threads while another thread scrapes ``/metrics`` every 20 ms, then
scrapes once more. Each scrape reads the sum over all label sets of
``cloudarb_http_requests_total{route="/livez"}``; the figures:

* ``scrapes``: how many scrapes were read, and ``values``: the first and last few of those sums;
* ``monotonic``: no scrape read less than the one before (a per-process counter fails this: the
  answer depends on which process the scrape lands on);
* ``final``, ``final_equals_requests``: the last scrape's sum and whether it is exactly the number
  of requests sent;
* ``processes_answering``: distinct server pids seen in the /livez answers (the load was spread);
* ``scrape_ms_median``: how long one /metrics answer took while the load ran.

    scripts/bench_metrics.py --workers 4 --requests 1000
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
CLOUDARB = str(Path(sys.executable).with_name("cloudarb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def livez_count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "cloudarb_http_requests":
            continue
        for sample in family.samples:
            if sample.name == "cloudarb_http_requests_total" and sample.labels.get("route") == "/livez":
                total += sample.value
    return total


def run(workers: int, requests: int, redis_url: str) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "CLOUDARB_DATABASE_URL": f"sqlite:///{tmp / 'cloudarb.db'}", "CLOUDARB_DATA_DIR": str(tmp),
           "CLOUDARB_REDIS_URL": redis_url, "CLOUDARB_METRICS_TOKEN": token,
           "CLOUDARB_SECRET_KEY": secrets.token_urlsafe(48), "CLOUDARB_RATE_LIMIT_PER_MINUTE": "1000000",
           "CLOUDARB_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([CLOUDARB, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    server = subprocess.Popen([CLOUDARB, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "wb"),
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {tmp / 'server.log'}")
            time.sleep(0.2)
        time.sleep(3)  # let every worker process come up, so the load spreads over all of them
        headers = {"Authorization": f"Bearer {token}"}
        baseline = livez_count(httpx.get(f"{base}/metrics", headers=headers, timeout=10).text)
        values: list[float] = []
        scrape_ms: list[float] = []
        done = threading.Event()

        def scrape() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                while not done.is_set():
                    t0 = time.perf_counter()
                    body = client.get("/metrics").text
                    scrape_ms.append((time.perf_counter() - t0) * 1000)
                    values.append(livez_count(body) - baseline)
                    done.wait(0.02)

        pids: set[int] = set()

        def hit(_: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as client:  # a new connection: any process may answer
                answer = client.get("/livez")
                answer.raise_for_status()
                pids.add(int(answer.json()["pid"]))

        scraper = threading.Thread(target=scrape)
        started = time.perf_counter()
        scraper.start()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(hit, range(requests)))
        elapsed = time.perf_counter() - started
        done.set()
        scraper.join()
        final = livez_count(httpx.get(f"{base}/metrics", headers=headers, timeout=10).text) - baseline
        values.append(final)
        return {
            "workers": workers, "requests": requests, "seconds": round(elapsed, 2), "scrapes": len(values),
            "values_head": values[:5], "values_tail": values[-5:],
            "monotonic": all(b >= a for a, b in zip(values, values[1:])),
            "final": final, "final_equals_requests": final == requests,
            "processes_answering": len(pids),
            "scrape_ms_median": round(statistics.median(scrape_ms), 1) if scrape_ms else None,
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--redis-url", default=os.environ.get("CLOUDARB_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    print(json.dumps(run(args.workers, args.requests, args.redis_url), indent=2))


if __name__ == "__main__":
    main()

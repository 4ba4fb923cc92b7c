"""The dashboard end to end in headless Chromium, against a real ``cloudarb serve`` (embedded mode,
bundled snapshot, a temporary data directory) serving the built dashboard.

The browser reaches the server under a made-up host name mapped to loopback, so the page is not a
secure context (no ``crypto.randomUUID``), as on any plain-HTTP host other than localhost. Deploys go
to the Lambda Cloud fake of the deploy tests over loopback HTTP, and so do pricing refreshes of lambda
(the walk asks for one while the prices page is open and watches the new price arrive over /ws/prices).
Before the walk the server's price forecast job runs on a seeded week of hourly prices. The walk
itself is ``frontend/e2e/run.mjs`` (playwright-core over Debian's ``/usr/bin/chromium``); it writes a
screenshot of each page to ``$CLOUDARB_SCREENSHOTS`` (default ``frontend/e2e/screenshots``).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cloudarb.context import build_context
from cloudarb.ingest import catalog_import
from cloudarb.storage import accounts
from tests.deploy.fakes.lambda_cloud import API_KEY as LAMBDA_KEY
from tests.deploy.fakes.lambda_cloud import INSTANCE_TYPES as LAMBDA_TYPES
from tests.deploy.fakes.lambda_cloud import LambdaFake
from tests.deploy.fakes.server import serving
from tests.support import make_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "e2e@example.com"
PASSWORD = "correct horse battery staple"
HOST = "cloudarb-e2e.test"


@dataclass(frozen=True)
class Server:
    port: int
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


@pytest.fixture(scope="module")
def dashboard_build() -> Path:
    """The built dashboard: reused when newer than every source file, else ``npm run build``."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed")
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (Debian package chromium)")
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True, timeout=600)
    dist = FRONTEND / "dist"
    sources = max(_newest_mtime(FRONTEND / "src"), (FRONTEND / "index.html").stat().st_mtime,
                  (FRONTEND / "package-lock.json").stat().st_mtime)
    if not (dist / "index.html").is_file() or _newest_mtime(dist) < sources:
        subprocess.run(["npm", "run", "build"], cwd=FRONTEND, check=True, timeout=600, capture_output=True)
    return dist


HISTORY_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
HISTORY_HOURS = 168


def _a100_walk(hours: int) -> list[float]:
    """A seeded random walk of cents: no model can beat last value on it (the forecast page says so)."""
    rng = random.Random(16)
    price, out = 1.29, []
    for _ in range(hours):
        price = min(1.6, max(1.0, price + rng.choice((-0.02, 0.0, 0.02))))
        out.append(round(price, 2))
    return out


def _history_csv(hour: int, walk: list[float]) -> str:
    """Lambda-like prices at one hour of the seeded week, in two regions: H100 on-demand moving every six
    hours in a repeating pattern, H100 spot following a daily cycle (a model beats last value on both),
    A100 on a random walk (no model does)."""
    rows = [HISTORY_HEADER]
    block = hour // 6
    for region, base in (("us-east-1", 2.49), ("us-west-1", 2.69)):
        on_demand = 8 * (base + 0.05 * ((block * 3) % 5))
        spot = 8 * (base * 0.6 + 0.25 * math.sin(2 * math.pi * (hour % 24) / 24))
        rows.append(f"gpu_8x_h100_sxm5,H100,8,208,1800,{on_demand:.2f},{spot:.2f},{region}")
        a100 = walk[hour] + (0.1 if region == "us-west-1" else 0.0)
        rows.append(f"gpu_1x_a100_sxm4,A100,1,30,200,{a100:.2f},,{region}")
    return "\n".join(rows) + "\n"


def _prepare(data: Path, database_url: str) -> None:
    """Migrate, load the bundled snapshot, create the admin, and store a week of hourly price history
    through the catalog import path (the snapshot holds current offers only, so its history charts
    would be empty and no series would be long enough to forecast)."""
    ctx = build_context(make_settings(database_url=database_url, data_dir=data))
    try:
        with ctx.db.session() as session:
            org = accounts.get_or_create_org(session, name="E2E")
            accounts.create_user(session, organization_id=org.id, email=EMAIL, password=PASSWORD, role="admin")
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        csv = data / "history.csv"
        walk = _a100_walk(HISTORY_HOURS)
        for hour in range(HISTORY_HOURS):
            csv.write_text(_history_csv(hour, walk))
            loaded = catalog_import.load(csv, fmt="skypilot", provider="lambda",
                                         observed_at=now - timedelta(hours=HISTORY_HOURS - 1 - hour))
            with ctx.db.session() as session:
                catalog_import.store(session, loaded)
    finally:
        ctx.close()


def _forecast(base: str) -> None:
    """Run the price forecast job on the server (``POST /forecasts/refresh``, a full refit: model
    selection and the skill gate) and wait for it, so the Forecasts page has fan charts to show."""
    login = httpx.post(f"{base}/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    job = httpx.post(f"{base}/api/forecasts/refresh", json={"kind": "price", "full_refit": True}, headers=headers)
    assert job.status_code == 202, job.text
    status_url = f"{base}/api{job.json()['status_url']}"
    deadline = time.monotonic() + 180
    while True:
        status = httpx.get(status_url, headers=headers).json()
        if status["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, f"the forecast job did not finish: {status}"
        time.sleep(0.5)
    assert status["status"] == "finished", status


@pytest.fixture(scope="module")
def server(dashboard_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("e2e")
    with serving(LambdaFake()) as lambda_cloud:
        yield from _serve(data, dashboard_build, lambda_cloud.url)


def _serve(data: Path, dashboard_build: Path, lambda_url: str) -> Iterator[Server]:
    """The server deploys to the Lambda Cloud fake of the deploy tests (real HTTP on loopback)."""
    env = {
        **os.environ,
        "CLOUDARB_DATA_DIR": str(data),
        "CLOUDARB_DATABASE_URL": f"sqlite:///{data / 'cloudarb.db'}",
        "CLOUDARB_DASHBOARD_DIR": str(dashboard_build),
        "CLOUDARB_LOG_LEVEL": "WARNING",
        "CLOUDARB_DEPLOY_BASE_URL_LAMBDA": f"{lambda_url}/api/v1",
        "CLOUDARB_LAMBDA_API_KEY": LAMBDA_KEY,
        "CLOUDARB_DEPLOY_REACHABILITY_CHECK": "false",
        # pricing refreshes (POST /providers/lambda/refresh, by the walk) read the fake's instance types
        "CLOUDARB_INGEST_BASE_URLS": json.dumps({"lambda": f"{lambda_url}/api/v1"}),
    }
    env.pop("CLOUDARB_REDIS_URL", None)
    _prepare(data, env["CLOUDARB_DATABASE_URL"])
    cli = [sys.executable, "-c", "from cloudarb.cli import app; app()"]
    port = _free_port()
    log = (data / "server.log").open("w")
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + (data / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        _forecast(f"http://127.0.0.1:{port}")
        yield Server(port=port, data_dir=data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_served_dashboard_and_its_api_prefix(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    index = httpx.get(f"{base}/", headers={"Accept": "text/html"})
    assert index.status_code == 200 and '<div id="root">' in index.text
    assert index.headers["cache-control"] == "no-cache"
    asset = next(p.name for p in (FRONTEND / "dist" / "assets").iterdir() if p.suffix == ".js")
    cached = httpx.get(f"{base}/assets/{asset}")
    assert cached.status_code == 200 and "immutable" in cached.headers["cache-control"]
    login = httpx.post(f"{base}/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 200, login.text


def test_dashboard_in_chromium(server: Server) -> None:
    shots = Path(os.environ.get("CLOUDARB_SCREENSHOTS") or FRONTEND / "e2e" / "screenshots")
    env = {
        **os.environ,
        "CLOUDARB_E2E_URL": f"http://{HOST}:{server.port}",
        "CLOUDARB_E2E_RESOLVE": f"127.0.0.1:{server.port}",
        "CLOUDARB_E2E_EMAIL": EMAIL,
        "CLOUDARB_E2E_PASSWORD": PASSWORD,
        "CLOUDARB_SCREENSHOTS": str(shots),
        # what a lambda refresh (asked for by the walk) stores for the seeded us-east-1 H100 offer
        "CLOUDARB_E2E_LIVE_PRICE": f"{LAMBDA_TYPES['gpu_8x_h100_sxm5'][2] / 100:.2f}",
    }
    run = subprocess.run(["node", str(FRONTEND / "e2e" / "run.mjs")], cwd=FRONTEND, env=env, capture_output=True,
                         text=True, timeout=240)
    tail = run.stderr[-4000:]
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{tail}\nserver log:\n{(server.data_dir / 'server.log').read_text()[-3000:]}"
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    for name in ("01-offers-filtered", "03-prices-gpu", "03b-prices-live", "05-forecasts", "06-result", "07-resolved",
                 "20-phone-offers", "21-phone-result", "22-phone-prices", "23-phone-forecasts"):
        assert (shots / f"{name}.png").stat().st_size > 5000, name

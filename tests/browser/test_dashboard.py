"""The dashboard end to end in headless Chromium, against a real ``cloudarb serve`` (embedded mode,
bundled snapshot, a temporary data directory) serving the built dashboard.

The browser reaches the server under a made-up host name mapped to loopback, so the page is not a
secure context (no ``crypto.randomUUID``), as on any plain-HTTP host other than localhost. Deploys go
to the Lambda Cloud fake of the deploy tests over loopback HTTP. The walk
itself is ``frontend/e2e/run.mjs`` (playwright-core over Debian's ``/usr/bin/chromium``); it writes a
screenshot of each page to ``$CLOUDARB_SCREENSHOTS`` (default ``frontend/e2e/screenshots``).
"""

from __future__ import annotations

import json
import os
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


def _history_csv(step: int) -> str:
    """Lambda-like H100 and A100 prices that move a little every six hours (two regions, spot too)."""
    rows = [HISTORY_HEADER]
    for region, base in (("us-east-1", 2.49), ("us-west-1", 2.69)):
        on_demand = 8 * (base + 0.05 * ((step * 3) % 5))
        spot = 8 * (base * 0.6 + 0.04 * (step % 3))
        rows.append(f"gpu_8x_h100_sxm5,H100,8,208,1800,{on_demand:.2f},{spot:.2f},{region}")
        rows.append(f"gpu_1x_a100_sxm4,A100-80GB,1,30,200,{1.29 + 0.03 * (step % 4):.2f},,{region}")
    return "\n".join(rows) + "\n"


def _prepare(data: Path, database_url: str) -> None:
    """Migrate, load the bundled snapshot, create the admin, and store five days of price history
    (the snapshot holds current offers only, so its history charts would be empty)."""
    ctx = build_context(make_settings(database_url=database_url, data_dir=data))
    try:
        with ctx.db.session() as session:
            org = accounts.get_or_create_org(session, name="E2E")
            accounts.create_user(session, organization_id=org.id, email=EMAIL, password=PASSWORD, role="admin")
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        csv = data / "history.csv"
        for step in range(20):
            csv.write_text(_history_csv(step))
            loaded = catalog_import.load(csv, fmt="skypilot", provider="lambda",
                                         observed_at=now - timedelta(hours=6 * (19 - step)))
            with ctx.db.session() as session:
                catalog_import.store(session, loaded)
    finally:
        ctx.close()


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
    }
    run = subprocess.run(["node", str(FRONTEND / "e2e" / "run.mjs")], cwd=FRONTEND, env=env, capture_output=True,
                         text=True, timeout=240)
    tail = run.stderr[-4000:]
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{tail}\nserver log:\n{(server.data_dir / 'server.log').read_text()[-3000:]}"
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    for name in ("01-offers-filtered", "03-prices-gpu", "06-result", "07-resolved", "20-phone-offers", "21-phone-result"):
        assert (shots / f"{name}.png").stat().st_size > 5000, name

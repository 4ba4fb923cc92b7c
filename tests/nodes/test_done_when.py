"""Issue 14's done-when path on this machine, over real HTTP and the real Podman service:

an agent registers a host whose GPU comes from a recorded nvidia-smi capture; the optimizer places a
workload on it beside rented offers; the deploy core starts it through the local provider; the
container runs on Podman with exactly its (fake, CDI) GPU, answers on its published port, stops and
starts with its workspace intact, is billed per second at the owner's price, and is destroyed with
proof; a second placement on the full host waits in the queue and starts when the first is destroyed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cloudarb.agent.daemon import Agent, AgentConfig
from cloudarb.agent.discovery import DiscoveryConfig
from cloudarb.agent.engines.libpod import LibpodEngine
from cloudarb.agent.protocol import LABEL_PLACEMENT
from cloudarb.bootstrap import seed_snapshot
from cloudarb.config import NodesSettings
from cloudarb.context import Context, build_context
from cloudarb.db import migrate
from cloudarb.db.models_nodes import Template
from cloudarb.deploy.providers.base import LaunchSpec, RemoteState
from cloudarb.deploy.providers.local import LocalProvisioner
from tests.agent.conftest import libpod, podman_service  # noqa: F401 - the Podman fixtures
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi
from tests.agent.podman_service import IMAGE
from tests.nodes.live import serve
from tests.support import PG_URL, Tenant, make_settings, wait_for

pytestmark = [pytest.mark.container, pytest.mark.postgres, pytest.mark.slow]
H100 = next(c for c in CAPTURES if "h100-80gb" in c.name)
HTTPD = ["/bin/sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8888 -h /www"]


@pytest.fixture()
def seeded(tmp_path: Path) -> Iterator[Context]:
    """Embedded mode (in-process jobs and scheduler) on a PostgreSQL database of its own, seeded with the
    bundled market snapshot. (On SQLite the deploy core's first 'booting' event is published from a
    second connection while its own transaction holds the write lock: a 10 s stall, then 'database is
    locked'.)"""
    name = f"cloudarb_nodes_dw_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    context = build_context(make_settings(database_url=url, data_dir=tmp_path, node_heartbeat_interval_s=1.0,
                                          deploy_base_url_local=url, deploy_boot_timeout_s=120))
    migrate.upgrade(url)
    seed_snapshot(context)
    yield context
    context.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def get(url: str, tenant: Tenant, path: str) -> Any:
    r = httpx.get(f"{url}{path}", headers=tenant.headers("viewer"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def container_of(engine: LibpodEngine, placement_id: str) -> str:
    (info,) = engine.list_containers({LABEL_PLACEMENT: placement_id})
    return info.id


def test_own_host_beside_rented_offers(seeded: Context, libpod: LibpodEngine, tmp_path: Path) -> None:  # noqa: F811
    ctx = seeded
    tenant = Tenant(ctx, "Acme")
    with ctx.db.session() as session:
        session.add(Template(name="test-httpd", title="busybox httpd", image=IMAGE, command=HTTPD, env={},
                             ports=[{"container_port": 8888, "protocol": "tcp", "name": "http"}],
                             health_check={"kind": "http", "port": 8888, "path": "/"}, organization_ids=None,
                             builtin=False))
    nvidia_smi = install_fake_nvidia_smi(tmp_path / "bin", H100, copies=1)
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        admin = tenant.headers("admin")
        token = httpx.post(f"{url}/nodes/join-tokens", json={"node_name": "h100-box", "price_per_gpu_hour": 0.5},
                           headers=admin).json()["join_token"]
        agent = Agent(AgentConfig(server=url, join_token=token, state_dir=tmp_path / "agent", probe_image=IMAGE,
                                  discovery=DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(nvidia_smi)),
                                  heartbeat_interval_s=0.3, stop_timeout_s=1), libpod)
        agent.start()
        loop = threading.Thread(target=agent.run_forever, daemon=True)
        loop.start()
        try:
            (node,) = get(url, tenant, "/nodes")
            assert node["engine"]["self_test_ok"], node["engine"]
            gpu = get(url, tenant, f"/nodes/{node['id']}")["gpus"][0]
            assert (gpu["model"], gpu["uuid"].startswith("GPU-")) == ("H100 SXM", True)

            # one solve over the team's host and the rented market
            body = {"name": "mixed", "time_limit_s": 20, "workloads": [
                {"id": "notebook", "gpus_min": 1, "min_vram_gb": 80, "workload_type": "inference"},
                {"id": "train", "gpus_min": 8, "gpus_per_node": 8, "min_vram_gb": 40, "workload_type": "training"}]}
            opt = httpx.post(f"{url}/optimize", json=body, headers=admin, timeout=30).json()
            done = wait_for(lambda: (o := get(url, tenant, f"/optimize/{opt['id']}"))["status"] in (
                "finished", "infeasible", "failed") and o, timeout=120)
            assert done["status"] == "finished", done
            lines = get(url, tenant, f"/optimize/{opt['id']}/allocations")
            providers = [(ln["provider"], ln["workload_id"]) for ln in lines]
            local = [i for i, ln in enumerate(lines) if ln["provider"].startswith("local")]
            assert local and any(not p.startswith("local") for p, _ in providers), providers

            # the deploy core starts it through the local provider; the agent runs it on Podman
            r = httpx.post(f"{url}/optimize/{opt['id']}/deploy", headers=admin, timeout=30,
                           json={"lines": local, "lifetime_hours": 1, "launch": {"image": "test-httpd"}})
            assert r.status_code == 202, r.text
            dep_id = r.json()["id"]
            dep = wait_for(lambda: (d := get(url, tenant, f"/deployments/{dep_id}"))["status"] in (
                "running", "failed", "partial") and d, timeout=180)
            assert dep["status"] == "running", dep
            (placement,) = [p for p in get(url, tenant, "/nodes/placements") if p["state"] == "running"]
            cid = container_of(libpod, placement["id"])
            code, devices = libpod.exec(cid, ["/bin/sh", "-c", "ls /dev/nvidia*"])
            assert code == 0 and devices.split() == ["/dev/nvidia0"], devices
            port = placement["published_ports"]["8888/tcp"]
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text.strip() == "ok"
            # the template's http check, run by the agent, shows on the deployment's instance
            healthy = wait_for(lambda: [i for i in get(url, tenant, f"/deployments/{dep_id}")["instances"]
                                        if i["health"] == "healthy"], timeout=60)
            assert healthy[0]["healthy_since"] and "answered 200" in healthy[0]["health_detail"], healthy

            # stop and start again: the workspace survives
            assert libpod.exec(cid, ["/bin/sh", "-c", "echo kept > /workspace/note"])[0] == 0
            prov.stop(placement["id"])
            wait_for(lambda: prov.get(placement["id"]).state is RemoteState.STOPPED, timeout=60)  # type: ignore[union-attr]
            prov.start(placement["id"])
            wait_for(lambda: prov.get(placement["id"]).state is RemoteState.RUNNING, timeout=60)  # type: ignore[union-attr]
            assert libpod.exec(cid, ["cat", "/workspace/note"]) == (0, "kept\n")

            # a second placement on the full host waits in the queue
            second = prov.create(LaunchSpec(
                key="cloudarb-queue-second", instance_type="h100-box/H100 SXM", region="h100-box",
                gpu_model="H100 SXM", gpu_count=1, spot=False, price_per_hour=0.5,
                expires_at=datetime.now(UTC) + timedelta(hours=1), image="test-httpd"))
            queued = {p["id"]: p for p in get(url, tenant, "/nodes/placements")}[second.provider_id]
            assert (queued["state"], queued["position"]) == ("queued", 1)

            # destroyed with proof; billed per second at the owner's price; the queue moves
            assert httpx.delete(f"{url}/deployments/{dep_id}", headers=admin, timeout=30).status_code == 202
            ended = wait_for(lambda: (d := get(url, tenant, f"/deployments/{dep_id}"))["status"] == "ended" and d,
                             timeout=180)
            assert all(i["state"] == "terminated" for i in ended["instances"]), ended["instances"]
            assert libpod.list_containers({LABEL_PLACEMENT: placement["id"]}) == []
            assert ended["cost_so_far"] >= round(0.5 / 60, 6)  # at least the one-minute minimum at $0.50/h
            wait_for(lambda: prov.get(second.provider_id).state is RemoteState.RUNNING, timeout=60)  # type: ignore[union-attr]
            other = container_of(libpod, second.provider_id)
            assert libpod.exec(other, ["/bin/sh", "-c", "ls /dev/nvidia*"])[1].split() == ["/dev/nvidia0"]
            prov.destroy(second.provider_id)
            wait_for(lambda: prov.get(second.provider_id) is None, timeout=60)
        finally:
            agent.stop()
            loop.join(timeout=10)

"""Any instance size up to a host's GPUs works end to end through the local provisioner, placements and
the agent: ``<node>/<label>/x<N>`` for N = 3, 5, 6 on a 6-GPU host, whatever sizes the market offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudarb.config import NodesSettings
from cloudarb.context import Context
from cloudarb.deploy.errors import NoCapacity
from cloudarb.deploy.providers.base import LaunchSpec, RemoteState
from cloudarb.deploy.providers.local import LocalProvisioner
from tests.nodes.fake_engine import FakeEngine
from tests.nodes.helpers import host
from tests.nodes.live import serve
from tests.nodes.test_agent_loopback import join, make_agent
from tests.support import Tenant


def sized(key: str, size: int, node: str = "box6") -> LaunchSpec:
    return LaunchSpec(key=f"cloudarb-size-{key}", instance_type=f"{node}/H100 SXM/x{size}", region=node,
                      gpu_model="H100 SXM", gpu_count=size, spot=False, price_per_hour=1.2 * size,
                      expires_at=datetime.now(UTC) + timedelta(hours=1), image="cuda-base")


def test_odd_sizes_on_a_six_gpu_host(ctx: Context, tenant: Tenant, tmp_path: Path) -> None:
    engine = FakeEngine()
    prov = LocalProvisioner(ctx.db, ctx.settings.section(NodesSettings))
    with serve(ctx) as url:
        agent = make_agent(url, tmp_path / "a", engine, lambda: host("box6.lab", 6), join(url, tenant, "box6"))
        agent.run_once()
        three = prov.create(sized("three", 3))
        five = prov.create(sized("five", 5))  # 3 free of the 5 it needs: it waits
        other_three = prov.create(sized("three-b", 3))  # behind the 5 in the queue (no overtaking: no starvation)
        assert (three.raw_state, five.raw_state, other_three.raw_state) == ("assigned", "queued", "queued")
        agent.run_once()
        assert engine.gpus_of(three.provider_id) == [f"GPU-box6.lab-{i}" for i in range(3)]
        with pytest.raises(NoCapacity, match="6 unit"):
            prov.create(sized("seven", 7))  # more than the host has: refused, never queued forever
        prov.destroy(three.provider_id)
        agent.run_once()  # destroyed: the 5-GPU one starts (queue order), the other 3 waits behind it
        agent.run_once()
        assert prov.get(five.provider_id).state is RemoteState.RUNNING  # type: ignore[union-attr]
        assert len(engine.gpus_of(five.provider_id)) == 5
        assert prov.get(other_three.provider_id).raw_state == "queued"  # type: ignore[union-attr]
        prov.destroy(five.provider_id)
        prov.destroy(other_three.provider_id)
        agent.run_once()
        six = prov.create(sized("six", 6))
        assert six.raw_state == "assigned"
        agent.run_once()
        assert engine.gpus_of(six.provider_id) == [f"GPU-box6.lab-{i}" for i in range(6)]
        assert prov.get(six.provider_id).hourly_rate == pytest.approx(7.2)  # type: ignore[union-attr]

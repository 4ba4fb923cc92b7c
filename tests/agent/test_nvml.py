"""Discovery through NVML, driven by a fake module with pynvml's function names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudarb.agent.discovery import DiscoveryConfig, discover_host
from cloudarb.agent.nvml import NvmlReader, NvmlUnavailable
from tests.agent.fake_nvml import FakeGpu, FakeMig, FakeNvml
from tests.agent.nvsmi_fixtures import CAPTURES, install_fake_nvidia_smi


def _mig_h100() -> FakeGpu:
    return FakeGpu(
        "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559, used_mib=59, util=None, mig_mode=1,
        mig_slots={0: FakeMig("MIG-0", "NVIDIA H100 80GB HBM3 MIG 3g.40gb", 40448),
                   3: FakeMig("MIG-3", "NVIDIA H100 80GB HBM3 MIG 1g.10gb", 9984)},
    )


def test_nvml_reads_gpus_and_mig_devices() -> None:
    nvml = FakeNvml([FakeGpu("GPU-bbbb", "NVIDIA A100-SXM4-40GB", 40960, power_mw=None, mig_mode=None),
                     _mig_h100()])
    host = discover_host(DiscoveryConfig(source="nvml", nvml=nvml))
    assert host.gpu_error is None and nvml.initialized == 0  # init and shutdown paired
    a100, h100 = host.gpus
    assert (a100.index, a100.model, a100.memory_total_mib, a100.power_w, a100.mig_mode) == (
        0, "A100 40GB SXM", 40960, None, None)
    assert (a100.driver_version, a100.cuda_version, a100.temperature_c, a100.utilization_pct) == (
        "590.48.01", "13.1", 40.0, 5.0)
    assert (h100.model, h100.mig_mode, h100.utilization_pct, h100.memory_used_mib, h100.power_w) == (
        "H100 SXM", "enabled", None, 59, 70.0)
    assert [(m.index, m.uuid, m.profile, m.memory_total_mib) for m in h100.mig_devices] == [
        (0, "MIG-0", "3g.40gb", 40448), (1, "MIG-3", "1g.10gb", 9984)]


def test_missing_library_is_no_gpu() -> None:
    with pytest.raises(NvmlUnavailable, match="library not found"):
        NvmlReader(FakeNvml([], missing_library=True)).discover()
    host = discover_host(DiscoveryConfig(source="nvml", nvml=FakeNvml([], missing_library=True)))
    assert host.gpus == [] and host.gpu_error == "no GPU: NVML library not found (no NVIDIA driver installed)"


def test_nvml_missing_falls_back_to_nvidia_smi(tmp_path: Path) -> None:
    exe = install_fake_nvidia_smi(tmp_path / "bin", CAPTURES[0])
    host = discover_host(DiscoveryConfig(nvml=FakeNvml([], missing_library=True), nvidia_smi=str(exe)))
    assert host.gpu_error is None and len(host.gpus) == 1


def test_no_driver_at_all_is_no_gpu_not_a_crash(tmp_path: Path) -> None:
    host = discover_host(DiscoveryConfig(nvml=FakeNvml([], missing_library=True),
                                         nvidia_smi=str(tmp_path / "missing" / "nvidia-smi")))
    assert host.gpus == []
    assert host.gpu_error is not None
    assert "NVML library not found" in host.gpu_error and "nvidia-smi not found" in host.gpu_error
    assert host.hostname and host.cpus and host.memory_mib


def test_the_real_pynvml_without_a_driver() -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # a machine with a driver
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    host = discover_host(DiscoveryConfig(source="nvml"))
    assert host.gpus == [] and host.gpu_error is not None and host.gpu_error.startswith("no GPU")

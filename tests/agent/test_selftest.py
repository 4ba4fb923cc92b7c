"""The self-test's verdict on what a probe container printed (the real-GPU cases, without a GPU)."""

from __future__ import annotations

from cloudarb.agent.engines.base import GpuRef
from cloudarb.agent.engines.docker import DockerEngine
from cloudarb.agent.protocol import GpuReport, HostReport, MigDevice
from cloudarb.agent.selftest import judge, probe_gpu

HOST = HostReport(hostname="h", gpus=[
    GpuReport(index=0, uuid="GPU-a", name="NVIDIA H100 80GB HBM3", memory_total_mib=81559),
    GpuReport(index=1, uuid="GPU-b", name="NVIDIA H100 80GB HBM3", memory_total_mib=81559, mig_mode="enabled",
              mig_devices=[MigDevice(index=0, uuid="MIG-b0", profile="3g.40gb")]),
])
GPU0 = GpuRef("GPU-a", "nvidia.com/gpu=0")


def test_nvidia_smi_inside_must_list_only_the_assigned_gpu() -> None:
    ok, detail = judge("VISIBLE=GPU-a\nDEV=/dev/nvidia0\nSMI=GPU 0: NVIDIA H100 (UUID: GPU-a)\nEND\n", GPU0, HOST)
    assert ok and "nvidia-smi inside the probe sees GPU-a" in detail
    leaked = "VISIBLE=all\nDEV=/dev/nvidia0\nDEV=/dev/nvidia1\nSMI=GPU 0: x (UUID: GPU-a)\nSMI=GPU 1: x (UUID: GPU-b)\nEND"
    assert judge(leaked, GPU0, HOST)[0] is False


def test_a_mig_device_is_listed_under_its_gpu() -> None:
    mig = GpuRef("MIG-b0", "nvidia.com/gpu=1:0")
    out = "VISIBLE=MIG-b0\nDEV=/dev/nvidia1\nSMI=GPU 0: x (UUID: GPU-b)\nSMI=  MIG 3g.40gb Device 0: (UUID: MIG-b0)\nEND"
    assert judge(out, mig, HOST)[0] is True
    assert probe_gpu(HOST.model_copy(update={"gpus": HOST.gpus[1:]})) == mig


def test_device_nodes_and_environment_without_nvidia_smi() -> None:
    assert judge("VISIBLE=0\nDEV=/dev/nvidia0\nEND", GPU0, HOST)[0] is True
    assert judge("VISIBLE=void\nDEV=/dev/nvidia0\nEND", GPU0, HOST)[0] is True  # CDI specs set 'void'
    assert judge("VISIBLE=all\nDEV=/dev/nvidia0\nEND", GPU0, HOST)[0] is True  # CUDA images set 'all'
    dropped = judge("VISIBLE=\nEND", GPU0, HOST)
    assert dropped[0] is False and "no GPU device node arrived" in dropped[1]
    other = judge("VISIBLE=1\nDEV=/dev/nvidia1\nEND", GPU0, HOST)
    assert other[0] is False and "another GPU" in other[1]
    two = judge("VISIBLE=0\nDEV=/dev/nvidia0\nDEV=/dev/nvidia1\nEND", GPU0, HOST)
    assert two[0] is False and "more than the one assigned" in two[1]
    assert judge("sh: not found", GPU0, HOST)[0] is False  # the script did not run to its end


def test_docker_pinning_is_chosen_from_the_engine_info() -> None:
    assert DockerEngine._choose({"Runtimes": {"runc": {}, "nvidia": {}}}) == "device_requests"
    assert DockerEngine._choose({"Runtimes": {"runc": {}}, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"]}) == "cdi"
    assert DockerEngine._choose({"Runtimes": {"runc": {}}}) == "device_requests"

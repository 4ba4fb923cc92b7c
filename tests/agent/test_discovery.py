"""GPU discovery from every recorded nvidia-smi capture: parsed directly and through a fake executable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudarb.agent import nvsmi
from cloudarb.agent.discovery import DiscoveryConfig, cdi_names, discover_host
from tests.agent.fake_nvidia_smi import section, sections
from tests.agent.nvsmi_fixtures import capture_files, install_fake_nvidia_smi

# capture file prefix -> (driver name, canonical model, memory MiB, driver, CUDA, MIG mode, MIG profiles)
EXPECTED: dict[str, tuple[str, str | None, int, str, str, str | None, list[str]]] = {
    "linux-x86_64__nvidia-geforce-rtx-4080-super": (
        "NVIDIA GeForce RTX 4080 SUPER", "RTX 4080 Super", 16376, "595.71.05", "13.2", None, []),
    "linux-x86_64__nvidia-h100-80gb-hbm3": (
        "NVIDIA H100 80GB HBM3", "H100 SXM", 81559, "590.48.01", "13.1", "disabled", []),
    "linux-x86_64__nvidia-h100-mig": (
        "NVIDIA H100 80GB HBM3", "H100 SXM", 81559, "590.48.01", "13.1", "enabled",
        ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]),
    "linux-x86_64__nvidia-h200": ("NVIDIA H200", "H200", 143771, "590.48.01", "13.1", "disabled", []),
    "linux-x86_64__nvidia-l40s": ("NVIDIA L40S", "L40S", 46068, "595.80", "13.2", None, []),
    # The RTX 2080 SUPER is not in the GPU identity table: model None, the driver's name kept.
    "windows-x86_64__nvidia-geforce-rtx-2080-super": (
        "NVIDIA GeForce RTX 2080 SUPER", None, 8192, "591.86", "13.1", None, []),
}


def _expected(capture: Path) -> tuple[str, str | None, int, str, str, str | None, list[str]]:
    return EXPECTED[capture.name.rsplit("__", 1)[0]]


CAPTURES = capture_files()


def test_every_capture_has_an_expectation() -> None:
    assert len(CAPTURES) >= 6
    assert {c.name.rsplit("__", 1)[0] for c in CAPTURES} == set(EXPECTED)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("phase", ["idle", "load"])
def test_capture_files_parse_directly(capture: Path, phase: str) -> None:
    name, _model, memory, driver, cuda, mig_mode, profiles = _expected(capture)
    parts = sections(capture.read_text())
    # The capture's CSV has a header with units and values with units ("81559 MiB", "71.15 W").
    rows = nvsmi.parse_query_csv(section(parts, f"{phase} :: query-gpu"))
    listing = nvsmi.parse_list(section(parts, "capabilities :: list (-L)"))
    assert nvsmi.parse_cuda_version(section(parts, "capabilities :: version")) == cuda
    assert nvsmi.parse_cuda_version(section(parts, f"{phase} :: nvidia-smi (default table)")) == cuda
    assert nvsmi.parse_cuda_version(section(parts, f"{phase} :: query (-q)")) == cuda
    assert nvsmi.parse_driver_version(section(parts, f"{phase} :: nvidia-smi (default table)")) == driver
    nvsmi.add_mig_memory(listing, nvsmi.parse_mig_memory(section(parts, f"{phase} :: nvidia-smi (default")))
    [gpu] = nvsmi.build_reports(rows, listing, cuda_version=cuda)
    assert (gpu.index, gpu.name, gpu.memory_total_mib, gpu.driver_version) == (0, name, memory, driver)
    assert gpu.uuid.startswith("GPU-") and gpu.pci_bus_id and gpu.pci_bus_id.count(":") == 2
    assert gpu.mig_mode == mig_mode
    assert [m.profile for m in gpu.mig_devices] == profiles
    assert gpu.temperature_c is not None and gpu.power_w is not None and gpu.power_w > 0
    assert gpu.memory_used_mib is not None and gpu.memory_used_mib < memory
    if mig_mode == "enabled":  # utilization.gpu is [N/A] on a GPU with MIG enabled
        assert gpu.utilization_pct is None
        assert all(m.uuid.startswith("MIG-") for m in gpu.mig_devices)
        assert [m.memory_total_mib for m in gpu.mig_devices] == [40448, 20096, 9984, 9984]
    else:
        assert gpu.utilization_pct is not None


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_through_a_fake_nvidia_smi_executable(capture: Path, tmp_path: Path) -> None:
    name, model, memory, driver, cuda, mig_mode, profiles = _expected(capture)
    exe = install_fake_nvidia_smi(tmp_path / "bin", capture, copies=2)
    host = discover_host(DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(exe)))
    assert host.gpu_error is None
    assert [g.index for g in host.gpus] == [0, 1]
    assert len({g.uuid for g in host.gpus}) == 2
    for gpu in host.gpus:
        assert (gpu.name, gpu.model, gpu.memory_total_mib) == (name, model, memory)
        assert (gpu.driver_version, gpu.cuda_version, gpu.mig_mode) == (driver, cuda, mig_mode)
        assert [m.profile for m in gpu.mig_devices] == profiles
    names = cdi_names(host)
    assert names[host.gpus[1].uuid] == "nvidia.com/gpu=1"
    if profiles:
        assert names[host.gpus[1].mig_devices[2].uuid] == "nvidia.com/gpu=1:2"
        assert len(names) == 2 + 2 * len(profiles)


def test_windows_line_endings_and_units_without_header() -> None:
    text = ("0, GPU-abc, NVIDIA L40S, 46068 MiB, 0 MiB, 595.80, [Not Supported], 63, [N/A], "
            "00000000:01:00.0, [N/A]\r\n\r\n")
    [row] = nvsmi.parse_query_csv(text)
    [gpu] = nvsmi.build_reports([row], [], cuda_version=None)
    assert (gpu.memory_total_mib, gpu.utilization_pct, gpu.power_w, gpu.mig_mode) == (46068, None, None, None)
    with pytest.raises(nvsmi.NvsmiError, match="3 values"):
        nvsmi.parse_query_csv("0, GPU-abc, x\n")


def test_an_old_driver_rejecting_a_field_is_queried_with_the_core_fields(tmp_path: Path) -> None:
    exe = tmp_path / "nvidia-smi"
    exe.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  *mig.mode*) echo \'Field "mig.mode.current" is not a valid field to query.\'; exit 2;;\n'
        "  --query-gpu=*) echo '0, GPU-1234, Tesla T4, 15360, 3, 470.82.01';;\n"
        "  -L) echo 'GPU 0: Tesla T4 (UUID: GPU-1234)';;\n"
        "  --version) echo 'unknown option'; exit 1;;\n"
        "  *) echo '| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |';;\n"
        "esac\n"
    )
    exe.chmod(0o755)
    host = discover_host(DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(exe)))
    [gpu] = host.gpus
    assert (gpu.name, gpu.model, gpu.cuda_version, gpu.driver_version, gpu.mig_mode) == (
        "Tesla T4", "T4", "11.4", "470.82.01", None)


def test_a_failing_nvidia_smi_is_reported(tmp_path: Path) -> None:
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver'\nexit 9\n")
    exe.chmod(0o755)
    host = discover_host(DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(exe)))
    assert host.gpus == [] and host.gpu_error is not None and "could not communicate" in host.gpu_error


def test_report_is_json_serializable(tmp_path: Path) -> None:
    exe = install_fake_nvidia_smi(tmp_path / "bin", CAPTURES[0])
    host = discover_host(DiscoveryConfig(source="nvidia-smi", nvidia_smi=str(exe)))
    assert json.loads(host.model_dump_json())["gpus"][0]["uuid"].startswith("GPU-")

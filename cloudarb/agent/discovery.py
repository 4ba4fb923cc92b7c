"""What the agent reports about its host: the machine, and each GPU from NVML or ``nvidia-smi``.

NVML comes first; when it cannot start (no library, no driver) ``nvidia-smi`` is tried; when that is
absent too, the host is reported with no GPU and the reason in ``gpu_error``. Each GPU's driver name
('NVIDIA H100 80GB HBM3') is resolved to the canonical model of the GPU identity table
(``ingestion.gpus``, which imports only the table) using its memory to pick the variant.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cloudarb.agent.nvml import NvmlReader, NvmlUnavailable, load_nvml
from cloudarb.agent.nvsmi import NvidiaSmi, NvsmiError
from cloudarb.agent.protocol import GpuReport, HostReport
from ingestion.gpus import resolve_gpu

Source = Literal["auto", "nvml", "nvidia-smi"]
AGENT_VERSION = "0.1.0"


@dataclass(slots=True)
class DiscoveryConfig:
    """Where GPUs are read from. ``nvml`` is a module object (None: import pynvml when needed)."""

    source: Source = "auto"
    nvml: Any = None
    nvidia_smi: str = "nvidia-smi"


def resolve_model(gpu: GpuReport) -> str | None:
    """The canonical model for a driver's GPU name, None when the table does not know it."""
    vram_gb = gpu.memory_total_mib / 1024 if gpu.memory_total_mib else None
    match = resolve_gpu(gpu.name, vram_gb=vram_gb)
    return match.model if match.known else None


def _memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}".strip()


def read_gpus(config: DiscoveryConfig) -> tuple[list[GpuReport], str | None]:
    """(GPUs, why none could be read) from the configured source."""
    errors: list[str] = []
    if config.source in ("auto", "nvml"):
        try:
            return NvmlReader(config.nvml if config.nvml is not None else load_nvml()).discover(), None
        except NvmlUnavailable as exc:
            errors.append(str(exc))
        except ValueError as exc:
            errors.append(f"NVML reported an unusable value: {exc}")
    if config.source in ("auto", "nvidia-smi"):
        try:
            return NvidiaSmi(config.nvidia_smi).discover(), None
        except NvsmiError as exc:
            errors.append(str(exc))
        except ValueError as exc:  # a value out of the protocol's range: report it, do not crash the agent
            errors.append(f"nvidia-smi reported an unusable value: {exc}")
    return [], "no GPU: " + "; ".join(errors)


def discover_host(config: DiscoveryConfig | None = None) -> HostReport:
    """The host and its GPUs (each with its canonical model). Never raises for a missing driver."""
    gpus, error = read_gpus(config or DiscoveryConfig())
    resolved = [gpu.model_copy(update={"model": resolve_model(gpu)}) for gpu in gpus]
    uname = platform.uname()
    return HostReport(
        hostname=socket.gethostname() or uname.node or "unknown",
        os=_os_name(),
        kernel=uname.release,
        cpus=os.cpu_count(),
        memory_mib=_memory_mib(),
        agent_version=AGENT_VERSION,
        gpus=resolved,
        gpu_error=error,
    )


def cdi_names(host: HostReport) -> dict[str, str]:
    """GPU or MIG UUID -> its CDI device name (``nvidia.com/gpu=0``, MIG ``nvidia.com/gpu=0:1``)."""
    names: dict[str, str] = {}
    for gpu in host.gpus:
        names[gpu.uuid] = f"nvidia.com/gpu={gpu.index}"
        for mig in gpu.mig_devices:
            names[mig.uuid] = f"nvidia.com/gpu={gpu.index}:{mig.index}"
    return names

"""GPU discovery through NVML (the ``pynvml`` module of nvidia-ml-py), the agent's first choice.

The NVML module is passed in (``load_nvml()`` imports the real one), so tests drive this code with
an object carrying the same function names. On a host without a driver ``nvmlInit`` raises
``NVMLError_LibraryNotFound`` (value 12): that is reported as "no GPU", never a crash. A query one
GPU does not support (``NVMLError_NotSupported``) leaves that field None.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from cloudarb.agent.protocol import GpuReport, MigDevice

NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_TEMPERATURE_GPU = 0
NVML_DEVICE_MIG_ENABLE = 1
_MIB = 1024 * 1024

T = TypeVar("T")


class NvmlUnavailable(RuntimeError):
    """NVML could not be used on this host (no library, no driver, init failed)."""


def load_nvml() -> Any:
    """The real ``pynvml`` module; NvmlUnavailable when nvidia-ml-py is not installed."""
    try:
        import pynvml
    except ImportError as exc:  # the agent extra is not installed
        raise NvmlUnavailable("nvidia-ml-py is not installed (pip install 'cloudarb[agent]')") from exc
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cuda_text(version: int) -> str:
    """NVML's integer CUDA version (13010) as text ("13.1")."""
    return f"{version // 1000}.{(version % 1000) // 10}"


class NvmlReader:
    """Reads every GPU through one NVML module object."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._error: type[BaseException] = getattr(nvml, "NVMLError", Exception)

    def _optional(self, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except self._error:
            return None

    def _init(self) -> None:
        try:
            self.nvml.nvmlInit()
        except self._error as exc:
            value = getattr(exc, "value", None)
            if value == NVML_ERROR_LIBRARY_NOT_FOUND:
                raise NvmlUnavailable("NVML library not found (no NVIDIA driver installed)") from exc
            if value == NVML_ERROR_DRIVER_NOT_LOADED:
                raise NvmlUnavailable("the NVIDIA driver is not loaded") from exc
            raise NvmlUnavailable(f"NVML init failed: {exc}") from exc
        except OSError as exc:  # a broken libnvidia-ml.so
            raise NvmlUnavailable(f"NVML could not be loaded: {exc}") from exc

    def discover(self) -> list[GpuReport]:
        """Every GPU with its MIG devices; NvmlUnavailable when NVML cannot start."""
        self._init()
        try:
            return self._read_all()
        except self._error as exc:
            raise NvmlUnavailable(f"NVML query failed: {exc}") from exc
        finally:
            self._optional(self.nvml.nvmlShutdown)

    def _read_all(self) -> list[GpuReport]:
        nv = self.nvml
        driver = self._optional(lambda: _text(nv.nvmlSystemGetDriverVersion()))
        cuda_int = self._optional(nv.nvmlSystemGetCudaDriverVersion)
        cuda = _cuda_text(int(cuda_int)) if cuda_int else None
        return [self._read_gpu(index, driver, cuda) for index in range(int(nv.nvmlDeviceGetCount()))]

    def _read_gpu(self, index: int, driver: str | None, cuda: str | None) -> GpuReport:
        nv = self.nvml
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        memory = self._optional(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
        pci = self._optional(lambda: nv.nvmlDeviceGetPciInfo(handle))
        util = self._optional(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
        power_mw = self._optional(lambda: nv.nvmlDeviceGetPowerUsage(handle))
        temperature = self._optional(lambda: nv.nvmlDeviceGetTemperature(handle, NVML_TEMPERATURE_GPU))
        modes = self._optional(lambda: nv.nvmlDeviceGetMigMode(handle))
        mig_mode: Literal["enabled", "disabled"] | None = None
        if modes is not None:
            current = modes[0] if isinstance(modes, list | tuple) else modes
            mig_mode = "enabled" if int(current) == NVML_DEVICE_MIG_ENABLE else "disabled"
        return GpuReport(
            index=index,
            uuid=_text(nv.nvmlDeviceGetUUID(handle)),
            name=_text(nv.nvmlDeviceGetName(handle)),
            memory_total_mib=int(memory.total) // _MIB if memory is not None else 0,
            memory_used_mib=int(memory.used) // _MIB if memory is not None else None,
            pci_bus_id=_text(pci.busId) if pci is not None else None,
            driver_version=driver,
            cuda_version=cuda,
            utilization_pct=float(util.gpu) if util is not None else None,
            temperature_c=float(temperature) if temperature is not None else None,
            power_w=power_mw / 1000.0 if power_mw is not None else None,
            mig_mode=mig_mode,
            mig_devices=self._read_migs(handle) if mig_mode == "enabled" else [],
        )

    def _read_migs(self, handle: Any) -> list[MigDevice]:
        nv = self.nvml
        slots = self._optional(lambda: int(nv.nvmlDeviceGetMaxMigDeviceCount(handle))) or 0
        devices: list[MigDevice] = []
        for slot in range(slots):
            mig = self._optional(partial(nv.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot))
            if mig is None:  # an empty slot (NVMLError_NotFound)
                continue
            memory = self._optional(partial(nv.nvmlDeviceGetMemoryInfo, mig))
            raw_name = self._optional(partial(nv.nvmlDeviceGetName, mig))
            name = _text(raw_name) if raw_name is not None else ""
            profile = name.rsplit("MIG ", 1)[1].strip() if "MIG " in name else ""
            devices.append(MigDevice(
                index=len(devices),
                uuid=_text(nv.nvmlDeviceGetUUID(mig)),
                profile=profile,
                memory_total_mib=int(memory.total) // _MIB if memory is not None else None,
            ))
        return devices

"""A fake NVML module: the function names of pynvml over a table of GPUs (for discovery tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_LIBRARY_NOT_FOUND = 12


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class FakeMig:
    uuid: str
    name: str
    total_mib: int


@dataclass
class FakeGpu:
    uuid: str
    name: str
    total_mib: int
    used_mib: int = 0
    bus_id: str = "00000000:01:00.0"
    util: int | None = 5
    temp: int = 40
    power_mw: int | None = 70000
    mig_mode: int | None = 0
    mig_slots: dict[int, FakeMig] = field(default_factory=dict)
    max_mig: int = 7


class FakeNvml:
    """Same function names as pynvml; ``missing_library`` makes nvmlInit fail as on a host without a driver."""

    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu], *, missing_library: bool = False, driver: str = "590.48.01",
                 cuda: int = 13010) -> None:
        self.gpus, self.missing_library, self.driver, self.cuda = gpus, missing_library, driver, cuda
        self.initialized = 0

    def nvmlInit(self) -> None:
        if self.missing_library:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, h: FakeGpu | FakeMig) -> bytes:
        return h.name.encode()  # old pynvml versions return bytes

    def nvmlDeviceGetUUID(self, h: FakeGpu | FakeMig) -> str:
        return h.uuid

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> Any:
        return SimpleNamespace(busId=h.bus_id)

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu | FakeMig) -> Any:
        used = h.used_mib if isinstance(h, FakeGpu) else 0
        return SimpleNamespace(total=h.total_mib * 1024 * 1024, used=used * 1024 * 1024)

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:
        if h.util is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=h.util, memory=0)

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == 0
        return h.temp

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        if h.power_mw is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return h.power_mw

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        if h.mig_mode is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return [h.mig_mode, h.mig_mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: FakeGpu) -> int:
        return h.max_mig

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: FakeGpu, index: int) -> FakeMig:
        if index not in h.mig_slots:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return h.mig_slots[index]

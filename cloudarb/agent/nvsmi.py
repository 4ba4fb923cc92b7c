"""GPU discovery through the ``nvidia-smi`` command, for hosts where NVML cannot be loaded.

Three outputs are read, each in its documented format, tolerant of what real drivers vary:
- ``--query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits``: one CSV row per GPU. The parser also
  takes a header row (units in brackets: ``memory.total [MiB]``) and values carrying units
  (``81559 MiB``, ``71.15 W``, ``0 %``), so a full ``--format=csv`` capture reads the same.
  ``[N/A]``, ``[Not Supported]`` and any other bracketed note become None.
- ``-L``: ``GPU 0: <name> (UUID: GPU-...)`` lines, each followed by its MIG devices
  (``  MIG 3g.40gb     Device  0: (UUID: MIG-...)``).
- ``--version`` (drivers >= 535) or the plain summary table or ``-q``: the CUDA version.

Windows line endings and blank lines are accepted everywhere.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Literal

from cloudarb.agent.protocol import GpuReport, MigDevice

QUERY_FIELDS: tuple[str, ...] = (
    "index", "uuid", "name", "memory.total", "memory.used", "driver_version", "utilization.gpu",
    "temperature.gpu", "power.draw", "pci.bus_id", "mig.mode.current",
)
"""The fields the agent queries, in this order."""

CORE_FIELDS: tuple[str, ...] = ("index", "uuid", "name", "memory.total", "memory.used", "driver_version")
"""The fields every driver knows; queried alone when an old driver rejects one of QUERY_FIELDS."""

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)\s*$")
_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)")
_CUDA = re.compile(r"CUDA Version\s*:\s*(\d+(?:\.\d+)*)", re.IGNORECASE)
_DRIVER = re.compile(r"Driver Version\s*:\s*(\d+(?:\.\d+)*)", re.IGNORECASE)
_MIG_TABLE_ROW = re.compile(r"^\|\s*(\d+)\s+\d+\s+\d+\s+(\d+)\s*\|\s*\d+\s*MiB\s*/\s*(\d+)\s*MiB")


class NvsmiError(RuntimeError):
    """nvidia-smi is missing, failed, or printed something that is not its documented format."""


def clean_value(raw: str | None) -> str | None:
    """A field's text, or None for an empty cell, ``N/A`` or a bracketed note such as ``[N/A]``."""
    if raw is None:
        return None
    text = raw.strip()
    if not text or text.upper() == "N/A" or (text.startswith("[") and text.endswith("]")):
        return None
    return text


def parse_number(raw: str | None) -> float | None:
    """``81559``, ``81559 MiB``, ``71.15 W``, ``0 %`` -> the number; None for missing or not a number."""
    text = clean_value(raw)
    if text is None:
        return None
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


def _field_name(header_cell: str) -> str:
    return header_cell.split("[", 1)[0].strip()


def parse_query_csv(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> list[dict[str, str | None]]:
    """The rows of a ``--query-gpu`` CSV as field -> cleaned value.

    With a header row the columns are named by it (units in brackets dropped); without one they are
    ``fields`` in order, and a row with a different number of cells is an error.
    """
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    rows = list(csv.reader(lines, skipinitialspace=True))
    if not rows:
        return []
    names = list(fields)
    first = [_field_name(cell) for cell in rows[0]]
    if "uuid" in first or "index" in first:
        names, rows = first, rows[1:]
    parsed: list[dict[str, str | None]] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(names):
            raise NvsmiError(f"nvidia-smi query row {number} has {len(row)} values for {len(names)} fields")
        parsed.append({name: clean_value(value) for name, value in zip(names, row, strict=True)})
    return parsed


@dataclass(slots=True)
class ListedGpu:
    """One ``GPU n:`` line of ``nvidia-smi -L`` with the MIG devices listed under it."""

    index: int
    name: str
    uuid: str
    mig_devices: list[MigDevice] = field(default_factory=list)


def parse_list(text: str) -> list[ListedGpu]:
    """The GPUs and their MIG devices from ``nvidia-smi -L``."""
    gpus: list[ListedGpu] = []
    for line in text.replace("\r", "").split("\n"):
        gpu = _GPU_LINE.match(line)
        if gpu:
            gpus.append(ListedGpu(int(gpu.group(1)), gpu.group(2), gpu.group(3)))
            continue
        mig = _MIG_LINE.match(line)
        if mig and gpus:
            gpus[-1].mig_devices.append(MigDevice(index=int(mig.group(2)), uuid=mig.group(3), profile=mig.group(1)))
    return gpus


def parse_mig_memory(table: str) -> dict[tuple[int, int], int]:
    """(GPU index, MIG device index) -> memory total in MiB, from the summary table's "MIG devices"."""
    memory: dict[tuple[int, int], int] = {}
    for line in table.replace("\r", "").split("\n"):
        match = _MIG_TABLE_ROW.match(line)
        if match:
            memory[(int(match.group(1)), int(match.group(2)))] = int(match.group(3))
    return memory


def add_mig_memory(listing: list[ListedGpu], memory: dict[tuple[int, int], int]) -> None:
    """Fill each listed MIG device's memory from ``parse_mig_memory``."""
    for gpu in listing:
        for mig in gpu.mig_devices:
            mig.memory_total_mib = memory.get((gpu.index, mig.index), mig.memory_total_mib)


def parse_cuda_version(text: str) -> str | None:
    """The CUDA version from ``--version``, the summary table's header or ``-q``."""
    match = _CUDA.search(text)
    return match.group(1) if match else None


def parse_driver_version(text: str) -> str | None:
    """The driver version from ``--version``, the summary table's header or ``-q``."""
    match = _DRIVER.search(text)
    return match.group(1) if match else None


def _int(raw: str | None) -> int | None:
    number = parse_number(raw)
    return int(number) if number is not None else None


def _mig_mode(raw: str | None) -> Literal["enabled", "disabled"] | None:
    text = (clean_value(raw) or "").lower()
    if text == "enabled":
        return "enabled"
    return "disabled" if text == "disabled" else None


def build_reports(
    rows: list[dict[str, str | None]], listing: list[ListedGpu], *, cuda_version: str | None,
    driver_version: str | None = None,
) -> list[GpuReport]:
    """GpuReports from the query rows, completed by ``-L`` (MIG devices, names) and the CUDA version.

    The model is left None here; discovery resolves it through the GPU identity table.
    """
    by_uuid = {gpu.uuid: gpu for gpu in listing}
    reports: list[GpuReport] = []
    for position, row in enumerate(rows):
        uuid = row.get("uuid")
        if not uuid:
            raise NvsmiError(f"nvidia-smi reported GPU row {position} without a UUID")
        listed = by_uuid.get(uuid)
        index = _int(row.get("index"))
        utilization = parse_number(row.get("utilization.gpu"))
        power = parse_number(row.get("power.draw"))
        mig_mode = _mig_mode(row.get("mig.mode.current"))
        reports.append(GpuReport(
            index=index if index is not None else (listed.index if listed else position),
            uuid=uuid,
            name=row.get("name") or (listed.name if listed else ""),
            memory_total_mib=_int(row.get("memory.total")) or 0,
            memory_used_mib=_int(row.get("memory.used")),
            pci_bus_id=row.get("pci.bus_id"),
            driver_version=row.get("driver_version") or driver_version,
            cuda_version=cuda_version,
            utilization_pct=utilization if utilization is not None and 0 <= utilization <= 100 else None,
            temperature_c=parse_number(row.get("temperature.gpu")),
            power_w=power if power is not None and power >= 0 else None,
            mig_mode=mig_mode,
            mig_devices=list(listed.mig_devices) if listed and mig_mode != "disabled" else [],
        ))
    return reports


@dataclass(slots=True)
class NvidiaSmi:
    """Runs the ``nvidia-smi`` executable (a path or a name found on PATH)."""

    executable: str = "nvidia-smi"
    timeout_s: float = 20.0

    def available(self) -> str | None:
        """The resolved path, or None when no such executable exists."""
        return shutil.which(self.executable)

    def run(self, *args: str) -> str:
        path = self.available()
        if path is None:
            raise NvsmiError(f"{self.executable} not found (no NVIDIA driver installed?)")
        try:
            done = subprocess.run(
                [path, *args], capture_output=True, text=True, timeout=self.timeout_s, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NvsmiError(f"{self.executable} {' '.join(args)} failed: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stdout.strip() or done.stderr.strip()).splitlines()
            raise NvsmiError(
                f"{self.executable} {' '.join(args)} exited {done.returncode}: {detail[0] if detail else ''}"
            )
        return done.stdout

    def query(self) -> list[dict[str, str | None]]:
        """The query rows; retried with CORE_FIELDS when the driver rejects a field."""
        try:
            out = self.run(f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits")
            return parse_query_csv(out, QUERY_FIELDS)
        except NvsmiError as first:
            if "not found" in str(first):
                raise
            out = self.run(f"--query-gpu={','.join(CORE_FIELDS)}", "--format=csv,noheader,nounits")
            return parse_query_csv(out, CORE_FIELDS)

    def versions(self) -> tuple[str | None, str | None]:
        """(driver, CUDA) from ``--version``, else from the summary table."""
        for args in (("--version",), ()):
            try:
                text = self.run(*args)
            except NvsmiError:
                continue
            cuda = parse_cuda_version(text)
            if cuda is not None:
                return parse_driver_version(text), cuda
        return None, None

    def discover(self) -> list[GpuReport]:
        """Every GPU with its MIG devices; NvsmiError when nvidia-smi is absent or fails."""
        rows = self.query()
        try:
            listing = parse_list(self.run("-L"))
        except NvsmiError:
            listing = []
        if any(gpu.mig_devices for gpu in listing):
            try:
                add_mig_memory(listing, parse_mig_memory(self.run()))
            except NvsmiError:
                pass
        driver, cuda = self.versions()
        return build_reports(rows, listing, cuda_version=cuda, driver_version=driver)

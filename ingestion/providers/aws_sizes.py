"""EC2 GPU instance sizes: GPUs, vCPUs and memory (GiB), from AWS's "Accelerated computing"
instance type pages. The Price List carries these as attributes; spot price history does not, so
spot quotes of sizes missing from the same fetch's price list are completed from here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class AwsSize(NamedTuple):
    gpus: int
    vcpus: int
    ram_gb: float


def _family(prefix: str, sizes: Mapping[str, tuple[int, int, float]]) -> dict[str, AwsSize]:
    return {f"{prefix}.{size}": AwsSize(*spec) for size, spec in sizes.items()}


_SINGLE = {"xlarge": (1, 4, 16), "2xlarge": (1, 8, 32), "4xlarge": (1, 16, 64), "8xlarge": (1, 32, 128),
           "16xlarge": (1, 64, 256), "12xlarge": (4, 48, 192), "24xlarge": (4, 96, 384), "48xlarge": (8, 192, 768)}

AWS_GPU_SIZES: dict[str, AwsSize] = {
    **_family("p6-b200", {"48xlarge": (8, 192, 2048)}),
    **_family("p5en", {"48xlarge": (8, 192, 2048)}),
    **_family("p5e", {"48xlarge": (8, 192, 2048)}),
    **_family("p5", {"48xlarge": (8, 192, 2048), "4xlarge": (1, 16, 256)}),
    **_family("p4de", {"24xlarge": (8, 96, 1152)}),
    **_family("p4d", {"24xlarge": (8, 96, 1152)}),
    **_family("p3dn", {"24xlarge": (8, 96, 768)}),
    **_family("p3", {"2xlarge": (1, 8, 61), "8xlarge": (4, 32, 244), "16xlarge": (8, 64, 488)}),
    **_family("g6e", {"xlarge": (1, 4, 32), "2xlarge": (1, 8, 64), "4xlarge": (1, 16, 128),
                      "8xlarge": (1, 32, 256), "16xlarge": (1, 64, 512), "12xlarge": (4, 48, 384),
                      "24xlarge": (4, 96, 768), "48xlarge": (8, 192, 1536)}),
    **_family("g6", _SINGLE),
    **_family("g5", _SINGLE),
    **_family("g4dn", {"xlarge": (1, 4, 16), "2xlarge": (1, 8, 32), "4xlarge": (1, 16, 64),
                       "8xlarge": (1, 32, 128), "16xlarge": (1, 64, 256), "12xlarge": (4, 48, 192),
                       "metal": (8, 96, 384)}),
}

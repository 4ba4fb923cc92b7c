"""Default relative throughput per GPU model and workload type (A100 80GB = 1.0).

Source and method (recorded here because the numbers are data, not code):
vendor data-sheet figures for each GPU, namely dense FP16/BF16 tensor-core TFLOPS (no sparsity) and
memory bandwidth in GB/s, from the public NVIDIA and AMD product data sheets (A100, H100, H200,
B200, L40S, L40, L4, T4, V100, A10, A40, RTX A6000, GeForce RTX 3090/4090/5090, Instinct
MI250X/MI300X). Published training and inference benchmarks (MLPerf, Lambda's GPU benchmarks) land
between a GPU's compute ratio and its bandwidth ratio to the A100, because real jobs are partly
memory-bound. So the default relative throughput is a weighted geometric mean

    rel(model, type) = (tflops / 312) ** a_type * (bandwidth / 2039) ** (1 - a_type)

with a = 0.6 for training and batch (compute-leaning) and a = 0.3 for inference (LLM decoding is
bandwidth-bound). The figures are approximate; a fitted table from the forecasting package, or a
workload's own ``performance`` dict, overrides them. The application passes the data-sheet figures of
its GPU identity table in ``Problem.gpu_figures``; they win over this table (the optimizer never reads
that table itself). Models in neither get ``UNKNOWN_MODEL_PERFORMANCE`` so they stay usable but
unattractive. The table covers every canonical name of the identity table as of this writing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from optimizer.schemas import GpuFigures

#: model key -> (dense FP16/BF16 tensor TFLOPS, memory bandwidth GB/s), from vendor data sheets; keys are
#: the canonical names of the GPU identity table squeezed by ``canonical_model`` ('A100 80GB SXM' ->
#: 'A10080GBSXM'). GeForce cards: FP16 tensor with FP32 accumulate (what training uses; half the
#: FP16-accumulate figure). Cards without tensor cores (Pascal, Maxwell, Kepler, GTX): their FP32 TFLOPS,
#: the rate a framework gets from them. Per GPU for multi-GPU boards (K80, A16, M60).
DATASHEET: Final[Mapping[str, tuple[float, float]]] = {
    "B300": (2250.0, 8000.0),
    "GB200": (2500.0, 8000.0),
    "B200": (2250.0, 8000.0),
    "H200": (989.0, 4800.0),
    "GH200": (989.0, 4000.0),
    "H100SXM": (989.0, 3350.0),
    "H100NVL": (835.0, 3900.0),
    "H100PCIE": (756.0, 2000.0),
    "H800": (989.0, 3350.0),
    "A10080GBSXM": (312.0, 2039.0),
    "A10080GBPCIE": (312.0, 1935.0),
    "A10040GB": (312.0, 1555.0),
    "A800": (312.0, 2039.0),
    "A40": (150.0, 696.0),
    "A30": (165.0, 933.0),
    "A16": (36.0, 200.0),
    "A10": (125.0, 600.0),
    "A10G": (125.0, 600.0),
    "A2": (18.0, 200.0),
    "L40S": (362.0, 864.0),
    "L40": (181.0, 864.0),
    "L4": (121.0, 300.0),
    "T4": (65.0, 320.0),
    "T4G": (65.0, 320.0),
    "V100": (125.0, 900.0),
    "V10032GB": (125.0, 900.0),
    "P100": (19.0, 732.0),
    "P4": (5.5, 192.0),
    "K80": (4.1, 240.0),
    "M60": (4.8, 160.0),
    "RTXPRO6000": (504.0, 1792.0),
    "RTX6000ADA": (364.0, 960.0),
    "RTX5880ADA": (300.0, 960.0),
    "RTX5000ADA": (261.0, 576.0),
    "RTX4000ADA": (107.0, 360.0),
    "RTX6000": (130.0, 672.0),
    "RTXA6000": (155.0, 768.0),
    "RTXA5000": (111.0, 768.0),
    "RTXA4500": (95.0, 640.0),
    "RTXA4000": (77.0, 448.0),
    "RTX5090": (210.0, 1792.0),
    "RTX5080": (113.0, 960.0),
    "RTX5070TI": (88.0, 896.0),
    "RTX5070": (62.0, 672.0),
    "RTX5060TI": (47.0, 448.0),
    "RTX4090": (165.0, 1008.0),
    "RTX4080SUPER": (104.0, 736.0),
    "RTX4080": (97.0, 717.0),
    "RTX4070TISUPER": (88.0, 672.0),
    "RTX4070TI": (80.0, 504.0),
    "RTX4070": (58.0, 504.0),
    "RTX4060TI": (44.0, 288.0),
    "RTX4060": (30.0, 272.0),
    "RTX3090TI": (80.0, 1008.0),
    "RTX3090": (71.0, 936.0),
    "RTX3080TI": (68.0, 912.0),
    "RTX3080": (60.0, 760.0),
    "RTX3070": (41.0, 448.0),
    "RTX3060TI": (32.0, 448.0),
    "RTX3060": (26.0, 360.0),
    "RTX2080TI": (54.0, 616.0),
    "GTX1080TI": (11.3, 484.0),
    "MI300X": (1307.0, 5300.0),
    "MI250X": (383.0, 3277.0),
    "RADEONPROV520": (14.7, 512.0),
}

#: Short names seen in catalogs -> data-sheet key.
ALIASES: Final[Mapping[str, str]] = {
    "H100": "H100SXM",
    "H10080GB": "H100SXM",
    "H100SXM5": "H100SXM",
    "A100": "A10080GBSXM",
    "A10080GB": "A10080GBSXM",
    "A100SXM": "A10080GBSXM",
    "A100SXM4": "A10080GBSXM",
    "A10080G": "A10080GBSXM",
    "A100SXM480GB": "A10080GBSXM",
    "A100PCIE": "A10040GB",
    "A10080GBPCIE": "A10080GBPCIE",
    "A100PCIE80GB": "A10080GBPCIE",
    "A10040G": "A10040GB",
    "A6000": "RTXA6000",
    "RTX6000ADAGENERATION": "RTX6000ADA",
    "V10016GB": "V100",
    "TESLAT4": "T4",
    "TESLAV100": "V100",
    "TESLAK80": "K80",
    "TESLAP100": "P100",
    "TESLAP4": "P4",
    "TESLAM60": "M60",
    "GEFORCERTX4090": "RTX4090",
    "GEFORCERTX3090": "RTX3090",
    "GEFORCERTX5090": "RTX5090",
}

COMPUTE_WEIGHT: Final[Mapping[str, float]] = {"training": 0.6, "batch": 0.6, "inference": 0.3}
REFERENCE: Final[tuple[float, float]] = DATASHEET["A10080GBSXM"]
UNKNOWN_MODEL_PERFORMANCE: Final[float] = 0.25


def canonical_model(name: str) -> str:
    """Normalize a GPU model name to a table key: 'NVIDIA H100 SXM5 80GB' -> 'H100SXM'."""
    key = re.sub(r"[^A-Z0-9]", "", name.upper())
    key = key.removeprefix("NVIDIA").removeprefix("AMD").removeprefix("INSTINCT").removeprefix("TESLA")
    if key in ALIASES:
        return ALIASES[key]
    if key in DATASHEET:
        return key
    if key in ALIASES:
        return ALIASES[key]
    for suffix in ("80GB", "40GB", "48GB", "24GB", "16GB", "32GB", "141GB", "192GB"):
        stem = key.removesuffix(suffix)
        if stem != key:
            if stem + suffix in DATASHEET:
                return stem + suffix
            if stem in DATASHEET:
                return stem
            if stem in ALIASES:
                return ALIASES[stem]
    return key


def figures_for(model: str, given: Mapping[str, GpuFigures] | None = None) -> tuple[float, float] | None:
    """(TFLOPS, GB/s) of a model: the caller's figures (looked up by canonical key) win over the table."""
    key = canonical_model(model)
    for name, fig in (given or {}).items():
        if canonical_model(name) == key:
            return fig.fp16_tflops, fig.memory_bandwidth_gbps
    return DATASHEET.get(key)


def relative_throughput(model: str, workload_type: str, given: Mapping[str, GpuFigures] | None = None) -> float:
    """Default throughput of one GPU of ``model`` relative to one A100 80GB SXM for ``workload_type``;
    ``given`` are data-sheet figures from the caller's GPU table (they win over the built-in table).
    Models in neither get ``UNKNOWN_MODEL_PERFORMANCE``."""
    figures = figures_for(model, given)
    if figures is None:
        return UNKNOWN_MODEL_PERFORMANCE
    a = COMPUTE_WEIGHT.get(workload_type, 0.6)
    tflops, bandwidth = figures
    return float((tflops / REFERENCE[0]) ** a * (bandwidth / REFERENCE[1]) ** (1.0 - a))


def default_table() -> dict[str, dict[str, float]]:
    """The whole default table as data: workload type -> model key -> relative throughput."""
    return {
        wtype: {model: relative_throughput(model, wtype) for model in DATASHEET} for wtype in COMPUTE_WEIGHT
    }

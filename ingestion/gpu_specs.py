"""The GPU identity table: one row per GPU model, the only place GPU names are interpreted.

Each model carries its canonical name, vendor, architecture, memory per GPU (GB) with memory type,
form factor / interconnect, the data-sheet figures a performance model uses (dense FP16/BF16 tensor
TFLOPS without sparsity, memory bandwidth GB/s) and the spellings people and providers use for it.

Sources: the vendors' public product data sheets (NVIDIA data-center, RTX/Quadro and GeForce
architecture whitepapers; AMD Instinct pages). Tensor figures are dense (half of NVIDIA's
"with sparsity" figure); GeForce figures are FP16 with FP32 accumulate, as the whitepapers list them.
A figure we could not confirm from a data sheet is left ``None`` rather than guessed.

``family`` groups the variants a person means by the bare name: "A100" is every A100 (40/80 GB,
SXM/PCIe), "H100" is SXM, PCIe and NVL. ``extra_memory_gb`` lists other memory sizes the same
model ships with (RTX 3060 8/12 GB, GH200 96/144 GB) so that the data-sheet check accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One canonical GPU model and its data-sheet figures."""

    name: str
    vram_gb: float
    vendor: str = "NVIDIA"
    architecture: str = ""
    memory_type: str = ""
    form_factor: str = ""
    fp16_tflops: float | None = None
    memory_bandwidth_gbs: float | None = None
    family: str = ""
    aliases: tuple[str, ...] = ()
    extra_memory_gb: tuple[float, ...] = ()

    @property
    def family_name(self) -> str:
        """The family this model belongs to ('A100' for 'A100 80GB SXM'); its own name if alone."""
        return self.family or self.name

    @property
    def memory_options_gb(self) -> tuple[float, ...]:
        """Every memory size per GPU the data sheet lists for this model."""
        return (self.vram_gb, *self.extra_memory_gb)


def _m(
    name: str, vram: float, arch: str, mem: str, form: str, tflops: float | None, bw: float | None,
    *aliases: str, vendor: str = "NVIDIA", family: str = "", extra: tuple[float, ...] = (),
) -> GpuModel:
    return GpuModel(name, vram, vendor, arch, mem, form, tflops, bw, family, aliases, extra)


_AMD = "AMD"

_TABLE: tuple[GpuModel, ...] = (
    # Blackwell
    _m("B300", 288, "Blackwell Ultra", "HBM3e", "SXM", 2250, 8000, "B300 SXM", "HGX B300"),
    _m("GB200", 186, "Blackwell", "HBM3e", "Superchip", 2500, 8000, "GB200 NVL72"),
    _m("B200", 180, "Blackwell", "HBM3e", "SXM", 2250, 8000, "B200 SXM6", "B200 180GB", "HGX B200"),
    # Hopper
    _m("H200", 141, "Hopper", "HBM3e", "SXM", 989, 4800, "H200 SXM", "H200 SXM5", "H200 141GB",
       "H200 SXM 141GB", "H200 NVLINK", family="H200"),
    _m("H200 NVL", 141, "Hopper", "HBM3e", "PCIe NVL", 835, 4800, family="H200"),
    _m("GH200", 96, "Hopper", "HBM3", "Superchip", 989, 4000, "GH200 96GB", "GH200 480GB",
       extra=(144,)),
    _m("H100 SXM", 80, "Hopper", "HBM3", "SXM", 989, 3350, "H100 SXM5", "H100 80GB", "H100 80GB HBM3",
       "H100 SXM5 80GB", "H100 MEGA", "H100 MEGA 80GB", "H100 80GB MEGA", "H100 NVLINK",
       "H100 SXM NVLINK", "H100 SXM5 NVLINK", family="H100"),
    _m("H100 PCIe", 80, "Hopper", "HBM2e", "PCIe", 756, 2000, "H100 PCIe 80GB", "H100 80GB PCIe",
       family="H100"),
    _m("H100 NVL", 94, "Hopper", "HBM3", "PCIe NVL", 835, 3900, "H100 NVL 94GB", "H100 94GB",
       family="H100"),
    _m("H800", 80, "Hopper", "HBM3", "SXM", 989, 3350, "H800 SXM"),
    # Ampere data center
    _m("A100 80GB SXM", 80, "Ampere", "HBM2e", "SXM", 312, 2039, "A100 SXM4 80GB", "A100 80GB SXM4",
       "A100 80G", "A100 80GB", "A100 SXM 80GB", family="A100"),
    _m("A100 80GB PCIe", 80, "Ampere", "HBM2e", "PCIe", 312, 1935, "A100 PCIe 80GB", "A100X",
       "A100 80G PCIe", family="A100"),
    _m("A100 40GB SXM", 40, "Ampere", "HBM2", "SXM", 312, 1555, "A100 SXM4", "A100 SXM4 40GB",
       "A100 40GB", "A100 40G", "A100 40GB SXM4", family="A100"),
    _m("A100 40GB PCIe", 40, "Ampere", "HBM2", "PCIe", 312, 1555, "A100 PCIe", "A100 PCIe 40GB", "A100 40G PCIe",
       family="A100"),
    _m("A800", 80, "Ampere", "HBM2e", "PCIe", 312, 1935, "A800 PCIe", "A800 80GB"),
    _m("A40", 48, "Ampere", "GDDR6", "PCIe", 149.7, 696),
    _m("A30", 24, "Ampere", "HBM2", "PCIe", 165, 933),
    _m("A16", 16, "Ampere", "GDDR6", "PCIe", 35.9, 200),
    _m("A10", 24, "Ampere", "GDDR6", "PCIe", 125, 600),
    _m("A10G", 24, "Ampere", "GDDR6", "PCIe", 125, 600),
    _m("A2", 16, "Ampere", "GDDR6", "PCIe", 18, 200),
    # Ada / Turing / Volta / Pascal / Kepler / Maxwell data center
    _m("L40S", 48, "Ada Lovelace", "GDDR6", "PCIe", 362, 864),
    _m("L40", 48, "Ada Lovelace", "GDDR6", "PCIe", 181, 864),
    _m("L4", 24, "Ada Lovelace", "GDDR6", "PCIe", 121, 300),
    _m("T4", 16, "Turing", "GDDR6", "PCIe", 65, 320),
    _m("T4G", 16, "Turing", "GDDR6", "PCIe", 65, 320),
    _m("V100 16GB", 16, "Volta", "HBM2", "SXM2/PCIe", 125, 900, "V100", "V100 SXM2", "V100 SXM2 16GB",
       "V100 PCIe", "V100 16G", "V100 FHHL", family="V100"),
    _m("V100 32GB", 32, "Volta", "HBM2", "SXM2/PCIe", 125, 900, "V100 SXM2 32GB", "V100 32G",
       family="V100"),
    _m("P100", 16, "Pascal", "HBM2", "SXM2/PCIe", 18.7, 732, extra=(12,)),
    _m("P4", 8, "Pascal", "GDDR5", "PCIe", None, 192),
    _m("K80", 12, "Kepler", "GDDR5", "PCIe", None, 240),
    _m("M60", 8, "Maxwell", "GDDR5", "PCIe", None, 160),
    # Workstation
    _m("RTX PRO 6000", 96, "Blackwell", "GDDR7", "PCIe", None, 1792, "RTX PRO 6000 WS",
       "RTX PRO 6000 96GB", "RTX PRO 6000 Blackwell", "RTX PRO 6000 SE",
       "RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000 Blackwell Workstation Edition"),
    _m("RTX 6000 Ada", 48, "Ada Lovelace", "GDDR6", "PCIe", 364.2, 960, "RTX 6000 Ada Generation",
       "6000 Ada"),
    _m("RTX 5880 Ada", 48, "Ada Lovelace", "GDDR6", "PCIe", None, 960, "RTX 5880 Ada Generation"),
    _m("RTX 5000 Ada", 32, "Ada Lovelace", "GDDR6", "PCIe", None, 576, "RTX 5000 Ada Generation"),
    _m("RTX 4000 Ada", 20, "Ada Lovelace", "GDDR6", "PCIe", None, 360, "RTX 4000 Ada Generation"),
    _m("RTX 6000", 24, "Turing", "GDDR6", "PCIe", 130.5, 672, "Quadro RTX 6000", "Q RTX 6000"),
    _m("RTX A6000", 48, "Ampere", "GDDR6", "PCIe", 154.8, 768, "A6000"),
    _m("RTX A5000", 24, "Ampere", "GDDR6", "PCIe", 111.1, 768, "A5000"),
    _m("RTX A4500", 20, "Ampere", "GDDR6", "PCIe", None, 640, "A4500"),
    _m("RTX A4000", 16, "Ampere", "GDDR6", "PCIe", 76.7, 448, "A4000"),
    # GeForce
    _m("RTX 5090", 32, "Blackwell", "GDDR7", "PCIe", 209.5, 1792),
    _m("RTX 5080", 16, "Blackwell", "GDDR7", "PCIe", None, 960),
    _m("RTX 5070 Ti", 16, "Blackwell", "GDDR7", "PCIe", None, 896),
    _m("RTX 5070", 12, "Blackwell", "GDDR7", "PCIe", None, 672),
    _m("RTX 5060 Ti", 16, "Blackwell", "GDDR7", "PCIe", None, 448, extra=(8,)),
    _m("RTX 4090", 24, "Ada Lovelace", "GDDR6X", "PCIe", 165.2, 1008),
    _m("RTX 4080 Super", 16, "Ada Lovelace", "GDDR6X", "PCIe", None, 736, "RTX 4080S"),
    _m("RTX 4080", 16, "Ada Lovelace", "GDDR6X", "PCIe", 97.5, 717),
    _m("RTX 4070 Ti Super", 16, "Ada Lovelace", "GDDR6X", "PCIe", None, 672, "RTX 4070S Ti"),
    _m("RTX 4070 Ti", 12, "Ada Lovelace", "GDDR6X", "PCIe", None, 504),
    _m("RTX 4070", 12, "Ada Lovelace", "GDDR6X", "PCIe", None, 504),
    _m("RTX 4060 Ti", 16, "Ada Lovelace", "GDDR6", "PCIe", None, 288, extra=(8,)),
    _m("RTX 4060", 8, "Ada Lovelace", "GDDR6", "PCIe", None, 272),
    _m("RTX 3090 Ti", 24, "Ampere", "GDDR6X", "PCIe", 80, 1008),
    _m("RTX 3090", 24, "Ampere", "GDDR6X", "PCIe", 71, 936),
    _m("RTX 3080 Ti", 12, "Ampere", "GDDR6X", "PCIe", None, 912),
    _m("RTX 3080", 10, "Ampere", "GDDR6X", "PCIe", None, 760, extra=(12,)),
    _m("RTX 3070", 8, "Ampere", "GDDR6", "PCIe", None, 448),
    _m("RTX 3060 Ti", 8, "Ampere", "GDDR6", "PCIe", None, 448),
    _m("RTX 3060", 12, "Ampere", "GDDR6", "PCIe", None, 360, extra=(8,)),
    _m("RTX 2080 Ti", 11, "Turing", "GDDR6", "PCIe", None, 616),
    _m("GTX 1080 Ti", 11, "Pascal", "GDDR5X", "PCIe", None, 484),
    # AMD
    _m("MI300X", 192, "CDNA 3", "HBM3", "OAM", 1307.4, 5300, "MI300X OAM", "Instinct MI300X", vendor=_AMD),
    _m("MI250X", 128, "CDNA 2", "HBM2e", "OAM", 383, 3277, vendor=_AMD),
    _m("MI25", 16, "Vega", "HBM2", "PCIe", 24.6, 484, "Radeon Instinct MI25", vendor=_AMD),
    _m("Radeon Pro V520", 8, "RDNA", "HBM2", "PCIe", None, 512, "V520", vendor=_AMD),
)

GPU_MODELS: dict[str, GpuModel] = {m.name: m for m in _TABLE}
"""Every canonical model by name."""

LEGACY_NAMES: dict[str, str] = {"A100 40GB": "A100 40GB SXM", "V100": "V100 16GB"}
"""Canonical names used before the table split them, mapped to today's name (for stored rows)."""


def gpu_families() -> dict[str, tuple[str, ...]]:
    """Family name -> its canonical models, for families with more than one variant."""
    families: dict[str, list[str]] = {}
    for model in _TABLE:
        if model.family:
            families.setdefault(model.family, []).append(model.name)
    return {name: tuple(members) for name, members in families.items() if len(members) > 1}


def canonical_model(name: str) -> GpuModel:
    """The table row of a canonical (or legacy canonical) name; KeyError names the valid ones."""
    found = GPU_MODELS.get(LEGACY_NAMES.get(name, name))
    if found is None:
        raise KeyError(f"{name!r} is not a canonical GPU model; known: {', '.join(GPU_MODELS)}")
    return found

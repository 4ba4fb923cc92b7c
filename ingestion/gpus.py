"""Canonical GPU model names and the mapping from every provider's spelling to them.

Providers name the same silicon a dozen ways ('H100', 'gpu_1x_h100_sxm5', 'NVIDIA H100 80GB HBM3',
'h100-80gb', 'H100_SXM'...). The optimizer compares offers across providers, so every quote carries
one canonical name. Resolution is deliberately conservative: a name we cannot place is kept (cleaned)
and flagged ``known=False`` so that an operator sees it, instead of being dropped or guessed.

Two spellings are genuinely ambiguous and need context:
- a bare 'A100' is 40 GB unless the per-GPU memory (or the name) says 80 GB;
- 'RTX 6000' is the 24 GB Quadro (Turing) everywhere except GCP, whose 'rtx6000' accelerator on the
  G4 machine family is the 96 GB RTX PRO 6000 (Blackwell).
Form factor comes from the name or the instance type ('pcie', 'sxm', 'nvl').
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuModel:
    """One canonical GPU model: its display name, memory per GPU and vendor."""

    name: str
    vram_gb: float
    vendor: str = "NVIDIA"


_MODELS: tuple[GpuModel, ...] = (
    GpuModel("B300", 288),
    GpuModel("GB200", 186),
    GpuModel("B200", 180),
    GpuModel("H200", 141),
    GpuModel("GH200", 96),
    GpuModel("H100 SXM", 80),
    GpuModel("H100 PCIe", 80),
    GpuModel("H100 NVL", 94),
    GpuModel("H800", 80),
    GpuModel("A100 80GB SXM", 80),
    GpuModel("A100 80GB PCIe", 80),
    GpuModel("A100 40GB", 40),
    GpuModel("A800", 80),
    GpuModel("A40", 48),
    GpuModel("A30", 24),
    GpuModel("A16", 16),
    GpuModel("A10", 24),
    GpuModel("A10G", 24),
    GpuModel("A2", 16),
    GpuModel("L40S", 48),
    GpuModel("L40", 48),
    GpuModel("L4", 24),
    GpuModel("T4", 16),
    GpuModel("T4G", 16),
    GpuModel("V100", 16),
    GpuModel("V100 32GB", 32),
    GpuModel("P100", 16),
    GpuModel("P4", 8),
    GpuModel("K80", 12),
    GpuModel("M60", 8),
    GpuModel("RTX PRO 6000", 96),
    GpuModel("RTX 6000 Ada", 48),
    GpuModel("RTX 5880 Ada", 48),
    GpuModel("RTX 5000 Ada", 32),
    GpuModel("RTX 4000 Ada", 20),
    GpuModel("RTX 6000", 24),
    GpuModel("RTX A6000", 48),
    GpuModel("RTX A5000", 24),
    GpuModel("RTX A4500", 20),
    GpuModel("RTX A4000", 16),
    GpuModel("RTX 5090", 32),
    GpuModel("RTX 5080", 16),
    GpuModel("RTX 5070 Ti", 16),
    GpuModel("RTX 5070", 12),
    GpuModel("RTX 5060 Ti", 16),
    GpuModel("RTX 4090", 24),
    GpuModel("RTX 4080 Super", 16),
    GpuModel("RTX 4080", 16),
    GpuModel("RTX 4070 Ti Super", 16),
    GpuModel("RTX 4070 Ti", 12),
    GpuModel("RTX 4070", 12),
    GpuModel("RTX 4060 Ti", 16),
    GpuModel("RTX 4060", 8),
    GpuModel("RTX 3090 Ti", 24),
    GpuModel("RTX 3090", 24),
    GpuModel("RTX 3080 Ti", 12),
    GpuModel("RTX 3080", 10),
    GpuModel("RTX 3070", 8),
    GpuModel("RTX 3060 Ti", 8),
    GpuModel("RTX 3060", 12),
    GpuModel("RTX 2080 Ti", 11),
    GpuModel("GTX 1080 Ti", 11),
    GpuModel("MI300X", 192, "AMD"),
    GpuModel("MI250X", 128, "AMD"),
    GpuModel("Radeon Pro V520", 8, "AMD"),
)

GPU_MODELS: dict[str, GpuModel] = {m.name: m for m in _MODELS}
"""Every canonical model by name."""

# Keys are the provider's name squeezed by `_squeeze` (lowercase, vendor words and punctuation gone).
_ALIASES: dict[str, str] = {
    # Blackwell / Hopper
    "b300": "B300", "gb200": "GB200", "b200": "B200", "b200sxm6": "B200", "b200180gb": "B200",
    "h200": "H200", "h200141gb": "H200", "h200sxm": "H200", "h200sxm141gb": "H200", "h200nvl": "H200",
    "gh200": "GH200", "gh20096gb": "GH200", "gh200480gb": "GH200",
    "h100": "H100 SXM", "h100sxm": "H100 SXM", "h100sxm5": "H100 SXM", "h10080gb": "H100 SXM",
    "h10080gbhbm3": "H100 SXM", "h100mega80gb": "H100 SXM", "h10080gbmega": "H100 SXM",
    "h100sxm580gb": "H100 SXM", "h100mega": "H100 SXM",
    "h100pcie": "H100 PCIe", "h100pcie80gb": "H100 PCIe", "h10080gbpcie": "H100 PCIe",
    "h100nvl": "H100 NVL", "h100nvl94gb": "H100 NVL", "h800": "H800",
    # Ampere datacenter
    "a100": "A100 40GB", "a10040gb": "A100 40GB", "a100sxm4": "A100 40GB", "a100pcie": "A100 40GB",
    "a100sxm440gb": "A100 40GB", "a100pcie40gb": "A100 40GB", "a10040gbpcie": "A100 40GB",
    "a10040gbsxm": "A100 40GB", "a10040gbsxm4": "A100 40GB", "a100x": "A100 80GB PCIe",
    "a10080gb": "A100 80GB SXM", "a10080gbsxm": "A100 80GB SXM", "a10080gbsxm4": "A100 80GB SXM",
    "a100sxm480gb": "A100 80GB SXM", "a100sxm80gb": "A100 80GB SXM",
    "a10080gbpcie": "A100 80GB PCIe", "a100pcie80gb": "A100 80GB PCIe",
    "a800": "A800", "a800pcie": "A800", "a40": "A40", "a30": "A30", "a16": "A16",
    "a10": "A10", "a10g": "A10G", "a2": "A2",
    # Ada / Turing / Volta / older datacenter
    "l40s": "L40S", "l40": "L40", "l4": "L4", "t4": "T4", "t4g": "T4G",
    "v100": "V100", "v10016gb": "V100", "v100sxm2": "V100", "v100sxm216gb": "V100",
    "v100pcie": "V100", "v10032gb": "V100 32GB", "v100sxm232gb": "V100 32GB", "v100fhhl": "V100",
    "p100": "P100", "p4": "P4", "k80": "K80", "m60": "M60",
    # Workstation
    "rtxpro6000": "RTX PRO 6000", "rtxpro6000ws": "RTX PRO 6000",
    "rtxpro6000blackwellserveredition": "RTX PRO 6000", "rtxpro6000blackwell": "RTX PRO 6000",
    "rtxpro6000blackwellworkstationedition": "RTX PRO 6000", "rtxpro6000se": "RTX PRO 6000",
    "rtx6000ada": "RTX 6000 Ada", "rtx6000adageneration": "RTX 6000 Ada", "6000ada": "RTX 6000 Ada",
    "rtx5880ada": "RTX 5880 Ada", "rtx5880adageneration": "RTX 5880 Ada",
    "rtx5000ada": "RTX 5000 Ada", "rtx5000adageneration": "RTX 5000 Ada",
    "rtx4000ada": "RTX 4000 Ada", "rtx4000adageneration": "RTX 4000 Ada",
    "rtx6000": "RTX 6000", "qrtx6000": "RTX 6000", "quadrortx6000": "RTX 6000",
    "rtxa6000": "RTX A6000", "a6000": "RTX A6000", "rtxa5000": "RTX A5000", "a5000": "RTX A5000",
    "rtxa4500": "RTX A4500", "a4500": "RTX A4500", "rtxa4000": "RTX A4000", "a4000": "RTX A4000",
    # Consumer
    "rtx5090": "RTX 5090", "rtx5080": "RTX 5080", "rtx5070ti": "RTX 5070 Ti", "rtx5070": "RTX 5070",
    "rtx5060ti": "RTX 5060 Ti",
    "rtx4090": "RTX 4090", "rtx4080super": "RTX 4080 Super", "rtx4080s": "RTX 4080 Super",
    "rtx4080": "RTX 4080", "rtx4070tisuper": "RTX 4070 Ti Super", "rtx4070sti": "RTX 4070 Ti Super",
    "rtx4070ti": "RTX 4070 Ti", "rtx4070": "RTX 4070", "rtx4060ti": "RTX 4060 Ti", "rtx4060": "RTX 4060",
    "rtx3090ti": "RTX 3090 Ti", "rtx3090": "RTX 3090", "rtx3080ti": "RTX 3080 Ti", "rtx3080": "RTX 3080",
    "rtx3070": "RTX 3070", "rtx3060ti": "RTX 3060 Ti", "rtx3060": "RTX 3060", "rtx2080ti": "RTX 2080 Ti",
    "gtx1080ti": "GTX 1080 Ti",
    # AMD
    "mi300x": "MI300X", "mi250x": "MI250X", "radeonprov520": "Radeon Pro V520", "v520": "Radeon Pro V520",
}

# Names that mean something else at one provider (see the module docstring).
_PROVIDER_ALIASES: dict[tuple[str, str], str] = {
    ("gcp", "rtx6000"): "RTX PRO 6000",
    ("gcp", "rtxpro6000"): "RTX PRO 6000",
}

_VENDOR_WORDS = re.compile(r"\b(nvidia|tesla|geforce|amd|instinct)\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def _squeeze(raw: str) -> str:
    lowered = raw.lower().replace("_", " ").replace("-", " ")
    return _NON_ALNUM.sub("", _VENDOR_WORDS.sub(" ", lowered))


_PREFIX = re.compile(r"^(geforce|tesla|quadro|nvidia)")
_MEMORY_SUFFIX = re.compile(r"\d+gb$")
_FORM_SUFFIX = re.compile(r"(pcie|sxm\d?|nvl|oam|hbm\d?e?)$")


def _candidate_keys(key: str) -> list[str]:
    """The squeezed name, then progressively shorter forms: glued vendor prefix, memory, form factor.

    Marketplace keys glue everything together ('geforcertx4090-pcie-24gb'); the removed parts still
    reach `_refine` through the hint, so no information is lost by the shortening.
    """
    keys = [key]
    shorter = _PREFIX.sub("", key)
    keys.append(shorter)
    for pattern in (_MEMORY_SUFFIX, _FORM_SUFFIX, _MEMORY_SUFFIX, _FORM_SUFFIX):
        shorter = pattern.sub("", shorter)
        keys.append(shorter)
    return [k for i, k in enumerate(keys) if k and k not in keys[:i]]


def clean_name(raw: str) -> str:
    """The raw name made presentable for an unknown model: vendor prefix and extra spaces removed."""
    text = re.sub(r"\s+", " ", raw.replace("_", " ")).strip()
    text = re.sub(r"^(nvidia|amd)\s+", "", text, flags=re.IGNORECASE)
    return text or raw.strip() or "unknown"


@dataclass(frozen=True, slots=True)
class GpuMatch:
    """The outcome of resolving one provider spelling."""

    model: str
    raw: str
    known: bool
    vram_gb: float


def _refine(model: str, *, hint: str, vram_gb: float | None) -> str:
    """Use per-GPU memory and form-factor words in the name or instance type to refine a family."""
    if model.startswith("A100"):
        big = "80gb" in hint or (vram_gb is not None and vram_gb >= 70) or model.startswith("A100 80GB")
        if not big:
            return "A100 40GB"
        if "pcie" in hint or model == "A100 80GB PCIe":
            return "A100 80GB PCIe"
        return "A100 80GB SXM"
    if model.startswith("H100"):
        if "nvl" in hint or (vram_gb is not None and 90 <= vram_gb < 100):
            return "H100 NVL"
        if "pcie" in hint:
            return "H100 PCIe"
        return model
    if model == "V100" and (("32gb" in hint) or (vram_gb is not None and vram_gb >= 30)):
        return "V100 32GB"
    return model


def resolve_gpu(
    raw: str, *, provider: str = "", instance_type: str = "", vram_gb: float | None = None
) -> GpuMatch:
    """Map a provider's GPU name to the canonical model.

    ``vram_gb`` is the per-GPU memory the provider reports, if any; it disambiguates A100 40/80 GB and
    V100 16/32 GB, and is kept as the quote's VRAM for unknown models. ``instance_type`` is searched for
    form-factor words ('pcie', 'sxm', 'nvl', '80gb').
    """
    model = None
    for key in _candidate_keys(_squeeze(raw)):
        model = _PROVIDER_ALIASES.get((provider, key)) or _ALIASES.get(key)
        if model is not None:
            break
    if model is None:
        known_vram = float(vram_gb) if vram_gb else 0.0
        return GpuMatch(model=clean_name(raw), raw=raw, known=False, vram_gb=known_vram)
    hint = f"{raw} {instance_type}".lower().replace("_", "").replace("-", "").replace(" ", "")
    model = _refine(model, hint=hint, vram_gb=vram_gb)
    return GpuMatch(model=model, raw=raw, known=True, vram_gb=GPU_MODELS[model].vram_gb)


_LAMBDA_TYPE = re.compile(r"^gpu_(\d+)x_(.+)$")


def resolve_lambda_instance(instance_type: str) -> tuple[GpuMatch, int] | None:
    """Lambda names carry the GPU: 'gpu_8x_a100_80gb_sxm4' -> (A100 80GB SXM, 8)."""
    found = _LAMBDA_TYPE.match(instance_type)
    if found is None:
        return None
    count, rest = int(found.group(1)), found.group(2)
    gpu = rest.removesuffix("_n")
    match = resolve_gpu(gpu, provider="lambda", instance_type=instance_type)
    return match, count


# EC2 GPU families (AWS's "Accelerated computing" page); the family alone fixes the GPU model.
_AWS_FAMILIES: dict[str, str] = {
    "p6-b300": "B300", "p6e-gb200": "GB200", "p6-b200": "B200",
    "p5en": "H200", "p5e": "H200", "p5": "H100 SXM",
    "p4de": "A100 80GB SXM", "p4d": "A100 40GB", "p3dn": "V100 32GB", "p3": "V100", "p2": "K80",
    "g6e": "L40S", "g6": "L4", "gr6": "L4", "g5g": "T4G", "g5": "A10G", "g4dn": "T4",
    "g4ad": "Radeon Pro V520", "g3s": "M60", "g3": "M60",
}


def resolve_aws_instance(instance_type: str) -> GpuMatch | None:
    """'p5.48xlarge' -> H100 SXM. None for families without GPUs (and fractional-GPU g6f)."""
    family = instance_type.split(".", 1)[0]
    model = _AWS_FAMILIES.get(family)
    if model is None:
        return None
    return GpuMatch(model=model, raw=family, known=True, vram_gb=GPU_MODELS[model].vram_gb)

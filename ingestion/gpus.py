"""Provider spellings of GPU names -> the canonical model of the identity table (`gpu_specs`).

Providers name the same silicon a dozen ways ('H100', 'gpu_1x_h100_sxm5', 'NVIDIA H100 80GB HBM3',
'h100-80gb', 'H100_SXM'...). Every spelling is squeezed (lowercase, vendor words and punctuation
gone) and looked up among the table's names and aliases. Resolution is conservative: a name we cannot
place is kept (cleaned) and flagged ``known=False``; catalog loaders quarantine such rows.

A family name ('A100', 'H100') is refined to one variant with what the provider says besides the
name: memory per GPU first (40 vs 80 GB, 16 vs 32 GB, 80 vs 94 GB), then form-factor words in the
name or instance type. 'NVLINK' marks an SXM board (GPUs joined by NVLink/NVSwitch); only 'NVL'
alone is the H100 NVL product (94 GB, PCIe cards paired by a bridge).

'RTX 6000' is the 24 GB Quadro (Turing) everywhere except GCP, whose 'rtx6000' accelerator on the G4
machine family is the 96 GB RTX PRO 6000 (Blackwell).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingestion.gpu_specs import GPU_MODELS, GpuModel, gpu_families

__all__ = [
    "GPU_MODELS",
    "GpuMatch",
    "GpuModel",
    "clean_name",
    "memory_fits",
    "resolve_aws_instance",
    "resolve_gpu",
    "resolve_lambda_instance",
    "squeeze",
]

_VENDOR_WORDS = re.compile(r"\b(nvidia|tesla|geforce|amd|instinct)\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]")

MEMORY_TOLERANCE: tuple[float, float] = (0.88, 1.08)
"""Reported memory per GPU / data-sheet memory accepted as the same size. ECC and driver reserves
make real GPUs report less than the label (L40S 46068 MiB = 0.94 x 48 GB; T4 with ECC 15 GiB); MiB vs
MB rounding stays within a few percent. No two variants of a family fall in each other's band."""


def squeeze(raw: str) -> str:
    """The comparison key of a spelling: lowercase, vendor words and punctuation removed."""
    lowered = raw.lower().replace("_", " ").replace("-", " ")
    return _NON_ALNUM.sub("", _VENDOR_WORDS.sub(" ", lowered))


def _alias_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for model in GPU_MODELS.values():
        for spelling in (model.name, *model.aliases):
            key = squeeze(spelling)
            if keys.setdefault(key, model.name) != model.name:
                raise ValueError(f"GPU alias {spelling!r} names both {keys[key]} and {model.name}")
    return keys


ALIAS_KEYS: dict[str, str] = _alias_keys()
"""Squeezed canonical name or alias -> canonical model (built from the table, collisions refused)."""

# Names that mean something else at one provider (see the module docstring).
_PROVIDER_ALIASES: dict[tuple[str, str], str] = {
    ("gcp", "rtx6000"): "RTX PRO 6000",
    ("gcp", "rtxpro6000"): "RTX PRO 6000",
}

_FAMILIES = gpu_families()

FAMILY_DEFAULTS: dict[str, str] = {"A100": "A100 40GB SXM", "H100": "H100 SXM", "V100": "V100 16GB"}
"""The variant a provider means by a bare family name when nothing else (memory, form words) says:
the board the hyperscalers rent (GCP a2-highgpu, AWS p4d/p5/p3, Azure ND)."""

_FAMILY_KEYS: dict[str, str] = {
    squeeze(family): FAMILY_DEFAULTS.get(family, members[0]) for family, members in _FAMILIES.items()
}

_PREFIX = re.compile(r"^(geforce|tesla|quadro|nvidia)")
_SIZES = r"(8|10|11|12|16|20|24|32|40|48|64|80|94|96|141|144|180|186|192|288)"
_MEMORY_SUFFIX = re.compile(_SIZES + r"gb?$")
_FORM_SUFFIX = re.compile(r"(pcie|sxm\d?|nvlink|nvl|oam|hbm\d?e?|plus)$")
_MEMORY_IN_NAME = re.compile(_SIZES + r"gb?")


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


def memory_fits(model: GpuModel, memory_gb: float) -> bool:
    """Whether a reported memory per GPU is one of the model's data-sheet sizes (within tolerance)."""
    low, high = MEMORY_TOLERANCE
    return any(size * low <= memory_gb <= size * high for size in model.memory_options_gb)


@dataclass(frozen=True, slots=True)
class GpuMatch:
    """The outcome of resolving one provider spelling."""

    model: str
    raw: str
    known: bool
    vram_gb: float


def _form_wanted(hint: str) -> str | None:
    if re.search(r"nvl(?!ink)", hint):
        return "NVL"
    if "pci" in hint:
        return "PCIe"
    if "sxm" in hint or "nvlink" in hint or "hgx" in hint:
        return "SXM"
    return None


def _refine(model: str, *, hint: str, name_key: str, vram_gb: float | None) -> str:
    """Pick the family variant that the memory per GPU and the form-factor words describe."""
    members = _FAMILIES.get(GPU_MODELS[model].family_name)
    if not members:
        return model
    candidates = list(members)
    said = _MEMORY_IN_NAME.search(name_key)
    if said is not None:
        # The name states the memory: it wins, and a reported memory that disagrees fails the check.
        sized = [m for m in candidates if GPU_MODELS[m].vram_gb == float(said.group(1))]
        candidates = sized or candidates
    elif vram_gb is not None and vram_gb > 0:
        fitting = [m for m in candidates if memory_fits(GPU_MODELS[m], vram_gb)]
        candidates = fitting or candidates
    form = _form_wanted(hint)
    if form is not None:
        shaped = [m for m in candidates if form in GPU_MODELS[m].form_factor]
        candidates = shaped or candidates
    return model if model in candidates else candidates[0]


def resolve_gpu(
    raw: str, *, provider: str = "", instance_type: str = "", vram_gb: float | None = None
) -> GpuMatch:
    """Map a provider's GPU name to the canonical model.

    ``vram_gb`` is the per-GPU memory the provider reports, if any; it picks the family variant
    (A100 40/80 GB, V100 16/32 GB, H100 SXM/NVL) and is kept as the quote's VRAM for unknown
    models. ``instance_type`` is searched for form-factor words ('pcie', 'sxm', 'nvl', 'nvlink').
    """
    model = None
    for key in _candidate_keys(squeeze(raw)):
        model = _PROVIDER_ALIASES.get((provider, key)) or ALIAS_KEYS.get(key) or _FAMILY_KEYS.get(key)
        if model is not None:
            break
    if model is None:
        known_vram = float(vram_gb) if vram_gb else 0.0
        return GpuMatch(model=clean_name(raw), raw=raw, known=False, vram_gb=known_vram)
    hint = f"{raw} {instance_type}".lower().replace("_", "").replace("-", "").replace(" ", "")
    model = _refine(model, hint=hint, name_key=squeeze(raw), vram_gb=vram_gb)
    return GpuMatch(model=model, raw=raw, known=True, vram_gb=GPU_MODELS[model].vram_gb)


_LAMBDA_TYPE = re.compile(r"^gpu_(\d+)x_(.+)$")
_LAMBDA_PCIE_A100 = re.compile(r"^a100$")


def resolve_lambda_instance(instance_type: str) -> tuple[GpuMatch, int] | None:
    """Lambda names carry the GPU: 'gpu_8x_a100_80gb_sxm4' -> (A100 80GB SXM, 8).

    Lambda spells its A100 40 GB PCIe card plain 'a100' on 1x/2x/4x instances and the SXM4 board
    'a100_sxm4'; its 8x 'a100' machine is the SXM4 board.
    """
    found = _LAMBDA_TYPE.match(instance_type)
    if found is None:
        return None
    count, rest = int(found.group(1)), found.group(2)
    gpu = rest.removesuffix("_n")
    if _LAMBDA_PCIE_A100.match(gpu) and count in (1, 2, 4):
        gpu = "a100_pcie_40gb"
    match = resolve_gpu(gpu, provider="lambda", instance_type=instance_type)
    return match, count


# EC2 GPU families (AWS's "Accelerated computing" page); the family alone fixes the GPU model.
_AWS_FAMILIES: dict[str, str] = {
    "p6-b300": "B300", "p6e-gb200": "GB200", "p6-b200": "B200",
    "p5en": "H200", "p5e": "H200", "p5": "H100 SXM",
    "p4de": "A100 80GB SXM", "p4d": "A100 40GB SXM", "p3dn": "V100 32GB", "p3": "V100 16GB", "p2": "K80",
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

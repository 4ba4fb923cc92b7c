"""GPU names as people type them -> the canonical models they mean (API, CLI and filter input).

Accepted, in any case and with any punctuation ('a100', 'A100-80GB', 'h100_sxm', 'H100-NVLINK'):
- a canonical name: exactly that model ('H100 SXM', 'V100 16GB', 'RTX 4090');
- a family name: every variant ('A100' = all four A100s, 'H100' = SXM, PCIe and NVL, 'V100' = 16/32);
- a family or model with a memory size: a minimum memory per GPU ('A100 80GB' = the 80 GB A100s,
  'V100 32G'), narrowed by a form factor when one is given ('A100 80GB PCIe', 'H100 SXM');
- a SkyPilot-style count suffix 'H100:8', or a count prefix '8x H100'.

An unknown name raises `UnknownGpuName` with the closest known names; it never yields an empty
match.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from ingestion.errors import UnknownGpuName
from ingestion.gpu_specs import GPU_MODELS, gpu_families
from ingestion.gpus import ALIAS_KEYS, squeeze


class GpuRequest(BaseModel):
    """What one GPU name in a request means."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(description="The input as given.")
    models: tuple[str, ...] = Field(min_length=1, description="Canonical models that satisfy it.")
    count: int | None = Field(default=None, ge=1, description="GPUs asked for ('H100:8'), if said.")
    min_memory_gb: float | None = Field(default=None, gt=0, description="Memory per GPU, if said.")


_COUNT_SUFFIX = re.compile(r"^(?P<name>.+?)\s*[:*]\s*(?P<count>\d+)\s*$")
_COUNT_PREFIX = re.compile(r"^\s*(?P<count>\d+)\s*x\s+(?P<name>.+)$", re.IGNORECASE)
_WORDS = re.compile(r"[^a-z0-9]+")
_MEMORY = re.compile(r"\d{1,3}gb?")
_FORM = re.compile(r"sxm\d?|pcie|nvlink|nvl")
_FORM_WORDS = {"pcie": "PCIe", "nvl": "NVL"}


@cache
def _family_keys() -> dict[str, tuple[str, ...]]:
    return {squeeze(name): members for name, members in gpu_families().items()}


@cache
def _canonical_keys() -> dict[str, str]:
    return {squeeze(name): name for name in GPU_MODELS}


def _split_count(text: str) -> tuple[str, int | None]:
    for pattern in (_COUNT_SUFFIX, _COUNT_PREFIX):
        found = pattern.match(text)
        if found is not None:
            return found.group("name"), int(found.group("count"))
    return text, None


def _exact(key: str, *, aliases: bool = True) -> tuple[str, ...] | None:
    """Canonical name, then family name, then (if asked) alias: the models the key names."""
    canonical = _canonical_keys().get(key)
    if canonical is not None:
        return (canonical,)
    family = _family_keys().get(key)
    if family is not None:
        return family
    model = ALIAS_KEYS.get(key) if aliases else None
    return (model,) if model is not None else None


def _qualified(text: str) -> tuple[tuple[str, ...], float | None] | None:
    """A family or model followed by a memory size and/or a form factor, in either order.

    Works on words ('a100 80gb pcie'): once squeezed, 'A100-80GB' would read as 'A10080GB'.
    """
    words = _WORDS.sub(" ", text.lower()).split()
    memory: float | None = None
    form: str | None = None
    while len(words) > 1:
        last = words[-1]
        if memory is None and _MEMORY.fullmatch(last):
            memory = float(last.rstrip("gb"))
        elif form is None and _FORM.fullmatch(last):
            form = "SXM" if last.startswith("sxm") or last == "nvlink" else _FORM_WORDS[last]
        else:
            break
        words.pop()
    if memory is None and form is None:
        return None
    members = _exact(squeeze(" ".join(words)))
    if not members:
        return None
    family = GPU_MODELS[members[0]].family_name
    pool = gpu_families().get(family, members)
    chosen = [
        m for m in pool
        if (memory is None or GPU_MODELS[m].vram_gb >= memory)
        and (form is None or form in GPU_MODELS[m].form_factor)
    ]
    return (tuple(chosen), memory) if chosen else None


def known_names() -> list[str]:
    """Every name a person may type: canonical models, then family names."""
    return [*GPU_MODELS, *gpu_families()]


def suggest(text: str, *, limit: int = 3) -> tuple[str, ...]:
    """The closest known names to ``text`` (difflib over squeezed spellings, shown canonically)."""
    display: dict[str, str] = {squeeze(n): n for n in known_names()}
    for key, model in ALIAS_KEYS.items():
        display.setdefault(key, model)
    close = difflib.get_close_matches(squeeze(text), list(display), n=limit * 3, cutoff=0.5)
    names: list[str] = []
    for key in close:
        if display[key] not in names:
            names.append(display[key])
    return tuple(names[:limit])


def resolve_gpu_request(text: str, *, field: str = "") -> GpuRequest:
    """Resolve one GPU name as a person typed it; raise `UnknownGpuName` (with suggestions) if unknown.

    ``field`` names the request field in the error ('gpu_type', '--gpu').
    """
    name, count = _split_count(text.strip())
    key = squeeze(name)
    members = _exact(key, aliases=False) if key else None
    memory: float | None = None
    if members is None and key:
        qualified = _qualified(name)
        if qualified is not None:
            members, memory = qualified
        else:
            members = _exact(key)
    if not members:
        raise UnknownGpuName(text, suggestions=suggest(name), field=field)
    return GpuRequest(text=text, models=members, count=count, min_memory_gb=memory)


def resolve_gpu_names(texts: list[str], *, field: str = "") -> tuple[str, ...]:
    """The union of canonical models several names mean, in table order (for offer filters)."""
    wanted = {m for text in texts for m in resolve_gpu_request(text, field=field).models}
    return tuple(m for m in GPU_MODELS if m in wanted)

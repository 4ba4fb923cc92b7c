"""The start-up self-test: prove the engine pins a GPU into a container before any GPU work is placed.

A probe container is created with exactly one GPU (the host's first; its first MIG device when MIG is
on) through the engine's pinning path, runs a shell script that lists ``/dev/nvidia<N>`` device nodes,
prints ``NVIDIA_VISIBLE_DEVICES`` and, where the image has it, ``nvidia-smi -L``; the probe passes when
the GPU is visible and no other GPU is:
- ``nvidia-smi -L`` inside lists the assigned UUID and no other GPU UUID of the host; or, without it,
- exactly one ``/dev/nvidia<N>`` node exists and ``NVIDIA_VISIBLE_DEVICES`` is unset, ``all``/``void``
  (CDI images) or names the assigned GPU (index, UUID or CDI name).
Anything else (no device: Podman's Docker-compatible API dropping the request; several devices)
refuses GPU placements, with what the probe saw in ``detail``.
"""

from __future__ import annotations

import re
import uuid as uuidlib

from cloudarb.agent.discovery import cdi_names
from cloudarb.agent.engines.base import ContainerRequest, Engine, EngineError, GpuRef
from cloudarb.agent.protocol import EngineReport, HostReport

LABEL_PROBE = "cloudarb.probe"
PROBE_SCRIPT = (
    'echo "VISIBLE=${NVIDIA_VISIBLE_DEVICES-}"; '
    "for d in /dev/nvidia[0-9]*; do [ -e \"$d\" ] && echo \"DEV=$d\"; done; "
    "if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>&1 | while read -r l; do echo \"SMI=$l\"; done; fi; "
    "echo END"
)
_SMI_UUID = re.compile(r"UUID:\s*((?:GPU|MIG)-[^)\s]+)")


def probe_gpu(host: HostReport) -> GpuRef | None:
    """The device the probe pins: the first GPU, or its first MIG device when MIG is enabled."""
    if not host.gpus:
        return None
    names = cdi_names(host)
    gpu = host.gpus[0]
    if gpu.mig_mode == "enabled" and gpu.mig_devices:
        mig = gpu.mig_devices[0]
        return GpuRef(uuid=mig.uuid, cdi_name=names[mig.uuid])
    return GpuRef(uuid=gpu.uuid, cdi_name=names[gpu.uuid])


def judge(output: str, gpu: GpuRef, host: HostReport) -> tuple[bool, str]:
    """(passed, explanation) from the probe's output."""
    lines = [line.strip() for line in output.splitlines()]
    if "END" not in lines:
        return False, f"the probe did not finish its script; output: {output.strip()[:300]!r}"
    visible = next((line[8:] for line in lines if line.startswith("VISIBLE=")), "")
    devices = [line[4:] for line in lines if line.startswith("DEV=")]
    smi_uuids = {m.group(1) for line in lines if line.startswith("SMI=") for m in [_SMI_UUID.search(line)] if m}
    seen = f"devices {devices or 'none'}, NVIDIA_VISIBLE_DEVICES={visible or '(unset)'}"
    if smi_uuids:
        host_uuids = {g.uuid for g in host.gpus} | {m.uuid for g in host.gpus for m in g.mig_devices}
        # A MIG device is listed under its parent GPU: the parent's line is not another GPU.
        parents = {g.uuid for g in host.gpus if any(m.uuid == gpu.uuid for m in g.mig_devices)}
        others = (smi_uuids & host_uuids) - {gpu.uuid} - parents
        if gpu.uuid in smi_uuids and not others:
            return True, f"nvidia-smi inside the probe sees {gpu.uuid} and no other GPU; {seen}"
        return False, f"nvidia-smi inside the probe sees {sorted(smi_uuids)}, expected only {gpu.uuid}; {seen}"
    if len(devices) != 1:
        why = "no GPU device node arrived" if not devices else "more than the one assigned GPU is visible"
        return False, f"{why} in the probe container ({seen})"
    index = gpu.cdi_name.split("=", 1)[-1]
    accepted = {"", "all", "void", gpu.uuid, index, gpu.cdi_name}
    if visible not in accepted:
        return False, f"NVIDIA_VISIBLE_DEVICES names another GPU than {gpu.cdi_name} ({seen})"
    return True, f"the assigned GPU {gpu.cdi_name} arrived in the probe container: {seen}"


def run_self_test(engine: Engine, host: HostReport, *, probe_image: str, timeout_s: float = 120.0) -> EngineReport:
    """Run the probe; the EngineReport says whether GPU placements may be made on this engine."""
    try:
        version = engine.version()
    except EngineError as exc:
        return EngineReport(kind=engine.kind, detail=f"engine not reachable: {exc}")
    gpu = probe_gpu(host)
    if gpu is None:
        return EngineReport(kind=engine.kind, version=version,
                            detail=f"no GPU to test on this host ({host.gpu_error or 'none found'})")
    container_id: str | None = None
    try:
        if not engine.image_present(probe_image):
            engine.pull(probe_image)
        container_id = engine.create(ContainerRequest(
            name=f"cloudarb-probe-{uuidlib.uuid4().hex[:12]}", image=probe_image,
            labels={LABEL_PROBE: "true"}, command=["/bin/sh", "-c", PROBE_SCRIPT], gpus=[gpu],
        ))
        engine.start(container_id)
        engine.wait(container_id, timeout_s)
        output = engine.logs(container_id)
    except EngineError as exc:
        return EngineReport(kind=engine.kind, version=version,
                            detail=f"the probe container with {gpu.cdi_name} failed: {exc}")
    finally:
        if container_id is not None:
            try:
                engine.remove(container_id)
            except EngineError:
                pass
    passed, detail = judge(output, gpu, host)
    return EngineReport(
        kind=engine.kind, version=version, gpu_pinning=engine.gpu_pinning if passed else "none",
        self_test_ok=passed, detail=detail,
    )

"""``cloudarb agent``: the node agent on a GPU host (discover, self-test, run).

Only typer and rich at import time: the agent's modules (and the docker SDK, pynvml) load inside the
commands, so the server's CLI does not pay for them.
"""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from cloudarb.cli.options import JsonOpt, fail
from cloudarb.cli.render import console

if TYPE_CHECKING:
    from cloudarb.agent.engines.base import Engine
    from cloudarb.agent.protocol import HostReport

agent_app = typer.Typer(help="The node agent: GPU discovery, container engine self-test, the agent loop.",
                        no_args_is_help=True)

SourceOpt = Annotated[
    str, typer.Option("--source", help="Where GPUs are read from: auto (NVML, then nvidia-smi), nvml, nvidia-smi.")
]
NvsmiOpt = Annotated[str, typer.Option("--nvidia-smi", help="The nvidia-smi executable (name on PATH or path).")]
EngineOpt = Annotated[str, typer.Option("--engine", help="podman (libpod API) or docker (Docker Engine API).")]
SocketOpt = Annotated[
    str | None, typer.Option("--socket", help="The engine's unix socket (default: the engine's usual path).")
]
ProbeImageOpt = Annotated[
    str, typer.Option("--probe-image", help="Image of the self-test's probe container (needs /bin/sh).")
]


def _discovery(source: str, nvidia_smi: str) -> HostReport:
    from cloudarb.agent.discovery import DiscoveryConfig, discover_host

    if source not in ("auto", "nvml", "nvidia-smi"):
        raise fail(f"--source must be auto, nvml or nvidia-smi, not {source!r}")
    chosen: Literal["auto", "nvml", "nvidia-smi"] = source  # type: ignore[assignment]
    return discover_host(DiscoveryConfig(source=chosen, nvidia_smi=nvidia_smi))


def _print_host(host: HostReport) -> None:
    console.print(f"host {escape(host.hostname)}: {escape(host.os)}, kernel {escape(host.kernel)}, "
                  f"{host.cpus} CPUs, {host.memory_mib} MiB memory")
    if not host.gpus:
        console.print(escape(host.gpu_error or "no GPU found"))
        return
    table = Table("GPU", "UUID", "model", "name", "memory MiB", "driver", "CUDA", "MIG")
    for gpu in host.gpus:
        mig: str = gpu.mig_mode or "-"
        if gpu.mig_devices:
            mig += ": " + ", ".join(f"{m.index} {m.profile} {m.uuid}" for m in gpu.mig_devices)
        table.add_row(str(gpu.index), gpu.uuid, gpu.model or "(unknown)", escape(gpu.name),
                      str(gpu.memory_total_mib), gpu.driver_version or "-", gpu.cuda_version or "-", escape(mig))
    console.print(table)


@agent_app.command("discover")
def discover(
    as_json: JsonOpt = False, source: SourceOpt = "auto", nvidia_smi: NvsmiOpt = "nvidia-smi",
) -> None:
    """Print what the agent would report: the host and each GPU (a host without a driver: no GPU)."""
    host = _discovery(source, nvidia_smi)
    if as_json:
        print(host.model_dump_json(indent=2))
    else:
        _print_host(host)


def _engine(engine: str, socket: str | None) -> Engine:
    from cloudarb.agent.engines import EngineUnavailable, open_engine

    try:
        return open_engine(engine, socket)
    except (EngineUnavailable, ValueError) as exc:
        raise fail(str(exc)) from None


@agent_app.command("self-test")
def self_test(
    engine: EngineOpt = "podman", socket: SocketOpt = None, probe_image: ProbeImageOpt = "docker.io/library/busybox:1",
    as_json: JsonOpt = False, source: SourceOpt = "auto", nvidia_smi: NvsmiOpt = "nvidia-smi",
) -> None:
    """Create a probe container with one GPU and prove the device arrived inside it (exit 1 if not)."""
    from cloudarb.agent.selftest import run_self_test

    host = _discovery(source, nvidia_smi)
    report = run_self_test(_engine(engine, socket), host, probe_image=probe_image)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        verdict = "[green]ok[/green]" if report.self_test_ok else "[red]REFUSED[/red]"
        console.print(f"{report.kind} {report.version or ''} gpu pinning {report.gpu_pinning}: {verdict}")
        console.print(escape(report.detail))
    if not report.self_test_ok:
        raise typer.Exit(1)


@agent_app.command("run")
def run(
    server: Annotated[str, typer.Option("--server", envvar="CLOUDARB_SERVER", help="Control plane base URL.")],
    join_token: Annotated[
        str | None, typer.Option("--join-token", envvar="CLOUDARB_JOIN_TOKEN", help="One-time join token (first run).")
    ] = None,
    engine: EngineOpt = "podman", socket: SocketOpt = None,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the node id and credential are kept.")] = Path(
        "/var/lib/cloudarb-agent"),
    probe_image: ProbeImageOpt = "docker.io/library/busybox:1",
    source: SourceOpt = "auto", nvidia_smi: NvsmiOpt = "nvidia-smi",
    once: Annotated[bool, typer.Option("--once", help="Register, send one heartbeat, carry out its commands, exit.")]
    = False,
) -> None:
    """Register with the control plane (join token, first time) and run the heartbeat/command loop."""
    from cloudarb.agent.daemon import Agent, AgentConfig, AgentError
    from cloudarb.agent.discovery import DiscoveryConfig

    if source not in ("auto", "nvml", "nvidia-smi"):
        raise fail(f"--source must be auto, nvml or nvidia-smi, not {source!r}")
    config = AgentConfig(
        server=server, join_token=join_token, state_dir=state_dir, probe_image=probe_image,
        discovery=DiscoveryConfig(source=source, nvidia_smi=nvidia_smi),  # type: ignore[arg-type]
    )
    if not once:
        from cloudarb import logs  # the server's JSON format (stdlib only: the agent may import it)

        logs.configure(logs.level_from_env())
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        agent = Agent(config, _engine(engine, socket))
        agent.start()
        if once:
            agent.run_once()
            console.print(json.dumps({"node_id": agent.node_id, "gpu_pinning": agent.engine_report.gpu_pinning}))
        else:
            signal.signal(signal.SIGTERM, lambda *_: agent.stop())  # finish the current command, then exit
            agent.run_forever()
    except AgentError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None

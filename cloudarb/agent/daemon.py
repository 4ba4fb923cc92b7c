"""The agent loop: register, heartbeat, carry out placement commands, survive restarts.

``Agent(config[, engine]).start()`` discovers the host, runs the engine self-test, registers with the
join token the first time (the node id and credential go to the state file), rebuilds GPU ownership
from container labels and finishes a command interrupted by a crash. ``run_once()`` sends one
heartbeat (host, GPUs, managed containers) and carries out the commands of the reply, reporting each
one's progress; ``run_forever()`` repeats it at the control plane's interval.

Safety, from the labels of the containers themselves (never from memory alone):
- one container per placement: its name is derived from the placement id, and a placement whose
  container exists (a repeated command, or one interrupted after create) is adopted, never duplicated;
- no GPU to two containers: before creating or starting, the GPUs (and a GPU's MIG devices) held by the
  node's live containers are read from their ``cloudarb.gpus`` labels and any overlap is refused;
- GPU work only on an engine whose self-test proved the GPU arrives inside a container.

Acting alone (the control plane's last word is kept in the state file, so this holds across restarts):
- lifetimes: every placement carries ``expires_at`` (a container label, and the current value, extensions
  included, in each heartbeat reply). A container still running ``expiry_grace_s`` after it is *stopped*
  by the agent itself, whether or not the control plane can be reached: a lost control plane never lets
  a container run (and hold GPUs) forever. While the control plane works, its own lifetime limit destroys
  the deployment at expiry, well inside the grace, so this only acts when it cannot.
  The agent stops and never destroys on its own: a stop ends the GPU use at once, is reversible and
  loses nothing (the container and its workspace stay, for the owner to recover), while a destroy is
  final and belongs to the control plane's verified-destroy flow, which also closes the books; an
  agent that destroyed by itself would turn a network partition into lost work. When the control plane
  is back, the heartbeat reports the container exited (the placement becomes ``stopped`` and its GPUs
  go back to the queue) and the deployment's expiry destroys it the usual way.
- drain: a drained node's agent refuses ``place`` commands itself (reported ``failed`` with the reason),
  so a command sent just before the drain (or replayed after a restart) starts nothing; running
  containers, and stop/start/destroy of existing ones, go on.

Health checks (``cloudarb.agent.health``): a placement's check travels in its spec and is kept on the
container as a label, so it survives agent restarts like the GPU ownership. Each running container with
a check is probed when first seen running and then every ``interval_s`` (between heartbeats too: the loop
wakes for a due probe), and its health rides in each heartbeat's container report; a change of health
sends a heartbeat at once. After an agent restart the grace counts again from the restart (the probe
history is in memory only; the control plane keeps the last health it heard). An unhealthy container is
restarted only when its check says ``restart_on_unhealthy`` (off by default: a restart loses the
process's state and may hide the failure's cause, so it is the template owner's choice), and with a fresh
grace; its GPUs stay its own (the agent is the only one starting containers on this host).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloudarb.agent.client import AuthRejected, ControlPlaneClient, ControlPlaneError
from cloudarb.agent.discovery import DiscoveryConfig, cdi_names, discover_host
from cloudarb.agent.engines import open_engine
from cloudarb.agent.engines.base import (
    ContainerInfo,
    ContainerRequest,
    Engine,
    EngineError,
    GpuRef,
    NameConflict,
    PortRequest,
)
from cloudarb.agent.health import HealthTracker, ProbeResult, probe
from cloudarb.agent.labels import container_name, expiry_label, gpu_label, health_label, placement_labels
from cloudarb.agent.protocol import (
    GPU_ENV,
    LABEL_COMMAND,
    LABEL_INSTANCE_KEY,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_PLACEMENT,
    Command,
    CommandProgress,
    ContainerReport,
    EngineReport,
    HealthCheckSpec,
    Heartbeat,
    HostReport,
    PlacementSpec,
    RegisterRequest,
)
from cloudarb.agent.selftest import run_self_test
from cloudarb.agent.state import AgentState, StateError, StateStore

log = logging.getLogger("cloudarb.agent")

HOLDING_STATES = frozenset({"running", "created", "paused", "restarting"})
"""Container states that hold their GPUs (an exited container gives them back until started again)."""


class AgentError(RuntimeError):
    """The agent cannot go on (not registered, credential rejected, unusable state file)."""


class CommandRefused(RuntimeError):
    """A command that must not be carried out (GPU taken, unknown GPU, engine cannot pin GPUs)."""


@dataclass(slots=True)
class AgentConfig:
    server: str
    join_token: str | None = None
    state_dir: Path = Path("/var/lib/cloudarb-agent")
    probe_image: str = "docker.io/library/busybox:1"
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    self_test: bool = True
    stop_timeout_s: int = 10
    heartbeat_interval_s: float | None = None  # None: the control plane's
    http_timeout_s: float = 30.0
    engine: str = "podman"  # used when no engine object is given to Agent
    socket: str | None = None  # the engine's socket; None: its usual path
    expiry_grace_s: float = 300.0
    """How long past its expiry a container may still run before the agent stops it itself."""
    health_host: str = "127.0.0.1"
    """Where health probes connect to the containers' published ports (this host)."""


class Agent:
    """One node's agent over one engine. Thread-safe enough for ``run_forever`` in a thread + ``stop()``."""

    def __init__(self, config: AgentConfig, engine: Engine | None = None, *, client: ControlPlaneClient | None = None,
                 discover: Callable[[], HostReport] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        if engine is None:
            try:
                engine = open_engine(config.engine, config.socket)
            except (EngineError, ValueError) as exc:
                raise AgentError(str(exc)) from exc
        self.engine = engine
        self.client = client or ControlPlaneClient(config.server, timeout_s=config.http_timeout_s)
        self.store = StateStore(config.state_dir)
        self._discover = discover or (lambda: discover_host(config.discovery))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.host: HostReport = HostReport(hostname="unknown")
        self.engine_report = EngineReport(kind=engine.kind)
        self.state: AgentState | None = None
        self.interval_s = config.heartbeat_interval_s or 15.0
        self.drained = False
        self.gpu_owners: dict[str, str] = {}
        self.health: dict[str, HealthTracker] = {}
        """Container id -> its health (running containers with a check only)."""
        self._health_sent: dict[str, str] = {}
        """Container id -> the health the last heartbeat carried (a difference sends the next one early)."""
        self._stop = threading.Event()

    @property
    def node_id(self) -> str | None:
        return self.state.node_id if self.state else None

    # -- start-up -------------------------------------------------------------------------------

    def start(self) -> None:
        """Discover, self-test, register (first time), rebuild ownership, finish an interrupted command."""
        self.host = self._discover()
        if self.config.self_test:
            self.engine_report = run_self_test(self.engine, self.host, probe_image=self.config.probe_image)
            log.info("engine self-test: %s", self.engine_report.detail)
        self._register()
        self.gpu_owners = self.rebuild_ownership()
        self._recover()

    def _register(self) -> None:
        try:
            state = self.store.load()
        except StateError as exc:
            raise AgentError(str(exc)) from exc
        if state is not None and state.server.rstrip("/") != self.config.server.rstrip("/"):
            raise AgentError(f"{self.store.path} belongs to the control plane {state.server}, not "
                             f"{self.config.server}; use another --state-dir")
        if state is None:
            if not self.config.join_token:
                raise AgentError("this node is not registered yet: pass --join-token (from `cloudarb nodes join-token`)")
            try:
                registered = self.client.register(
                    RegisterRequest(join_token=self.config.join_token, host=self._host_report()))
            except AuthRejected as exc:
                raise AgentError(f"the control plane refused the join token: {exc}") from exc
            except ControlPlaneError as exc:
                raise AgentError(f"registration failed: {exc}") from exc
            state = AgentState(server=self.config.server, node_id=registered.node_id,
                               node_token=registered.node_token)
            self._save(state)
            if self.config.heartbeat_interval_s is None:
                self.interval_s = registered.heartbeat_interval_s
            log.info("registered as node %s", registered.node_id)
        self.state = state
        self.drained = state.drained
        self.client.node_token = state.node_token

    def _save(self, state: AgentState) -> None:
        try:
            self.store.save(state)
        except StateError as exc:
            raise AgentError(str(exc)) from exc

    def _managed(self, extra: dict[str, str] | None = None) -> list[ContainerInfo]:
        labels = {LABEL_MANAGED: "true", LABEL_NODE: self.node_id or ""}
        return self.engine.list_containers({**labels, **(extra or {})})

    def rebuild_ownership(self) -> dict[str, str]:
        """GPU (or MIG) UUID -> placement id, from the labels of the node's live containers."""
        owners: dict[str, str] = {}
        for info in self._managed():
            if info.state in HOLDING_STATES:
                for uuid in gpu_label(info):
                    owners[uuid] = info.labels.get(LABEL_PLACEMENT, "")
        return owners

    def _recover(self) -> None:
        """Finish (or roll back) the command the agent was carrying out when it stopped."""
        assert self.state is not None
        command = self.state.in_flight
        if command is None:
            return
        spec = command.spec
        if command.action == "place" and spec and spec.expires_at and spec.expires_at <= self.clock():
            log.warning("rolling back placement %s: it expired while the agent was down", command.placement_id)
            for info in self._containers(command.placement_id):
                self.engine.remove(info.id)
            self._report(command, CommandProgress(state="failed", error="the placement expired while the agent "
                                                  "was down; its container was removed"))
            self._journal(None)
            self.gpu_owners = self.rebuild_ownership()
            return
        log.warning("finishing command %s (%s %s) interrupted by a restart", command.id, command.action,
                    command.placement_id)
        self.execute(command)

    # -- the loop ---------------------------------------------------------------------------------

    def _host_report(self) -> HostReport:
        return self.host.model_copy(update={"engine": self.engine_report})

    def container_reports(self) -> list[ContainerReport]:
        reports = []
        for info in self._managed():
            tracker = self.health.get(info.id) if info.state == "running" else None
            detail = ""
            if tracker is not None:
                detail = tracker.detail + (f" ({tracker.restarts} restart(s) for health)" if tracker.restarts else "")
            reports.append(ContainerReport(
                placement_id=info.labels.get(LABEL_PLACEMENT, ""), container_id=info.id,
                instance_key=info.labels.get(LABEL_INSTANCE_KEY, ""), state=info.state,
                gpu_uuids=gpu_label(info), published_ports=info.published_ports,
                health=tracker.state if tracker is not None else None, health_detail=detail[:2000],
                healthy_since=tracker.healthy_since if tracker is not None else None,
            ))
        self._health_sent = {r.container_id: r.health for r in reports if r.health is not None}
        return reports

    def health_news(self) -> bool:
        """Whether a container's health differs from what the last heartbeat said."""
        return any(self._health_sent.get(cid) != t.state for cid, t in self.health.items())

    def _probe(self, check: HealthCheckSpec, info: ContainerInfo) -> ProbeResult:
        return probe(check, state=info.state, published_ports=info.published_ports, host=self.config.health_host)

    def check_health(self) -> bool:
        """Probe the running containers whose check is due; True when a container's health changed.
        Trackers of containers that stopped or went away are dropped (a start begins a new grace)."""
        if self.state is None:
            return False
        changed = False
        seen: set[str] = set()
        for info in self._managed():
            check = health_label(info)
            if check is None or info.state != "running":
                continue
            seen.add(info.id)
            now = self.clock()
            tracker = self.health.get(info.id)
            if tracker is None:
                tracker = self.health[info.id] = HealthTracker(check=check, started_at=now)
            if not tracker.due(now):
                continue
            if tracker.record(self._probe(check, info), now):
                changed = True
                log.info("container %s of placement %s is %s: %s", info.id[:12],
                         info.labels.get(LABEL_PLACEMENT, ""), tracker.state, tracker.detail)
                if tracker.state == "unhealthy" and check.restart_on_unhealthy:
                    self._restart_unhealthy(info, tracker)
        for gone in set(self.health) - seen:
            del self.health[gone]
        return changed

    def _restart_unhealthy(self, info: ContainerInfo, tracker: HealthTracker) -> None:
        log.warning("restarting unhealthy container %s of placement %s (restart_on_unhealthy): %s", info.id[:12],
                    info.labels.get(LABEL_PLACEMENT, ""), tracker.detail)
        try:
            self.engine.stop(info.id, self.config.stop_timeout_s)
            self.engine.start(info.id)
        except EngineError as exc:
            tracker.detail = f"{tracker.detail}; the restart failed: {exc}"
            return
        tracker.restarted(self.clock())

    def next_health_due(self) -> datetime | None:
        return min((t.next_due() for t in self.health.values()), default=None)

    def run_once(self) -> int:
        """One heartbeat and the commands of its reply; the number of commands carried out."""
        if self.state is None:
            self.start()
        self.host = self._discover()
        try:
            self.check_health()
        except EngineError as exc:
            log.warning("health check failed: %s", exc)
        try:
            reply = self.client.heartbeat(Heartbeat(host=self._host_report(), containers=self.container_reports()))
        except AuthRejected as exc:
            raise AgentError(f"the control plane refused this node's credential ({exc}); register again with "
                             f"a new join token after removing {self.store.path}") from exc
        if self.config.heartbeat_interval_s is None:
            self.interval_s = reply.heartbeat_interval_s
        self.drained = reply.drained
        assert self.state is not None
        if self.state.drained != reply.drained or self.state.expiries != reply.expiries:
            self.state = self.state.model_copy(update={"drained": reply.drained, "expiries": dict(reply.expiries)})
            self._save(self.state)
        try:
            for command in reply.commands:
                self.execute(command)
        except AuthRejected as exc:
            raise AgentError(f"the control plane refused this node's credential: {exc}") from exc
        if reply.commands:
            try:  # the first probe of what just started (its result goes in the next heartbeat)
                self.check_health()
            except EngineError as exc:
                log.warning("health check failed: %s", exc)
        return len(reply.commands)

    def tick(self) -> bool:
        """One turn of ``run_forever``: act on lifetimes locally, then heartbeat and carry out the reply.
        False when the control plane (or the engine) failed this turn; a rejected credential raises."""
        try:
            self.enforce_lifetimes()
        except EngineError as exc:
            log.warning("lifetime check failed: %s", exc)
        try:
            self.run_once()
        except (ControlPlaneError, EngineError) as exc:
            log.warning("heartbeat failed: %s", exc)
            return False
        return True

    def run_forever(self) -> None:
        """Heartbeat until ``stop()``; an unreachable control plane is retried (lifetimes are still
        enforced locally every turn), a rejected credential ends it."""
        failures = 0
        while not self._stop.is_set():
            failures = 0 if self.tick() else failures + 1
            wait_s = min(self.interval_s * (2 ** min(failures, 4)), 300.0) if failures else self.interval_s
            heartbeat_at = self.clock() + timedelta(seconds=wait_s)
            probing = True
            while not self._stop.is_set() and not (self.health_news() and not failures):
                due = self.next_health_due() if probing else None
                until = heartbeat_at if due is None else min(due, heartbeat_at)
                self._stop.wait(max((until - self.clock()).total_seconds(), 0.05))
                if self.clock() >= heartbeat_at:
                    break
                try:  # a probe between heartbeats; a change of health is reported at once (loop test)
                    self.check_health()
                except EngineError as exc:  # the engine is failing: no more probes until the heartbeat
                    log.warning("health check failed: %s", exc)
                    probing = False

    def enforce_lifetimes(self) -> list[str]:
        """Stop the managed containers still running ``expiry_grace_s`` past their expiry (the control
        plane's last word for it, else the container's label); the placement ids stopped."""
        if self.state is None:
            return []
        now = self.clock()
        known = self.state.expiries
        grace = timedelta(seconds=self.config.expiry_grace_s)
        stopped: list[str] = []
        for info in self._managed():
            if info.state not in ("running", "paused", "restarting"):
                continue
            placement = info.labels.get(LABEL_PLACEMENT, "")
            expiry = known[placement] if placement in known else expiry_label(info)
            if expiry is None or now < expiry + grace:
                continue
            log.warning("stopping container %s of placement %s: it expired at %s (the control plane did not end "
                        "it; the container and its workspace are kept)", info.id[:12], placement, expiry.isoformat())
            self.engine.stop(info.id, self.config.stop_timeout_s)
            stopped.append(placement)
        if stopped:
            self.gpu_owners = self.rebuild_ownership()
        return stopped

    def stop(self) -> None:
        self._stop.set()

    # -- commands ---------------------------------------------------------------------------------

    def _report(self, command: Command, progress: CommandProgress) -> None:
        try:
            self.client.progress(command.id, progress)
        except AuthRejected:
            raise
        except ControlPlaneError as exc:  # the command is sent again and adopted; never fatal
            log.warning("progress of command %s not delivered: %s", command.id, exc)

    def _journal(self, command: Command | None) -> None:
        assert self.state is not None
        self.state = self.state.model_copy(update={"in_flight": command})
        self._save(self.state)

    def execute(self, command: Command) -> None:
        """Carry out one command, reporting its progress; a refusal or engine failure is reported 'failed'."""
        self._journal(command)
        try:
            handler = {"place": self._place, "stop": self._stop_placement, "start": self._start_placement,
                       "destroy": self._destroy}[command.action]
            handler(command)
        except (CommandRefused, EngineError) as exc:
            log.warning("command %s (%s %s) failed: %s", command.id, command.action, command.placement_id, exc)
            self._report(command, CommandProgress(state="failed", error=str(exc), message=str(exc)))
        finally:
            self.gpu_owners = self.rebuild_ownership()
        self._journal(None)

    def _containers(self, placement_id: str) -> list[ContainerInfo]:
        return self._managed({LABEL_PLACEMENT: placement_id})

    def _check_gpus_free(self, uuids: list[str], placement_id: str) -> None:
        wanted = self._expand(uuids)
        for info in self._managed():
            holder = info.labels.get(LABEL_PLACEMENT, "")
            if holder == placement_id or info.state not in HOLDING_STATES:
                continue
            taken = wanted & self._expand(gpu_label(info))
            if taken:
                raise CommandRefused(f"GPU {', '.join(sorted(taken))} is already given to placement {holder} "
                                     f"(container {info.id[:12]})")

    def _expand(self, uuids: list[str]) -> set[str]:
        """The UUIDs with each GPU's MIG devices and each MIG device's GPU (they cannot be shared either)."""
        out = set(uuids)
        for gpu in self.host.gpus:
            family = {gpu.uuid} | {m.uuid for m in gpu.mig_devices}
            if family & out:
                out |= family
        return out

    def _gpu_refs(self, spec: PlacementSpec) -> list[GpuRef]:
        if not spec.gpu_uuids:
            return []
        if not self.engine_report.self_test_ok:
            raise CommandRefused(f"GPU placements are refused on this node: the {self.engine.kind} self-test "
                                 f"failed ({self.engine_report.detail})")
        names = cdi_names(self.host)
        unknown = [uuid for uuid in spec.gpu_uuids if uuid not in names]
        if unknown:
            raise CommandRefused(f"GPU {', '.join(unknown)} is not on this node")
        if len(set(spec.gpu_uuids)) != len(spec.gpu_uuids):
            raise CommandRefused("a GPU is listed twice in gpu_uuids")
        split = [g.uuid for g in self.host.gpus if g.uuid in spec.gpu_uuids and g.mig_mode == "enabled"]
        if split:
            raise CommandRefused(f"GPU {', '.join(split)} has MIG enabled: place on its MIG devices instead")
        return [GpuRef(uuid=uuid, cdi_name=names[uuid]) for uuid in spec.gpu_uuids]

    def _running(self, command: Command, info: ContainerInfo, message: str) -> None:
        self.health.pop(info.id, None)  # (re)started: a fresh grace
        fresh = self.engine.inspect(info.id) or info
        self._report(command, CommandProgress(state="running", message=message, container_id=fresh.id,
                                              published_ports=fresh.published_ports))

    def _adopt(self, command: Command, existing: list[ContainerInfo]) -> None:
        keep = next((c for c in existing if c.labels.get(LABEL_COMMAND) == command.id), existing[0])
        for extra in existing:
            if extra.id != keep.id:  # a duplicate can only come from outside the agent; never keep two
                self.engine.remove(extra.id)
        if keep.state != "running":
            self._check_gpus_free(gpu_label(keep), command.placement_id)
            self.engine.start(keep.id)
        self._running(command, keep, f"adopted the existing container {keep.id[:12]}")

    def _place(self, command: Command) -> None:
        spec = command.spec
        if spec is None or spec.placement_id != command.placement_id:
            raise CommandRefused("a place command needs a spec for the same placement")
        if self.drained:
            raise CommandRefused("this node is drained: it starts no new placement (running ones stay)")
        self._report(command, CommandProgress(state="accepted"))
        existing = self._containers(spec.placement_id)
        if existing:
            self._adopt(command, existing)
            return
        self._create_and_start(command, spec)

    def _create_and_start(self, command: Command, spec: PlacementSpec) -> None:
        if spec.expires_at is not None and spec.expires_at <= self.clock():
            raise CommandRefused(f"the placement expired at {spec.expires_at.isoformat()}")
        chosen = sorted(set(spec.env) & set(GPU_ENV))
        if chosen:
            raise CommandRefused(f"the environment sets {', '.join(chosen)}, which would choose GPUs past the pinning")
        gpus = self._gpu_refs(spec)
        self._check_gpus_free(spec.gpu_uuids, spec.placement_id)
        if not self.engine.image_present(spec.image):
            self._report(command, CommandProgress(state="pulling", message=spec.image))
            self.engine.pull(spec.image)
        self._report(command, CommandProgress(state="creating"))
        try:
            container_id = self.engine.create(self._request(command, spec, gpus))
        except NameConflict:
            self._adopt(command, self._containers(spec.placement_id))
            return
        try:
            self._report(command, CommandProgress(state="starting", container_id=container_id))
            self._check_gpus_free(spec.gpu_uuids, spec.placement_id)
            self.engine.start(container_id)
        except (EngineError, CommandRefused):
            self.engine.remove(container_id)  # roll back: nothing half-made stays behind
            raise
        info = self.engine.inspect(container_id)
        if info is None:
            raise EngineError(f"container {container_id[:12]} vanished after start")
        self._running(command, info, "started")

    def _request(self, command: Command, spec: PlacementSpec, gpus: list[GpuRef]) -> ContainerRequest:
        return ContainerRequest(
            name=container_name(spec.placement_id), image=spec.image,
            labels=placement_labels(spec, node_id=self.node_id or "", command_id=command.id), command=spec.command,
            env=dict(spec.env), gpus=gpus, cpus=spec.cpus, memory_mib=spec.memory_mib,
            workspace_volume=spec.workspace_volume,
            ports=[PortRequest(p.container_port, p.protocol) for p in spec.ports],
        )

    def _stop_placement(self, command: Command) -> None:
        existing = self._containers(command.placement_id)
        if not existing:
            raise CommandRefused(f"no container for placement {command.placement_id} on this node")
        for info in existing:
            if info.state in ("running", "paused", "restarting"):
                self.engine.stop(info.id, self.config.stop_timeout_s)
        self._report(command, CommandProgress(state="stopped", container_id=existing[0].id,
                                              message="stopped; the workspace is kept"))

    def _start_placement(self, command: Command) -> None:
        """Start a stopped placement's container. The command carries the GPUs assigned now: when they are
        the container's own it is started as it is; otherwise (its GPUs went to other work while it was
        stopped) it is recreated on the new GPUs, since a container's devices are fixed at creation; the
        workspace is a named volume and survives. An interrupted recreate is finished on restart: the
        command is journaled, and with no container left it is simply created."""
        spec = command.spec
        existing = self._containers(command.placement_id)
        if spec is None:  # a control plane that sends no spec: start what is there
            if not existing:
                raise CommandRefused(f"no container for placement {command.placement_id} on this node")
            info = existing[0]
            if info.state != "running":
                self._check_gpus_free(gpu_label(info), command.placement_id)
                self.engine.start(info.id)
            self._running(command, info, "started again")
            return
        if spec.placement_id != command.placement_id:
            raise CommandRefused("a start command's spec names another placement")
        self._report(command, CommandProgress(state="accepted"))
        same = [c for c in existing if sorted(gpu_label(c)) == sorted(spec.gpu_uuids)]
        if same:
            if same[0].state != "running" and spec.expires_at is not None and spec.expires_at <= self.clock():
                raise CommandRefused(f"the placement expired at {spec.expires_at.isoformat()}")
            self._adopt(command, same)
            return
        self._gpu_refs(spec)  # refuse unknown or MIG-split GPUs before removing anything
        self._check_gpus_free(spec.gpu_uuids, spec.placement_id)
        for info in existing:
            if info.state in HOLDING_STATES and info.state != "created":
                raise CommandRefused(f"container {info.id[:12]} of placement {command.placement_id} is {info.state} "
                                     "on other GPUs: stop it first")
            log.info("recreating container %s of placement %s on GPUs %s (it had %s)", info.id[:12],
                     command.placement_id, ",".join(spec.gpu_uuids), ",".join(gpu_label(info)))
            self.engine.remove(info.id)
        self._create_and_start(command, spec)

    def _destroy(self, command: Command) -> None:
        existing = self._containers(command.placement_id)
        for info in existing:
            self.engine.remove(info.id)
        left = [info.id for info in existing if self.engine.inspect(info.id) is not None]
        left += [info.id for info in self._containers(command.placement_id) if info.id not in left]
        if left:
            raise EngineError(f"containers {', '.join(i[:12] for i in left)} still exist after remove")
        message = "removed and verified gone" if existing else "already gone"
        self._report(command, CommandProgress(state="destroyed", message=message,
                                              container_id=existing[0].id if existing else None))

"""Health checks of placement containers: one probe (``probe``) and the state each container is in
(``HealthTracker``), as ``cloudarb.agent.protocol.HealthCheckSpec`` describes them.

Probes go to the host port the engine published for the check's container port, on the agent's own
host (``127.0.0.1`` by default): that is the path a user's client takes, so a service listening only
inside the container's loopback, or a port the engine failed to publish, is reported, not hidden.
A probe never raises: every failure becomes a reason (``refused``, ``timed out``, ``HTTP 500``...)
shown as the placement's ``health_detail``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from cloudarb.agent.protocol import HealthCheckSpec, HealthState


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str


def _port_key(check: HealthCheckSpec) -> str:
    return f"{check.port}/tcp"


def probe(check: HealthCheckSpec, *, state: str, published_ports: dict[str, int],
          host: str = "127.0.0.1") -> ProbeResult:
    """One probe of a container in engine state ``state`` with these published ports."""
    if state != "running":
        return ProbeResult(False, f"the container is {state}")
    if check.kind == "running":
        return ProbeResult(True, "running")
    host_port = published_ports.get(_port_key(check))
    if host_port is None:
        return ProbeResult(False, f"port {_port_key(check)} is not published")
    if check.kind == "tcp":
        return probe_tcp(host, host_port, timeout_s=check.probe_timeout_s)
    return probe_http(f"http://{_url_host(host)}:{host_port}{check.path}", timeout_s=check.probe_timeout_s)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def probe_tcp(host: str, port: int, *, timeout_s: float) -> ProbeResult:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ProbeResult(True, f"tcp {host}:{port} accepted")
    except ConnectionRefusedError:
        return ProbeResult(False, f"tcp {host}:{port} refused the connection")
    except TimeoutError:
        return ProbeResult(False, f"tcp {host}:{port} timed out after {timeout_s:g} s")
    except OSError as exc:
        return ProbeResult(False, f"tcp {host}:{port}: {exc.strerror or exc}")


def probe_http(url: str, *, timeout_s: float) -> ProbeResult:
    """GET without following redirects: 2xx and 3xx are healthy (a login page's redirect is a live server)."""
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    except httpx.TimeoutException:
        return ProbeResult(False, f"GET {url} timed out after {timeout_s:g} s")
    except httpx.ConnectError as exc:
        reason = "refused the connection" if "refused" in str(exc).lower() else f"could not connect ({exc})"
        return ProbeResult(False, f"GET {url} {reason}")
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"GET {url} failed: {exc.__class__.__name__}: {exc}")
    if 200 <= response.status_code < 400:
        return ProbeResult(True, f"GET {url} answered {response.status_code}")
    return ProbeResult(False, f"GET {url} answered HTTP {response.status_code}")


@dataclass(slots=True)
class HealthTracker:
    """The health of one container: fed probe results (``record``) at the times ``due`` asks for."""

    check: HealthCheckSpec
    started_at: datetime
    """When the container was first seen running (the grace counts from here)."""
    state: HealthState = "starting"
    detail: str = "not probed yet"
    healthy_since: datetime | None = None
    failures_in_row: int = 0
    passed_once: bool = False
    last_probe_at: datetime | None = None
    restarts: int = 0

    def due(self, now: datetime) -> bool:
        return self.last_probe_at is None or now >= self.last_probe_at + timedelta(seconds=self.check.interval_s)

    def next_due(self) -> datetime:
        return (self.last_probe_at or self.started_at) + timedelta(seconds=self.check.interval_s)

    def record(self, result: ProbeResult, now: datetime) -> bool:
        """Apply one probe's result; True when the state changed (worth telling the control plane now)."""
        before = self.state
        self.last_probe_at, self.detail = now, result.detail
        if result.ok:
            self.failures_in_row, self.passed_once = 0, True
            if self.state != "healthy":
                self.state, self.healthy_since = "healthy", now
        else:
            self.failures_in_row += 1
            if self.passed_once:
                if self.failures_in_row >= self.check.failures:
                    self.state, self.healthy_since = "unhealthy", None
            elif now >= self.started_at + timedelta(seconds=self.check.grace_s):
                self.state = "unhealthy"
                self.detail = (f"never healthy within the {self.check.grace_s:g} s grace; "
                               f"last probe: {result.detail}")
        return self.state != before

    def restarted(self, now: datetime) -> None:
        """The container was restarted because it was unhealthy: a fresh grace, the count kept."""
        self.restarts += 1
        self.started_at, self.last_probe_at = now, None
        self.state, self.healthy_since, self.failures_in_row, self.passed_once = "starting", None, 0, False
        self.detail = f"restarted after being unhealthy ({self.restarts} restart(s)): {self.detail}"


Prober = Callable[[HealthCheckSpec, str, dict[str, int]], ProbeResult]
"""(check, engine state, published ports) -> result; the agent's is ``probe`` on its configured host."""

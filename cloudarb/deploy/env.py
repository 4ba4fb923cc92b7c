"""What the deploy core runs against: the database, settings, the provider lookup, a clock.

Everything that differs between production, the embedded mode and tests is here and injectable: the
provisioner of a provider and account (rate limited, from the explicit registry), the clock and sleep
(lifetime, grace windows and back-off are tested on a fake clock), the reachability probe, the step
publisher (a deploy job streams every step as job events), and named crash points for crash tests
(``CLOUDARB_DEPLOY_CRASH_AT``; the process SIGKILLs itself there).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudarb.config import Settings
from cloudarb.db.engine import Database
from cloudarb.db.types import utcnow
from cloudarb.deploy import keys
from cloudarb.deploy.providers.base import Provisioner
from cloudarb.deploy.ratelimit import Limited, Limiter, LocalLimiter, RedisLimiter

if TYPE_CHECKING:
    from cloudarb.context import Context

CRASH_ENV = "CLOUDARB_DEPLOY_CRASH_AT"
CRASH_POINTS = ("after_intent", "after_create", "during_destroy")
ProviderSource = Callable[[str, str], Provisioner]


def _quiet(step: str, payload: dict[str, Any]) -> None:
    return None


def _no_hooks(organization_id: str, event: str, payload: dict[str, Any], blocking: bool) -> list[str]:
    return []


Notify = Callable[[str, str, dict[str, Any], bool], list[str]]
"""(organization, event, payload, blocking) -> failures: the organization's hooks around a step
(``deploy.before`` ...); a blocking "before" hook that fails stops the step."""


def tcp_probe(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` opens within 3 s (the SSH port answering)."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@dataclass
class DeployEnv:
    db: Database
    settings: Settings
    providers: ProviderSource
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    probe: Callable[[str, int], bool] = tcp_probe
    emit: Callable[[str, dict[str, Any]], None] = _quiet
    notify: Notify = _no_hooks
    crash_at: str | None = field(default_factory=lambda: os.environ.get(CRASH_ENV) or None)
    _install: str | None = None
    _cache: dict[tuple[str, str], Provisioner] = field(default_factory=dict)

    def install_id(self) -> str:
        if self._install is None:
            with self.db.session() as session:
                self._install = keys.install_id(session, self.settings)
        return self._install

    def prefix(self) -> str:
        return keys.prefix(self.install_id())

    def provisioner(self, provider: str, account: str = "default") -> Provisioner:
        made = self._cache.get((provider, account))
        if made is None:
            made = self._cache[(provider, account)] = self.providers(provider, account)
        return made

    def crash(self, point: str) -> None:
        """Die here, as a SIGKILL would, when the crash test names this point."""
        if self.crash_at == point:
            os.kill(os.getpid(), signal.SIGKILL)

    def with_emit(self, emit: Callable[[str, dict[str, Any]], None]) -> DeployEnv:
        return DeployEnv(db=self.db, settings=self.settings, providers=self.providers, clock=self.clock,
                         sleep=self.sleep, probe=self.probe, emit=emit, notify=self.notify, crash_at=self.crash_at,
                         _install=self._install, _cache=self._cache)


def provider_config(settings: Settings, provider: str, account: str = "default") -> Any:
    """The ``ProviderConfig`` of one provider from the settings: its credentials by client field, its
    options from the deploy settings (RunPod's API version, AWS regions and AMI) and its base URL
    override (``CLOUDARB_DEPLOY_BASE_URL_<PROVIDER>``)."""
    from cloudarb.deploy.providers.base import ProviderConfig

    creds = {c.field: v.get_secret_value() for c, v in settings.credentials(provider).items() if v is not None}
    by_provider: dict[str, dict[str, str]] = {"runpod": {"api_version": settings.deploy_runpod_api},
                                              "aws": {"regions": settings.aws_regions, "ami": settings.aws_ami},
                                              "kubernetes": {"kubeconfig": str(settings.deploy_kubeconfig or ""),
                                                             "context": settings.deploy_kube_context or ""}}
    options = by_provider.get(provider, {})
    creds.update({k: v for k, v in options.items() if v and k not in creds})
    base_url = getattr(settings, f"deploy_base_url_{provider}", None)
    return ProviderConfig(credentials=creds, base_url=base_url, account=account)


def env_for(ctx: Context) -> DeployEnv:
    """The production (or embedded) environment of a worker: registry provisioners behind the shared
    rate limiter (Redis when the context has one)."""
    from cloudarb.deploy.providers import registry

    limiter: Limiter = RedisLimiter(ctx.settings.redis_url) if ctx.settings.redis_url else _LOCAL
    settings = ctx.settings

    def source(provider: str, account: str) -> Provisioner:
        inner = registry.provisioner(provider, provider_config(settings, provider, account))
        limited: Provisioner = Limited(inner, limiter, account=account)
        return limited

    def notify(organization_id: str, event: str, payload: dict[str, Any], blocking: bool) -> list[str]:
        from cloudarb.hooks import emit

        return list(emit(ctx, organization_id, event, payload, blocking=blocking,
                         subject_id=payload.get("deployment_id")).failures)

    return DeployEnv(db=ctx.db, settings=settings, providers=source, notify=notify)


_LOCAL = LocalLimiter()
"""The embedded mode's buckets: one per process, shared by its job threads."""

"""The small HTTP helper the REST provisioning modules share (Lambda, RunPod, Vast, TensorDock).

One place decides what a failed HTTP exchange means for provisioning, so each module only maps the
error codes its provider documents:

- Transport failures: a connect error (nothing reached the provider) is ``ProviderUnavailable``;
  a timeout or a broken exchange after the request left is ``CreateUnknown`` for a call that creates
  (the instance may exist: the core looks for its key) and ``ProviderUnavailable`` otherwise.
- 429: waited out with ``config.sleep`` (``Retry-After`` seconds or HTTP date when the provider
  sends one, else exponential backoff) up to ``RestPolicy.rate_limit_retries`` times; then, or at
  once when the asked wait is longer than ``RestPolicy.max_wait_s``, ``RateLimited`` carrying
  ``retry_after_s`` for the core's shared limiter. A 429 creates nothing, so a create retries too.
- 5xx: a call that creates is never retried (RunPod answers 500 after creating a pod):
  ``CreateUnknown``. Reads and deletes are idempotent and retried, then ``ProviderUnavailable``.
- Other statuses: the module's ``translate`` hook maps documented error bodies first; what is left
  is 401/403 -> ``AuthFailed``, 4xx -> ``InvalidLaunch`` on a create, else ``ProvisionError``.

Credentials never appear in messages or logs. ``config.transport`` replaces the network in unit
tests, ``config.base_url`` points a module at a fake on loopback.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    ProviderUnavailable,
    ProvisionError,
    RateLimited,
)
from cloudarb.deploy.providers.base import ProviderConfig

logger = logging.getLogger(__name__)

AuthScheme = Literal["bearer", "basic"]
Translate = Callable[[httpx.Response, bool], ProvisionError | None]
"""A module's mapping of one error response (and whether the call creates) to an error kind, or None."""

_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE", "PUT"})


@dataclass(frozen=True)
class RestPolicy:
    """How hard the helper tries before it hands an error to the core."""

    rate_limit_retries: int = 2
    """429 answers waited out before ``RateLimited`` is raised."""
    server_error_retries: int = 2
    """5xx answers and transport failures of idempotent calls retried before giving up."""
    backoff_s: float = 1.0
    """First backoff wait (doubled per attempt) when the provider does not say how long."""
    max_wait_s: float = 30.0
    """A longer ``Retry-After`` is not slept here: ``RateLimited`` goes to the core at once."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_body(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it has none (error bodies are best-effort)."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class RestClient:
    """An httpx client bound to one provider account: base URL, auth header, timeouts, error policy."""

    def __init__(
        self,
        *,
        provider: str,
        config: ProviderConfig,
        default_base_url: str,
        auth: AuthScheme = "bearer",
        credential: str = "api_key",
        translate: Translate | None = None,
        policy: RestPolicy | None = None,
    ) -> None:
        self.provider = provider
        self._config = config
        self._translate = translate
        self.policy = policy or RestPolicy()
        secret = config.credentials.get(credential, "")
        if not secret:
            raise AuthFailed(f"{provider}: no credential {credential!r} configured", provider=provider)
        if auth == "basic":
            token = base64.b64encode(f"{secret}:".encode()).decode()
            header = f"Basic {token}"
        else:
            header = f"Bearer {secret}"
        self._client = httpx.Client(
            base_url=(config.base_url or default_base_url).rstrip("/"),
            headers={"Authorization": header, "Accept": "application/json"},
            timeout=config.timeout_s,
            transport=config.transport,
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        creates: bool = False,
        accept: tuple[int, ...] = (200, 201, 204),
    ) -> httpx.Response:
        """Send one call; return the response when its status is in ``accept`` (a module lists 404
        there where absence is an answer), else raise the translated error kind."""
        method = method.upper()
        retry_5xx = method in _IDEMPOTENT and not creates
        rate_waits = 0
        failures = 0
        while True:
            try:
                response = self._client.request(method, path, json=json_body, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error: ProvisionError = ProviderUnavailable(
                    f"{self.provider}: cannot connect ({type(exc).__name__})", provider=self.provider
                )
                if failures < self.policy.server_error_retries:
                    failures += 1
                    self._wait(self.policy.backoff_s * 2 ** (failures - 1), path, "connect")
                    continue
                raise error from exc
            except httpx.TransportError as exc:
                what = f"{method} {path}: {type(exc).__name__}"
                if creates:
                    raise CreateUnknown(
                        f"{self.provider}: {what}; the instance may exist", provider=self.provider
                    ) from exc
                if retry_5xx and failures < self.policy.server_error_retries:
                    failures += 1
                    self._wait(self.policy.backoff_s * 2 ** (failures - 1), path, "transport")
                    continue
                raise ProviderUnavailable(f"{self.provider}: {what}", provider=self.provider) from exc
            status = response.status_code
            if status in accept:
                return response
            if status == 429:
                asked = parse_retry_after(response.headers.get("Retry-After"))
                wait = asked if asked is not None else self.policy.backoff_s * 2**rate_waits
                if rate_waits < self.policy.rate_limit_retries and wait <= self.policy.max_wait_s:
                    rate_waits += 1
                    self._wait(wait, path, "429")
                    continue
                raise RateLimited(
                    f"{self.provider}: rate limited on {method} {path}",
                    provider=self.provider,
                    retry_after_s=asked,
                )
            translated = self._translate(response, creates) if self._translate else None
            if translated is not None:
                raise translated
            if status >= 500:
                if creates:
                    raise CreateUnknown(
                        f"{self.provider}: HTTP {status} on {method} {path}; the instance may exist",
                        provider=self.provider,
                    )
                if retry_5xx and failures < self.policy.server_error_retries:
                    failures += 1
                    self._wait(self.policy.backoff_s * 2 ** (failures - 1), path, str(status))
                    continue
                raise ProviderUnavailable(
                    f"{self.provider}: HTTP {status} on {method} {path}", provider=self.provider
                )
            raise self._client_error(response, method, path, creates)

    def json(self, response: httpx.Response, *, creates: bool = False) -> Any:
        """The JSON body of an accepted response; an unreadable one is an unknown outcome."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = CreateUnknown if creates else ProviderUnavailable
            raise kind(
                f"{self.provider}: unreadable body (HTTP {response.status_code})", provider=self.provider
            ) from exc

    def _client_error(self, response: httpx.Response, method: str, path: str, creates: bool) -> ProvisionError:
        status = response.status_code
        message = f"{self.provider}: HTTP {status} on {method} {path}"
        if status in (401, 403):
            return AuthFailed(message, provider=self.provider)
        if creates and 400 <= status < 500:
            return InvalidLaunch(message, provider=self.provider)
        return ProvisionError(message, provider=self.provider)

    def _wait(self, seconds: float, path: str, reason: str) -> None:
        logger.info(
            "provider call retried",
            extra={"provider": self.provider, "path": path, "reason": reason, "wait_s": seconds},
        )
        self._config.sleep(seconds)

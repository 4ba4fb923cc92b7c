"""A token bucket per provider and account, shared by every worker: in Redis in production, in the
process in the embedded mode.

Each provider declares its sustained rate, burst and extra launch interval (``Capabilities``); every
provider call of the deploy core takes a token first (``Limited``), so many workers together stay
under what the provider allows instead of each discovering its 429s alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from cloudarb.deploy.providers.base import LaunchSpec, RegionalListing, RemoteInstance

# KEYS[1] bucket; ARGV: rate/s, burst, now (s). Returns seconds to wait (0 = token taken).
_LUA = """
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2]); local now = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or burst; local at = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class Limiter(Protocol):
    def acquire(self, bucket: str, *, rate: float, burst: int) -> None:
        """Block until a token of ``bucket`` is taken."""
        ...


class LocalLimiter:
    """Token buckets in this process (the embedded mode has one process)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._clock = clock
        self._sleep = sleep

    def take(self, bucket: str, *, rate: float, burst: int) -> float:
        """Take a token if one is there; else the seconds until one is."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
            if tokens >= 1:
                self._buckets[bucket] = (tokens - 1, now)
                return 0.0
            self._buckets[bucket] = (tokens, now)
            return (1 - tokens) / rate

    def acquire(self, bucket: str, *, rate: float, burst: int) -> None:
        while (wait := self.take(bucket, rate=rate, burst=burst)) > 0:
            self._sleep(wait)


class RedisLimiter:
    """The same buckets in Redis, one atomic script per take, shared by every worker."""

    def __init__(self, redis_url: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(redis_url)
        self._script = self._redis.register_script(_LUA)
        self._sleep = sleep

    def take(self, bucket: str, *, rate: float, burst: int) -> float:
        answer = self._script(keys=[f"cloudarb:deploy:bucket:{bucket}"], args=[rate, burst, time.time()])
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    def acquire(self, bucket: str, *, rate: float, burst: int) -> None:
        while (wait := self.take(bucket, rate=rate, burst=burst)) > 0:
            self._sleep(wait)


class Limited:
    """A provisioner whose every call first takes a token of its provider and account's bucket
    (creates also one of the launch bucket, where the provider limits launches on their own)."""

    def __init__(self, inner: Any, limiter: Limiter, *, account: str) -> None:
        self.inner = inner
        self.key: str = inner.key
        self.capabilities = inner.capabilities
        self._limiter = limiter
        self._bucket = f"{self.key}:{account}"

    def _take(self) -> None:
        caps = self.capabilities
        self._limiter.acquire(self._bucket, rate=caps.requests_per_s, burst=caps.burst)

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        if self.capabilities.launch_interval_s > 0:
            self._limiter.acquire(self._bucket + ":launch", rate=1 / self.capabilities.launch_interval_s, burst=1)
        self._take()
        made: RemoteInstance = self.inner.create(spec)
        return made

    def find(self, key: str) -> RemoteInstance | None:
        self._take()
        found: RemoteInstance | None = self.inner.find(key)
        return found

    def get(self, provider_id: str) -> RemoteInstance | None:
        self._take()
        found: RemoteInstance | None = self.inner.get(provider_id)
        return found

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        self._take()
        listed: list[RemoteInstance] = self.inner.list_owned(prefix)
        return listed

    def destroy(self, provider_id: str) -> None:
        self._take()
        self.inner.destroy(provider_id)

    def stop(self, provider_id: str) -> None:
        self._take()
        self.inner.stop(provider_id)

    def start(self, provider_id: str) -> None:
        self._take()
        self.inner.start(provider_id)

    def also_list(self, regions: Iterable[str]) -> None:
        """Passed on where the provider lists by region (no request is made)."""
        if isinstance(self.inner, RegionalListing):
            self.inner.also_list(regions)

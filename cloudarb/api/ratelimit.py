"""Per-principal rate limits: fixed one-minute windows, in Redis when configured, else in memory."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from cloudarb.errors import RETRY_AFTER_S, Unavailable


class RateLimiter(Protocol):
    def hit(self, key: str) -> int | None:
        """Count one request; return seconds to wait if over the limit, else None."""
        ...


def make_limiter(redis_url: str | None, per_minute: int) -> RateLimiter:
    """Shared by every API process through Redis when there is one, else this process's memory."""
    return RedisRateLimiter(redis_url, per_minute) if redis_url else MemoryRateLimiter(per_minute)


class MemoryRateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, key: str) -> int | None:
        now = time.time()
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count > self.per_minute:
            return max(1, int((window + 1) * 60 - now + 0.999))
        return None


class RedisRateLimiter:
    def __init__(self, url: str, per_minute: int) -> None:
        import redis

        self.per_minute = per_minute
        self._client = redis.Redis.from_url(url)

    def hit(self, key: str) -> int | None:
        now = time.time()
        window = int(now // 60)
        name = f"cloudarb:rl:{key}:{window}"
        import redis

        try:
            pipe = self._client.pipeline()
            pipe.incr(name)
            pipe.expire(name, 120)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            raise Unavailable("the rate limiter's Redis is unavailable; retry shortly",
                              headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
        if count > self.per_minute:
            return max(1, int((window + 1) * 60 - now + 0.999))
        return None

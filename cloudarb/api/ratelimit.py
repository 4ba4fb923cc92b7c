"""Per-principal rate limits over a sliding window: at most ``limit`` admitted requests in any
``window_s`` seconds (a sliding log of admission times, so a burst at a window's edge cannot double
the limit the way fixed windows allow). In Redis when configured (one atomic Lua script per hit on a
sorted set, shared by every API process), else in this process's memory.

Only admitted requests are logged: a client over the limit is told how long until its oldest
admission leaves the window, and gets exactly ``limit`` admissions in any window however hard it
retries.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from cloudarb.errors import RETRY_AFTER_S, Unavailable

WINDOW_S = 60.0

Clock = Callable[[], float]


class RateLimiter(Protocol):
    def hit(self, key: str) -> int | None:
        """Count one request; return seconds to wait if over the limit, else None."""
        ...


def make_limiter(redis_url: str | None, per_minute: int) -> RateLimiter:
    """Shared by every API process through Redis when there is one, else this process's memory."""
    return RedisRateLimiter(redis_url, per_minute) if redis_url else MemoryRateLimiter(per_minute)


def _wait_s(oldest: float, now: float, window_s: float) -> int:
    """Whole seconds (at least 1) until an admission made at ``oldest`` leaves the window."""
    return max(1, math.ceil(oldest + window_s - now))


class MemoryRateLimiter:
    """This process's sliding log per key (embedded mode, or no Redis configured)."""

    MAX_KEYS = 100_000

    def __init__(self, per_minute: int, *, window_s: float = WINDOW_S, clock: Clock = time.time) -> None:
        self.limit = per_minute
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[str, deque[float]] = {}

    def hit(self, key: str) -> int | None:
        now = self._clock()
        horizon = now - self.window_s
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                if len(self._logs) >= self.MAX_KEYS:
                    self._forget_idle(horizon)
                log = self._logs[key] = deque()
            while log and log[0] <= horizon:
                log.popleft()
            if len(log) >= self.limit:
                return _wait_s(log[0], now, self.window_s)
            log.append(now)
        return None

    def _forget_idle(self, horizon: float) -> None:
        """Drop keys with no admission inside the window (their logs would be empty anyway)."""
        self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > horizon}


# KEYS[1] the key's sorted set; ARGV: now (s), window (s), limit, a unique member.
# Returns -1 when admitted, else the score (admission time) of the oldest member still in the window.
_SLIDING_LOG = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return oldest[2]
"""


class RedisRateLimiter:
    """The sliding log in Redis: check-and-admit is one script, so concurrent API processes never
    admit more than the limit between them."""

    def __init__(self, url: str, per_minute: int, *, window_s: float = WINDOW_S, clock: Clock = time.time) -> None:
        import redis

        self.limit = per_minute
        self.window_s = window_s
        self._clock = clock
        self._client = redis.Redis.from_url(url)
        self._script: Any = self._client.register_script(_SLIDING_LOG)

    def hit(self, key: str) -> int | None:
        import redis

        now = self._clock()
        try:
            answer = self._script(keys=[f"cloudarb:rl2:{key}"],
                                  args=[repr(now), repr(self.window_s), self.limit, f"{now!r}:{uuid.uuid4().hex}"])
        except redis.RedisError as exc:
            raise Unavailable("the rate limiter's Redis is unavailable; retry shortly",
                              headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
        if isinstance(answer, int):  # -1: admitted (a score comes back as a bulk string)
            return None
        return _wait_s(float(answer), now, self.window_s)

    def close(self) -> None:
        self._client.close()

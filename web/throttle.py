"""Slows down link guessing: an address with too many unknown links in ten
minutes is answered 429 until the window passes. Counted in Redis, so every web
process shares the count; in this process alone when Redis is away."""

from __future__ import annotations

import time

from redis import Redis, RedisError

WINDOW = 600
LIMIT = 20
_local: dict[str, tuple[float, int]] = {}


class Throttle:
    def __init__(self, redis_url: str, limit: int = LIMIT, window: int = WINDOW):
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.limit, self.window = limit, window

    def blocked(self, address: str) -> bool:
        return self._count(address, 0) >= self.limit

    def miss(self, address: str) -> None:
        self._count(address, 1)

    def _count(self, address: str, add: int) -> int:
        key = f"ledgersync:link-misses:{address}"
        try:
            if not add:
                return int(self.redis.get(key) or 0)
            with self.redis.pipeline() as pipe:
                pipe.incr(key).expire(key, self.window, nx=True)
                return int(pipe.execute()[0])
        except RedisError:
            return self._count_here(key, add)

    def _count_here(self, key: str, add: int) -> int:
        started, count = _local.get(key, (time.monotonic(), 0))
        if time.monotonic() - started > self.window:
            started, count = time.monotonic(), 0
        _local[key] = (started, count + add)
        return count + add

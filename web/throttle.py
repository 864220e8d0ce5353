"""Slows down guessing, per address: an address that did something too often in a
window (opened too many unknown links; asked for too many sign-in codes; typed too
many wrong codes) is answered 429 until the window passes. Counted in Redis, so
every web process shares the count; in this process alone when Redis is away.

The address is the client's own: behind a proxy, `PROXY_HOPS` (ProxyFix) has put it
in `request.remote_addr`, and a client can't choose it by sending X-Forwarded-For."""

from __future__ import annotations

import threading
import time

from redis import Redis, RedisError

WINDOW = 600
LIMIT = 20


class Throttle:
    def __init__(self, redis_url: str, limit: int = LIMIT, window: int = WINDOW,
                 name: str = "link-misses"):
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.limit, self.window, self.name = limit, window, name
        self._local: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str) -> bool:
        return self._count(address, 0) >= self.limit

    def miss(self, address: str) -> None:
        self._count(address, 1)

    def _count(self, address: str, add: int) -> int:
        key = f"ledgersync:{self.name}:{address}"
        try:
            if not add:
                return int(self.redis.get(key) or 0)
            with self.redis.pipeline() as pipe:
                pipe.incr(key).expire(key, self.window, nx=True)
                return int(pipe.execute()[0])
        except RedisError:
            return self._count_here(key, add)

    def _count_here(self, key: str, add: int) -> int:
        with self._lock:
            started, count = self._local.get(key, (time.monotonic(), 0))
            if time.monotonic() - started > self.window:
                started, count = time.monotonic(), 0
            self._local[key] = (started, count + add)
            return count + add

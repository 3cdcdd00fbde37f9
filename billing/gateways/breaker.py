"""
A small circuit breaker kept in the cache (Redis in production, so every
worker shares it). After `threshold` failures within `window` seconds the
circuit opens for `cooldown` seconds: calls fail at once instead of making
every buyer wait for a timeout while the provider is down.
"""

import time

from django.core.cache import cache


class CircuitBreaker:
    def __init__(self, name: str, *, threshold: int = 5, window: int = 60, cooldown: int = 30):
        self.name = name
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown

    @property
    def _failures_key(self) -> str:
        return f"circuit:{self.name}:failures"

    @property
    def _open_key(self) -> str:
        return f"circuit:{self.name}:open_until"

    def is_open(self) -> bool:
        try:
            open_until = cache.get(self._open_key)
        except Exception:  # noqa: BLE001 - a cache outage must not block payments
            return False
        return bool(open_until and open_until > time.time())

    def record_failure(self) -> None:
        try:
            cache.add(self._failures_key, 0, timeout=self.window)
            failures = cache.incr(self._failures_key)
            if failures >= self.threshold:
                cache.set(self._open_key, time.time() + self.cooldown, timeout=self.cooldown)
                cache.delete(self._failures_key)
        except Exception:  # noqa: BLE001
            pass

    def record_success(self) -> None:
        try:
            cache.delete_many([self._failures_key, self._open_key])
        except Exception:  # noqa: BLE001
            pass

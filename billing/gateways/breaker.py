"""
A small circuit breaker kept in the cache (Redis in production, so every
worker process and node shares it).

- closed: calls go through; `threshold` failures within `window` seconds open it.
- open: for `cooldown` seconds every call fails at once instead of making
  every buyer wait for a timeout while the provider is down.
- half-open: after the cooldown exactly one call, the probe, goes to the
  provider; it is claimed with `cache.add` (SET NX in Redis: atomic across
  processes). Every other call keeps failing fast until the probe answers:
  a success closes the circuit, a failure opens it for another cooldown. A
  probe whose process dies frees its claim after `probe_ttl` seconds.

A cache outage never blocks payments: the breaker then lets calls through.
"""

import time

from django.conf import settings
from django.core.cache import cache


class CircuitBreaker:
    def __init__(
        self, name: str, *, threshold: int = 5, window: int = 60, cooldown: int = 30, probe_ttl: float | None = None
    ):
        self.name = name
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
        # A probe lasts at most one budget of provider calls (billing.gateways.base.gateway_budget).
        self.probe_ttl = probe_ttl if probe_ttl is not None else settings.GATEWAY_REQUEST_BUDGET_SECONDS + 5

    @property
    def _failures_key(self) -> str:
        return f"circuit:{self.name}:failures"

    @property
    def _open_key(self) -> str:
        # Holds the time the cooldown ends; kept (no expiry) until a call succeeds: the mark of half-open.
        return f"circuit:{self.name}:open_until"

    @property
    def _probe_key(self) -> str:
        return f"circuit:{self.name}:probe"

    def state(self) -> str:
        """"closed", "open" or "half_open" (reads only)."""
        try:
            open_until = cache.get(self._open_key)
        except Exception:  # noqa: BLE001 - a cache outage must not block payments
            return "closed"
        if open_until is None:
            return "closed"
        return "open" if open_until > time.time() else "half_open"

    def allow(self) -> bool:
        """May this call go to the provider? Closed: yes. Open: no. Half-open: only the one probe."""
        try:
            open_until = cache.get(self._open_key)
            if open_until is None:
                return True
            if open_until > time.time():
                return False
            return bool(cache.add(self._probe_key, time.time(), timeout=self.probe_ttl))
        except Exception:  # noqa: BLE001 - a cache outage must not block payments
            return True

    def record_failure(self) -> None:
        try:
            if cache.get(self._open_key) is not None:
                # The probe failed (or a call started before the circuit opened): a full cooldown again.
                self._open()
                return
            cache.add(self._failures_key, 0, timeout=self.window)
            if cache.incr(self._failures_key) >= self.threshold:
                self._open()
        except Exception:  # noqa: BLE001 - the cache (Redis) is down: the breaker's bookkeeping never fails a payment call
            pass

    def record_success(self) -> None:
        try:
            cache.delete_many([self._failures_key, self._open_key, self._probe_key])
        except Exception:  # noqa: BLE001 - the cache (Redis) is down: the breaker's bookkeeping never fails a payment call
            pass

    def release_probe(self) -> None:
        """The probe got an answer that is neither health nor failure (a refusal): let the next call probe."""
        try:
            cache.delete(self._probe_key)
        except Exception:  # noqa: BLE001 - the cache (Redis) is down: the breaker's bookkeeping never fails a payment call
            pass

    def _open(self) -> None:
        cache.set(self._open_key, time.time() + self.cooldown, timeout=None)
        cache.delete_many([self._failures_key, self._probe_key])

"""The circuit breaker (billing/gateways/breaker.py): closed, open, and half-open with exactly one probe."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.exceptions import GatewayUnavailable
from billing.gateways import gateway_for
from billing.gateways.breaker import CircuitBreaker
from billing.models import PaymentGateway
from tests.fakes.junglepay import FakeJunglePay

pytestmark = pytest.mark.django_db


def _tripped(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        breaker.record_failure()


def test_failures_open_the_circuit_and_it_stays_open_for_the_cooldown():
    breaker = CircuitBreaker("test", threshold=3, cooldown=30)
    assert breaker.allow() and breaker.state() == "closed"

    _tripped(breaker)

    assert breaker.state() == "open"
    assert not breaker.allow()


def test_after_the_cooldown_exactly_one_of_many_concurrent_callers_probes():
    # given: an open circuit whose cooldown has passed
    breaker = CircuitBreaker("test", threshold=3, cooldown=30)
    _tripped(breaker)
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        assert breaker.state() == "half_open"
        allowed = []
        barrier = threading.Barrier(8)

        def call():
            barrier.wait(timeout=20)
            allowed.append(breaker.allow())

        # when: eight workers call at once
        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        # then: one probe; the others keep failing fast
        assert sorted(allowed) == [False] * 7 + [True]
        assert not breaker.allow()


def test_a_successful_probe_closes_the_circuit():
    breaker = CircuitBreaker("test", threshold=3, cooldown=30)
    _tripped(breaker)
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        assert breaker.allow()

        breaker.record_success()

        assert breaker.state() == "closed"
        assert all(breaker.allow() for _ in range(5))


def test_a_failed_probe_opens_the_circuit_for_another_cooldown():
    breaker = CircuitBreaker("test", threshold=3, cooldown=30)
    _tripped(breaker)
    later = timezone.now() + timedelta(seconds=31)
    with time_machine.travel(later, tick=True):
        assert breaker.allow()

        breaker.record_failure()

        assert breaker.state() == "open" and not breaker.allow()
    with time_machine.travel(later + timedelta(seconds=31), tick=True):
        assert breaker.allow()  # the next probe, one cooldown later


def test_a_probe_whose_process_died_frees_its_claim_after_its_ttl():
    breaker = CircuitBreaker("test", threshold=3, cooldown=30, probe_ttl=1)
    _tripped(breaker)
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        assert breaker.allow()  # the probe's process dies here: no success, no failure
        assert not breaker.allow()
    # The claim lives in the cache with a real expiry (Redis TTL).
    time.sleep(1.5)
    with time_machine.travel(timezone.now() + timedelta(seconds=33), tick=True):
        assert breaker.allow()


def test_a_slow_gateway_gets_one_probe_from_many_workers_after_the_cooldown(settings):
    # given: JunglePay's breaker open, and a JunglePay that takes 5 s to answer a read
    with FakeJunglePay() as fake:
        settings.JUNGLEPAY_API_URL = fake.url
        config, _created = PaymentGateway.objects.update_or_create(kind="junglepay", defaults={"secret_key": "sk_test_probe"})
        transaction_id = fake._create({"amount": 2990, "externalRef": "probe"})["id"]
        _tripped(gateway_for(config).breaker)
        fake.get_delay = 5
        fetched, refused = [], []
        barrier = threading.Barrier(6)

        def fetch():
            barrier.wait(timeout=20)
            try:
                fetched.append(gateway_for(config).fetch_charge(str(transaction_id)))
            except GatewayUnavailable as exc:
                refused.append(exc)

        # when: six workers ask for the charge at once after the cooldown
        with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
            threads = [threading.Thread(target=fetch) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)

            # then: one request reached the gateway (the probe) and closed the circuit; five failed at once
            assert fake.gets == 1
            assert len(fetched) == 1 and len(refused) == 5
            assert gateway_for(config).breaker.state() == "closed"

"""
The money state machine (tests/billing/money_machine.py) as a test.

- `make test`: a bounded run with a fixed seed (the same sequences every run), after replaying every
  failing example kept in tests/billing/hypothesis-db/ (read-only here): a failure found once, by the
  fuzzer or by anyone, is replayed by every later run.
- `make fuzz-money MINUTES=N` (MONEY_FUZZ_MINUTES): fresh random seeds for N minutes, in rounds of
  FUZZ_ROUND examples; a failure is shrunk to its shortest sequence, printed (the steps as code, each
  step's note) and written to the example database, to be committed with its fix.
"""

import os
import time
from pathlib import Path

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase
from hypothesis.stateful import run_state_machine_as_test

from billing import services
from config.errors import DomainError
from tests.billing.money_machine import IGNORED, MoneyMachine, check_money, open_shop
from tests.fakes.junglepay import FakeJunglePay

EXAMPLE_DATABASE = DirectoryBasedExampleDatabase(Path(__file__).parent / "hypothesis-db")
FUZZ_MINUTES = float(os.environ.get("MONEY_FUZZ_MINUTES") or 0)
# Bounded for `make test` (measured in docs/billing.md); MONEY_MACHINE_EXAMPLES overrides it.
CI_EXAMPLES = int(os.environ.get("MONEY_MACHINE_EXAMPLES") or 30)
STEPS = 30
SEED = 20261206
FUZZ_ROUND = 10  # examples per round: the time limit is checked between rounds
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "money-ci",
    max_examples=CI_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=ReadOnlyDatabase(EXAMPLE_DATABASE),
    suppress_health_check=SLOW_IS_FINE,
    print_blob=True,
)
settings.register_profile(
    "money-fuzz",
    max_examples=FUZZ_ROUND,
    # The bounded run's step count too: a kept failure longer than what `make test` runs would be cut short
    # there and pass, so a fuzzer's find would never be replayed.
    stateful_step_count=STEPS,
    deadline=None,
    database=EXAMPLE_DATABASE,
    suppress_health_check=SLOW_IS_FINE,
    print_blob=True,
    # Explore, keep what fails; replaying the kept examples is the bounded run's job (and each round's first phase).
    phases=[Phase.reuse, Phase.generate, Phase.target, Phase.shrink, Phase.explain],
)


def money_machine():
    # The example database keys a state machine by its factory's source: this small function keeps the
    # key stable while the machine's rules change, so kept failures are still found and replayed.
    return MoneyMachine()


@pytest.fixture(scope="module")
def fake_junglepay():
    with FakeJunglePay() as fake:
        yield fake


@pytest.fixture
def money_shop(settings, fake_junglepay, db):
    settings.JUNGLEPAY_API_URL = fake_junglepay.url
    settings.SANDBOX_GATEWAY_ALLOWED = True
    MoneyMachine.fake = fake_junglepay
    MoneyMachine.shop = open_shop(now=timezone.now())
    yield
    MoneyMachine.fake = MoneyMachine.shop = None


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.skipif(FUZZ_MINUTES > 0, reason="make fuzz-money runs the machine with fresh seeds instead")
def test_every_money_operation_keeps_the_money_invariants(money_shop):
    assert not IGNORED, "MONEY_FUZZ_IGNORE is for make fuzz-money only: the bounded run checks every invariant"
    run_state_machine_as_test(seed(SEED)(money_machine), settings=settings.get_profile("money-ci"))


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.skipif(FUZZ_MINUTES <= 0, reason="set MONEY_FUZZ_MINUTES (make fuzz-money MINUTES=N) to fuzz")
def test_fuzz_the_money_machine_with_fresh_seeds(money_shop):
    deadline = time.monotonic() + FUZZ_MINUTES * 60
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        run_state_machine_as_test(money_machine, settings=settings.get_profile("money-fuzz"))
        print(f"money fuzz: round {rounds} clean ({FUZZ_ROUND} examples), {max(0, deadline - time.monotonic()) / 60:.1f} min left")


# Failures the machine found, replayed as plain sequences (kept when their fix lands; see docs/billing.md).


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_admins_activation_gives_no_days_to_a_deleted_account(money_shop):
    # given: a buyer whose pending subscription the admin canceled, and who then deleted the account
    machine = MoneyMachine()
    try:
        shop = machine.shop
        buyer = machine.new_user()
        checkout = services.create_checkout(
            plan=shop.basic, customer_name=buyer.name, customer_email=buyer.email, customer_document=buyer.fuzz_cpf,
            customer_phone="11987654321", user=buyer, now=machine.now,
        )
        services.cancel_subscription_now(subscription=checkout.subscription, actor=shop.staff, reason="fuzz", now=machine.now)
        machine.delete_account(user=buyer)

        # when: the admin activates that subscription
        try:
            services.activate_subscription(subscription=checkout.subscription, actor=shop.staff, reason="fuzz", now=machine.now)
        except DomainError:
            pass  # refusing is one right answer

        # then: nothing reached the deleted account (contract §9.8)
        check_money(machine)
    finally:
        machine.teardown()

"""
The money machine's card operations: purchase through `POST /api/checkout/card` with the
test tokenizer's hashes (paid, refused, processing; installments), a refused card followed by another
card or by PIX (the checkout stays payable, any rule may pay it next), the bank's later answer to a
processing charge, the saved card's outcome for the sweep's automatic renewals and their retries
(paid, refused, processing), the card's removal, and its refund or chargeback (the provider's rules
in money_machine.py move any paid transaction, cards included).

A mixin of tests/billing/money_machine.py's MoneyMachine: its rules use the machine's clock, client,
fake JunglePay and postback queue.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule

from billing import services
from billing.cards import make_test_card_hash
from billing.models import Checkout, Subscription
from config.errors import DomainError

# The test tokenizer's cards (billing.cards.TEST_CARDS): the last digits decide the gateway's answer.
TEST_CARD_HASHES = {
    "approved": make_test_card_hash(last_digits="4242", brand="visa"),
    "approved_not_reusable": make_test_card_hash(last_digits="0010", brand="mastercard"),
    "refused_no_funds": make_test_card_hash(last_digits="0002"),
    "refused_expired": make_test_card_hash(last_digits="0069"),
    "refused_unknown_code": make_test_card_hash(last_digits="0127"),
    "processing": make_test_card_hash(last_digits="0119"),
}
# Drawn from for each card payment: approved (its card saved for renewals) twice as often as each other kind.
CARD_CHOICES = ["approved", *sorted(TEST_CARD_HASHES)]
CARD_PAYABLE = dict(status=Checkout.Status.PENDING, total_cents__gt=0, plan__accepts_card=True)
# What the bank answers for a saved card's next charges (an automatic renewal, a retry).
SAVED_CARD_OUTCOMES = ["paid", "refused", "processing"]
# Moments of a saved card's renewal, from its subscription's end_date: the notice (the renewal is
# issued), the charge, each retry after a refusal (CARD_RENEWAL_RETRY_DAYS), past the grace period.
RENEWAL_MOMENTS = {
    "notice": -timedelta(days=settings.RENEWAL_NOTICE_DAYS) + timedelta(hours=1),
    "end_date": timedelta(minutes=1),
    **{f"retry {n}": timedelta(days=days, minutes=1) for n, days in enumerate(settings.CARD_RENEWAL_RETRY_DAYS, start=1)},
    "past grace": timedelta(days=8),
}


class CardOperations:
    """Rules of the money machine for card payments (mixed into MoneyMachine)."""

    users = Bundle("users")  # MoneyMachine's customers (a bundle is known by its name)

    @precondition(lambda self: Checkout.objects.filter(**CARD_PAYABLE).exists())
    @rule(data=st.data(), card=st.sampled_from(CARD_CHOICES), installments=st.sampled_from([1, 1, 2, 3]))
    def pay_by_card(self, data, card, installments):
        """The buyer pays any pending checkout by card (after a refused card, a PIX issued, a renewal e-mail)."""
        pending = list(Checkout.objects.filter(**CARD_PAYABLE).select_related("user").order_by("pk"))
        self._pay_by_card(data.draw(st.sampled_from(pending), label="checkout"), card, installments)

    @rule(
        user=users,
        plan=st.sampled_from(["basic", "premium"]),
        card=st.sampled_from(CARD_CHOICES),
        installments=st.sampled_from([1, 1, 2, 3]),
    )
    def buy_by_card(self, user, plan, card, installments):
        """The usual card purchase: a new checkout paid by card at once (an approved card is saved for renewals)."""
        if user.pk in self.world.deleted_users:
            return
        try:
            checkout = services.create_checkout(
                plan=self.shop.plan(plan), customer_name=user.name, customer_email=user.email, customer_document=user.fuzz_cpf,
                customer_phone="11987654321", payment_method=Checkout.Method.CARD, user=user, now=self.now,
            )
        except DomainError as exc:
            self._say(f"new card checkout of {plan} by {user.email}: {type(exc).__name__}: {exc}")
            return
        self._pay_by_card(checkout, card, installments)

    def _pay_by_card(self, checkout: Checkout, card: str, installments: int) -> None:
        """`POST /api/checkout/card` as the checkout's owner: paid, refused (402), processing, or refused for its state."""
        if checkout.user_id is not None:
            self.client.force_login(checkout.user)
        body = {"checkout_id": str(checkout.public_id), "card_hash": TEST_CARD_HASHES[card], "installments": installments}
        response = self.client.post("/api/checkout/card", body, content_type="application/json")
        self.client.logout()
        answer = response.json()
        self._say(
            f"pay checkout {checkout.pk} ({checkout.purpose}, {checkout.total_cents}) by card {card} x{installments} "
            f"→ {response.status_code} {answer}"
        )
        assert response.status_code < 500, response.content
        if response.status_code == 200 and answer["status"] == "paid" and answer["transaction_id"].isdigit():
            # Paid in the answer itself (no postback needed): the site was told, as by a delivered postback.
            transaction_data = self._jp_transaction(answer["transaction_id"])
            self.world.seen_by_site[answer["transaction_id"]] = (transaction_data["status"], transaction_data["amount"])

    def _card_transactions(self, *statuses) -> list[str]:
        return [
            str(pk) for pk, t in sorted(self.fake.transactions.items())
            if t.get("paymentMethod") == "credit_card" and t["status"] in statuses
        ]

    @precondition(lambda self: self._card_transactions("processing"))
    @rule(data=st.data(), outcome=st.sampled_from(["paid", "paid", "refused"]))
    def bank_answers_processing_card(self, data, outcome):
        """A card charge left processing (a purchase or a renewal) is paid or refused later; its postback is queued."""
        transaction_id = data.draw(st.sampled_from(self._card_transactions("processing")), label="transaction")
        if outcome == "paid":
            changes = {"paidAt": self.now.isoformat()}
        else:
            changes = {"refusedReason": {"code": "51", "message": "Saldo insuficiente"}}
        self._say(f"bank: card transaction {transaction_id} processing → {outcome}")
        self._queue_jp(self.fake.set_status(transaction_id, outcome, **changes))

    def _saved_cards(self) -> list[Subscription]:
        return list(Subscription.objects.exclude(card_id="").select_related("user").order_by("pk"))

    @precondition(lambda self: Subscription.objects.exclude(card_id="").exists())
    @rule(data=st.data(), outcome=st.sampled_from(SAVED_CARD_OUTCOMES))
    def bank_changes_saved_card(self, data, outcome):
        """What the bank answers from now on for a saved card: the sweep's renewals and retries get paid, refused or processing."""
        subscription = data.draw(st.sampled_from(self._saved_cards()), label="subscription")
        self.fake.card_outcomes[subscription.card_id] = outcome
        self._say(f"bank: the saved card of subscription {subscription.pk} ({subscription.card_id}) is now {outcome}")

    @precondition(lambda self: Subscription.objects.exclude(card_id="").exists())
    @rule(data=st.data())
    def remove_saved_card(self, data):
        """The user removes the saved card (`POST /api/me/card/remove`): renewals become PIX."""
        subscription = data.draw(st.sampled_from(self._saved_cards()), label="subscription")
        user = subscription.user
        if user.pk in self.world.deleted_users:
            return  # a deleted account cannot log in
        self.client.force_login(user)
        response = self.client.post("/api/me/card/remove", content_type="application/json")
        self.client.logout()
        self._say(f"{user.email} removes the saved card → {response.status_code}")
        assert response.status_code == 200, response.content

    @precondition(lambda self: Subscription.objects.live().exclude(card_id="").exists())
    @rule(data=st.data(), when=st.sampled_from(sorted(RENEWAL_MOMENTS)), bank=st.sampled_from(["as before", *SAVED_CARD_OUTCOMES]))
    def saved_card_renewal_day(self, data, when, bank):
        """
        The clock jumps to a moment of a saved card's renewal (the notice, end_date, each retry day, past
        grace), the bank's answer for the card may change, and the sweep runs: the automatic charge and its
        retries, which random clock steps seldom reach.
        """
        subscription = data.draw(st.sampled_from(list(Subscription.objects.live().exclude(card_id="").order_by("pk"))), label="subscription")
        if bank != "as before":
            self.fake.card_outcomes[subscription.card_id] = bank
        target = subscription.end_date + RENEWAL_MOMENTS[when]
        if target > self.now:
            self.now = target
            self.clock.move_to(self.now)
        self._say(f"clock to the {when} of subscription {subscription.pk}'s renewal ({subscription.end_date:%m-%d %H:%M}); its card: {bank}")
        self.sweep()

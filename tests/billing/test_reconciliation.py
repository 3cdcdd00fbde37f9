"""Reconciliation against JunglePay's transaction list: fixes missed postbacks, lists the rest, idempotent."""

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from billing.gateways.junglepay import (
    LIST_MAX_PAGES,
    JunglePayGateway,
    ListingIncomplete,
)
from billing.models import (
    Checkout,
    ReconciliationItem,
    Subscription,
    WebhookEvent,
)
from billing.reconciliation import reconcile_gateway, reconcile_payments
from billing.tasks import reconcile_payments as reconcile_task
from tests.billing.paymentkit import (
    JP,
    jp_checkout,
    sandbox,
    transaction,
)

pytestmark = pytest.mark.django_db


def listing(*transactions):
    responses.upsert(responses.GET, f"{JP}/transactions", json={"data": list(transactions), "pagination": {"page": 1, "totalPages": 1}})


@responses.activate
def test_it_fixes_a_paid_charge_whose_postback_never_came(jp):
    # given: paid at JunglePay, pending here (the postback was lost)
    missed = jp_checkout(jp, transaction_id="282")
    paid = transaction(missed, status="paid", paidAt=timezone.now().isoformat())
    listing(paid)
    responses.get(f"{JP}/transactions/282", json=paid)

    # when
    [report] = reconcile_payments()

    # then: processed through the webhook path (a stored event, the charge fetched), and listed as fixed
    assert report.fixed == 1 and report.listed == 1
    missed.refresh_from_db()
    assert missed.status == Checkout.Status.PAID
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    event = WebhookEvent.objects.get()
    assert event.outcome == WebhookEvent.Outcome.PROCESSED and event.headers == {"x-source": "reconciliation"}
    assert any(call.request.url == f"{JP}/transactions/282" for call in responses.calls)
    assert ReconciliationItem.objects.get().kind == ReconciliationItem.Kind.MISSED_PAYMENT

    # and running it again changes nothing
    [again] = reconcile_payments()
    assert again.fixed == 0 and again.matched == 1
    assert WebhookEvent.objects.count() == 1 and ReconciliationItem.objects.count() == 1
    assert Subscription.objects.count() == 1


@responses.activate
def test_other_differences_are_listed_for_a_person_and_nothing_changes(jp):
    amount = jp_checkout(jp, transaction_id="301")
    # (a refund there of a checkout paid here is no longer only listed: it is replayed, test_services_refund_fail)
    canceled_there = jp_checkout(jp, transaction_id="302")
    Checkout.objects.filter(pk=canceled_there.pk).update(status=Checkout.Status.PAID, paid_at=timezone.now())
    agrees = jp_checkout(jp, transaction_id="303")
    stranger = transaction(agrees, status="paid")
    stranger.update({"id": 999, "externalRef": "not-ours"})
    listing(
        transaction(amount, status="paid", amount=amount.total_cents - 1),
        transaction(canceled_there, status="canceled"),
        transaction(agrees, status="waiting_payment"),
        stranger,
    )

    [report] = reconcile_payments()
    [again] = reconcile_payments()

    assert (report.listed, report.matched, report.fixed, report.flagged) == (4, 1, 0, 3)
    assert again.flagged == 0  # already listed
    kinds = dict(ReconciliationItem.objects.values_list("transaction_id", "kind"))
    assert kinds == {
        "301": ReconciliationItem.Kind.AMOUNT_MISMATCH,
        "302": ReconciliationItem.Kind.STATUS_MISMATCH,
        "999": ReconciliationItem.Kind.UNKNOWN_TRANSACTION,
    }
    amount.refresh_from_db()
    assert amount.status == Checkout.Status.PENDING  # never activated on a wrong amount
    assert not WebhookEvent.objects.exists()


@responses.activate
def test_it_asks_only_for_the_last_days_and_follows_pages(jp):
    old = jp_checkout(jp, transaction_id="401")
    recent = jp_checkout(jp, transaction_id="402")
    too_old = transaction(old, status="paid", createdAt=(timezone.now() - timedelta(days=5)).isoformat())
    page1 = {"data": [transaction(recent, status="waiting_payment", createdAt=timezone.now().isoformat())], "pagination": {"page": 1, "totalPages": 2}}
    page2 = {"data": [too_old], "pagination": {"page": 2, "totalPages": 2}}
    responses.get(f"{JP}/transactions", json=page1, match=[responses.matchers.query_param_matcher({"page": "1"}, strict_match=False)])
    responses.get(f"{JP}/transactions", json=page2, match=[responses.matchers.query_param_matcher({"page": "2"}, strict_match=False)])

    [report] = reconcile_payments()

    assert report.listed == 1 and report.matched == 1
    old.refresh_from_db()
    assert old.status == Checkout.Status.PENDING


def test_the_task_reconciles_the_sandbox_too(settings):

    settings.DEBUG = True
    sandbox()
    assert reconcile_task() == ["sandbox: 0 charges listed, 0 agree, 0 missed payments fixed, 0 differences listed"]


@responses.activate
def test_a_listing_cut_at_the_page_limit_says_so_and_reconciliation_reports_it(jp, caplog):
    # given: JunglePay always has another page
    def page(request):
        number = int(request.params["page"])
        item = {"id": 10_000 + number, "status": "waiting_payment", "amount": 100, "externalRef": ""}
        return 200, {}, json.dumps({"data": [item], "pagination": {"page": number, "next": number + 1}})

    listing = responses.add_callback(responses.GET, f"{JP}/transactions", callback=page, content_type="application/json")
    now = timezone.now()

    # when / then: the gateway reads its page limit, yields what it read, and says the rest is missing
    read = []
    with pytest.raises(ListingIncomplete):
        for charge in JunglePayGateway(jp).list_charges(since=now - timedelta(days=3)):
            read.append(charge)
    assert len(read) == LIST_MAX_PAGES == listing.call_count
    assert "junglepay listing stopped with pages left" in caplog.text

    # and: reconciliation lists what it read and reports the listing as an error
    report = reconcile_gateway(config=jp, now=now)
    assert report.listed == LIST_MAX_PAGES
    assert any("listing incomplete" in error for error in report.errors)

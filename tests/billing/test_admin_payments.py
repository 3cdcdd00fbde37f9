"""The payments part of the admin: replay of webhook events, the reconciliation list and its button."""

import pytest
import responses
from django.urls import reverse

from billing.models import Checkout, ReconciliationItem, WebhookEvent
from tests.billing.paymentkit import JP, jp_checkout, postback, transaction

pytestmark = pytest.mark.django_db


def test_the_reconciliation_pages_render_for_a_superuser(client, superuser, jp):
    checkout = jp_checkout(jp)
    item = ReconciliationItem.objects.create(gateway=jp, transaction_id="282", checkout=checkout, kind="amount_mismatch", detail={"gateway_amount": 1})
    client.force_login(superuser)

    changelist = client.get(reverse("admin:billing_reconciliationitem_changelist"))
    assert changelist.status_code == 200 and b"reconcile-now" in changelist.content
    assert client.get(reverse("admin:billing_reconciliationitem_changelist") + "?q=282").status_code == 200
    assert client.get(reverse("admin:billing_reconciliationitem_change", args=[item.pk])).status_code == 200


def test_staff_without_the_finance_permission_cannot_see_or_reconcile(client, staff_user, jp):
    client.force_login(staff_user)
    assert client.get(reverse("admin:billing_reconciliationitem_changelist")).status_code == 403
    assert client.post(reverse("admin:billing_reconciliationitem_reconcile_now")).status_code == 403


@responses.activate
def test_reconcile_now_fixes_a_missed_payment_and_says_so(client, superuser, jp):
    missed = jp_checkout(jp)
    paid = transaction(missed, status="paid")
    responses.get(f"{JP}/transactions", json={"data": [paid]})
    responses.get(f"{JP}/transactions/282", json=paid)
    client.force_login(superuser)

    response = client.post(reverse("admin:billing_reconciliationitem_reconcile_now"), follow=True)

    assert response.status_code == 200
    assert "1 missed payments fixed" in response.content.decode() or "1 pagamentos perdidos" in response.content.decode()
    missed.refresh_from_db()
    assert missed.status == Checkout.Status.PAID
    assert client.get(reverse("admin:billing_reconciliationitem_reconcile_now")).status_code == 405


@responses.activate
def test_the_replay_action_applies_a_failed_event(client, superuser, jp):
    checkout = jp_checkout(jp)
    import json

    event = WebhookEvent.objects.create(
        provider="junglepay", event_id="686401", body=json.dumps(postback(checkout)), outcome=WebhookEvent.Outcome.FAILED, error="HTTP 503"
    )
    responses.get(f"{JP}/transactions/282", json=transaction(checkout, status="paid"))
    client.force_login(superuser)

    response = client.post(
        reverse("admin:billing_webhookevent_changelist"),
        {"action": "replay_webhook_events", "_selected_action": [event.pk]},
        follow=True,
    )

    assert response.status_code == 200
    event.refresh_from_db()
    assert event.outcome == WebhookEvent.Outcome.PROCESSED
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID

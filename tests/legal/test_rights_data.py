"""LGPD self-service (contract §3 /api/me/data, /api/me/delete; §5 data requests with their deadline)."""

import json
import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import confirm_email
from billing.access import user_has_access
from billing.gateways import ChargeStatus
from billing.models import Checkout, ReconciliationItem, ReminderOptOut, Subscription, UnclaimedMarketplacePayment, WebhookEvent
from billing.services import record_marketplace_payment, unsubscribe_from_reminders
from integrations.models import OutboxEvent, WebhookEndpoint
from legal import services
from legal.models import DataRequest
from tests.billing.paymentkit import dias, post_webhook, sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
NAME, EMAIL, CPF, PHONE = "Ana Lgpd Souza", "ana.lgpd@example.com", "52998224725", "11987654321"


@pytest.fixture
def sbx(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def _client(user):
    client = APIClient()
    client.force_login(user)
    return client


def _buy(client, *, email, name, cpf="529.982.247-25", phone="(11) 98765-4321"):
    body = {"plan_id": PlanFactory().pk, "payment_method": "pix", "order_bump_ids": [], "name": name, "email": email, "cpf": cpf, "phone": phone, "birth_date": "1990-05-17"}
    checkout_id = client.post("/api/checkout/process", body, format="json").json()["checkout_id"]
    assert client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json").status_code == 200
    assert client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json").status_code == 200
    return Checkout.objects.get(public_id=checkout_id)


def _marketplace_payments(client, user):
    """A claimed marketplace payment of `user`'s e-mail, and a Dias postback of it whose amount matched no plan."""
    dias_gateway = dias()
    PlanFactory(price_cents=2990)
    User.objects.filter(pk=user.pk).update(email_confirmed_at=None)  # the payment waits for the mailbox owner
    record_marketplace_payment(external_id="DM-LGPD-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL, name=NAME)
    confirm_email(user=User.objects.get(pk=user.pk))
    claimed = UnclaimedMarketplacePayment.objects.get(external_id="DM-LGPD-1")
    assert claimed.claimed_at is not None and claimed.email == EMAIL
    body = {"id": "dias_lgpd", "externalRef": "DM-LGPD-2", "status": "PAID", "amount": 1234, "payer": {"email": EMAIL, "name": NAME}}
    assert post_webhook(client, "dias/payment-sucess", body, token=dias_gateway.postback_token).status_code == 200
    return claimed


def _database_dump() -> str:
    """Every row of every table, as Django reads it (encrypted columns decrypted): what a leak could expose."""
    return "\n".join(
        serializers.serialize("json", model._default_manager.all())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    )


def test_the_export_holds_everything_about_the_user_and_nothing_about_anyone_else(sbx):
    ana = UserFactory(email=EMAIL, name=NAME)
    _buy(_client(ana), email=EMAIL, name=NAME)
    other = UserFactory(email="bruno@example.com", name="Bruno Outro")
    _buy(_client(other), email="bruno@example.com", name="Bruno Outro", cpf="111.444.777-35", phone="(21) 99876-5432")

    response = _client(ana).get("/api/me/data")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    document = response.json()
    assert document["account"]["email"] == EMAIL and document["account"]["name"] == NAME
    [checkout] = document["checkouts"]
    assert checkout["customer"] == {"name": NAME, "email": EMAIL, "cpf": CPF, "phone": PHONE, "birth_date": "1990-05-17"}  # full CPF: only here
    assert checkout["total_amount"] == 2990 and checkout["items"] and checkout["gateway_record"]["status"] == "paid"
    assert [s["status"] for s in document["subscriptions"]] == ["active"]
    text = json.dumps(document)
    assert "bruno" not in text.lower() and "11144477735" not in text and "21998765432" not in text
    assert DataRequest.objects.filter(user=ana, kind="access", completed_at__isnull=False).count() == 1


def test_deleting_the_account_leaves_no_personal_value_in_any_table_and_keeps_the_money_records(sbx):
    WebhookEndpoint.objects.create(url="https://receiver.example.com/hook")  # outbound events carry the customer
    ana = UserFactory(email=EMAIL, name=NAME)
    client = _client(ana)
    checkout = _buy(client, email=EMAIL, name=NAME)
    unsubscribe_from_reminders(email=EMAIL)
    assert OutboxEvent.objects.exists() and ReminderOptOut.objects.exists()
    subscription = Subscription.objects.get(user=ana)
    LogEntry.objects.create(
        user=UserFactory(is_staff=True), content_type=ContentType.objects.get_for_model(Subscription),
        object_id=str(subscription.pk), object_repr=str(subscription)[:200], action_flag=CHANGE,
        change_message=f"Extended {EMAIL}",
    )
    dump = _database_dump()
    assert EMAIL in dump and CPF in dump and PHONE in dump and NAME in dump  # the scan would see them
    assert WebhookEvent.objects.filter(checkout=checkout).exists()
    # Marketplace (Dias) records of the same person: a payment that waited for the e-mail's
    # confirmation and was claimed, and a postback whose amount matched no plan (its stored body).
    claimed = _marketplace_payments(client, ana)
    dump = _database_dump()
    assert EMAIL in dump and NAME in dump and "DM-LGPD-2" in dump

    response = client.post("/api/me/delete", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    dump = _database_dump()
    for value in (EMAIL, CPF, "529.982.247-25", PHONE, NAME):
        assert value not in dump, value
    claimed.refresh_from_db()
    assert (claimed.external_id, claimed.paid_amount_cents) == ("DM-LGPD-1", 2990)  # the money record stays
    assert ReconciliationItem.objects.filter(transaction_id="DM-LGPD-2").exists()
    # Money records keep amounts, dates and gateway ids.
    checkout.refresh_from_db()
    assert (checkout.status, checkout.total_cents) == ("paid", 2990)
    assert checkout.paid_at and checkout.gateway_transaction_id
    subscription.refresh_from_db()
    assert (subscription.status, subscription.last_reason) == ("canceled", "account_deleted")
    ana.refresh_from_db()
    assert not ana.is_active and not ana.has_usable_password() and not user_has_access(ana)
    # Logged out, and the e-mail can sign up again.
    assert client.get("/api/me/subscription").status_code in (401, 403)
    again = APIClient().post("/api/auth/register", {"email": EMAIL, "password": "outra-senha-forte-123", "name": "Ana"}, format="json")
    assert again.status_code == 201, again.content
    assert DataRequest.objects.filter(user=ana, kind="deletion", completed_at__isnull=False).exists()


def _pg_dump() -> str:
    """`pg_dump --data-only` of the test database, read by another process: the rows as a backup or a leak would hold them."""
    db = settings.DATABASES["default"]
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is not installed (apt-get install postgresql-client)"
    command = [pg_dump, "--data-only", "--no-owner", "--dbname", db["NAME"], "--username", db["USER"] or "postgres"]
    if db["HOST"]:
        command += ["--host", db["HOST"]]
    if db["PORT"]:
        command += ["--port", str(db["PORT"])]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_deletion_the_database_dump_holds_no_email_cpf_phone_or_name(sbx):
    """The committed rows, dumped by pg_dump, scanned for the person's values."""
    ana = UserFactory(email=EMAIL, name=NAME)
    client = _client(ana)
    first = _buy(client, email=EMAIL, name=NAME)  # paid through the sandbox postback: receive_webhook
    second = _buy(client, email=EMAIL, name=NAME)
    unsubscribe_from_reminders(email=EMAIL)  # a clear e-mail column outside the checkouts
    assert {first.status, second.status} == {"paid"}
    assert WebhookEvent.objects.filter(checkout__in=[first, second]).count() >= 2
    before = _pg_dump()
    # Control: the scan sees clear columns (the account, the checkout's name, e-mail and phone).
    assert EMAIL in before and NAME in before and PHONE in before

    response = client.post("/api/me/delete", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    after = _pg_dump()
    for value in (EMAIL, NAME, CPF, "529.982.247-25", PHONE, "(11) 98765-4321"):
        assert value not in after, value
    assert f"deleted-{ana.pk}@deleted.invalid" in after  # the dump is of this database, after the deletion
    for checkout in (first, second):
        checkout.refresh_from_db()
        assert (checkout.status, checkout.total_cents) == ("paid", 2990) and checkout.paid_at
        assert checkout.gateway_transaction_id in after  # money records keep their gateway ids


def test_deleting_needs_the_password(sbx):
    ana = UserFactory(email=EMAIL, name=NAME)

    response = _client(ana).post("/api/me/delete", {"password": "wrong"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    ana.refresh_from_db()
    assert ana.email == EMAIL and ana.is_active


def test_the_account_page_deletes_the_account(client, sbx):
    ana = UserFactory(email=EMAIL, name=NAME)
    client.force_login(ana)
    page = client.get("/account/").content.decode()
    assert 'data-testid="my-data"' in page and "/api/me/data" in page

    response = client.post("/account/delete/", {"password": PASSWORD})

    assert response.status_code == 302
    ana.refresh_from_db()
    assert ana.email != EMAIL and not ana.is_active


def test_the_admin_lists_data_requests_with_their_15_day_deadline(admin_client):
    request = services.record_data_request(kind=DataRequest.Kind.ACCESS, note="pedido por e-mail")
    assert request.deadline == request.received_at + timedelta(days=15) and request.is_open

    page = admin_client.get("/admin/legal/datarequest/")
    assert page.status_code == 200 and "datarequest" in page.content.decode()

    admin_client.post("/admin/legal/datarequest/", {"action": "mark_completed", "_selected_action": [request.pk]})
    request.refresh_from_db()
    assert request.completed_at is not None

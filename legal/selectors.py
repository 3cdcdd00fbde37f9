"""The export of everything stored about a person (LGPD art. 18, II: access). A read: it never writes."""

from __future__ import annotations

from django.utils import timezone

from billing.models import Checkout, RefundRequest, Subscription
from legal.models import ConsentRecord, DataRequest, LegalDocument


def current_document(*, kind: str, now=None) -> LegalDocument | None:
    """The version in force: the latest published one."""
    now = now or timezone.now()
    return LegalDocument.objects.filter(kind=kind, published_at__lte=now).order_by("-version").first()


def current_version(*, kind: str, now=None) -> int | None:
    document = current_document(kind=kind, now=now)
    return document.version if document else None


def export_user_data(*, user) -> dict:
    """
    One JSON-ready document: the account, every checkout (with its items, the
    customer data as typed, the full CPF — the one place it is shown — and the
    gateway's copy of the charge), subscriptions, refund and data requests.
    """
    checkouts = (
        Checkout.objects.of_customer(user)
        .select_related("plan", "gateway")
        .prefetch_related("order_bumps")
        .order_by("created_at", "pk")
    )
    return {
        "generated_at": timezone.now(),
        "account": {
            "id": user.pk,
            "email": user.email,
            "name": user.name,
            "language": user.language,
            "created_at": user.created_at,
            "email_confirmed_at": user.email_confirmed_at,
            "last_login": user.last_login,
            "birth_date": user.birth_date,
            "age_confirmed_at": user.age_confirmed_at,
            "age_confirmed_by": user.age_confirmed_by,
        },
        "age_verifications": [
            {"provider": v.provider, "reference": v.provider_reference, "status": v.status, "started_at": v.started_at, "finished_at": v.finished_at}
            for v in user.age_verifications.order_by("started_at", "pk")
        ],
        "checkouts": [_checkout(checkout) for checkout in checkouts],
        "subscriptions": [
            {
                "id": s.pk,
                "plan": s.plan.name,
                "status": s.status,
                "start_date": s.start_date,
                "end_date": s.end_date,
                "cancel_at_period_end": s.cancel_at_period_end,
                "canceled_at": s.canceled_at,
                "cancel_reason": s.cancel_reason,
                "last_reason": s.last_reason,
                "external_id": s.external_id,
                "created_at": s.created_at,
            }
            for s in Subscription.objects.filter(user=user).select_related("plan").order_by("created_at", "pk")
        ],
        "refund_requests": [
            {
                "checkout_id": str(r.checkout.public_id),
                "amount": r.amount_cents,
                "status": r.status,
                "requested_at": r.requested_at,
                "deadline": r.deadline,
                "closed_at": r.closed_at,
            }
            for r in RefundRequest.objects.filter(subscription__user=user).select_related("checkout").order_by("pk")
        ],
        "consents": [
            {"analytics": c.analytics, "marketing": c.marketing, "privacy_version": c.privacy_version, "decided_at": c.decided_at}
            for c in ConsentRecord.objects.filter(user=user).order_by("decided_at", "pk")
        ],
        "data_requests": [
            {"kind": d.kind, "channel": d.channel, "received_at": d.received_at, "deadline": d.deadline, "completed_at": d.completed_at}
            for d in DataRequest.objects.filter(user=user).order_by("received_at", "pk")
        ],
    }


def _checkout(checkout: Checkout) -> dict:
    return {
        "checkout_id": str(checkout.public_id),
        "created_at": checkout.created_at,
        "purpose": checkout.purpose,
        "status": checkout.status,
        "plan": checkout.plan.name,
        "items": checkout.items,
        "order_bumps": [bump.name for bump in checkout.order_bumps.all()],
        "plan_price": checkout.plan_price_cents,
        "bumps_amount": checkout.bumps_cents,
        "credit_amount": checkout.credit_cents,
        "total_amount": checkout.total_cents,
        "payment_method": checkout.payment_method,
        "paid_at": checkout.paid_at,
        "refunded_at": checkout.refunded_at,
        "customer": {
            "name": checkout.customer_name,
            "email": checkout.customer_email,
            "cpf": checkout.customer_document,
            "phone": checkout.customer_phone,
            "birth_date": checkout.customer_birth_date,
        },
        "gateway": checkout.gateway.kind if checkout.gateway else None,
        "transaction_id": checkout.gateway_transaction_id,
        "terms_version": checkout.terms_version,
        "terms_accepted_at": checkout.terms_accepted_at,
        "gateway_record": checkout.gateway_response,
    }

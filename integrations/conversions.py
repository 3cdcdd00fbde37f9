"""
Server-side Purchase conversions (contract §5): sent to Meta (Conversions
API), Google Analytics 4 (Measurement Protocol) and TikTok (Events API) only
when a payment is confirmed (activate_checkout, reached from the verified
webhook or reconciliation), never from the browser. One task per platform,
retried with backoff: a platform that is down delays its event, never the
payment nor the other platforms. The event id is the checkout's public id,
the id the browser pixel uses, so the platforms deduplicate the two.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

import requests
from celery import shared_task
from django.conf import settings
from django.db import transaction

from billing.models import Checkout
from billing.tracking import last_touch
from config.tasks import enqueue
from integrations.models import TrackingPixels

logger = logging.getLogger(__name__)

TIMEOUT = 10
BRAZIL = "55"


class PlatformError(Exception):
    """A platform answered with an error or could not be reached: retry later."""


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalised_email(email: str) -> str:
    return (email or "").strip().lower()


def normalised_phone(phone: str) -> str:
    """Digits with the country code, no '+' (Meta); Brazilian numbers are stored without it."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if digits and len(digits) <= 11:
        digits = BRAZIL + digits
    return digits


def value_brl(total_cents: int) -> float:
    """The platforms take a JSON number in reais; computed from integer cents, exact to the cent."""
    return float(Decimal(total_cents) / 100)


# The cookie choice each platform's server-side event needs (legal.consent): Meta and TikTok match
# the buyer (hashed e-mail and phone, click ids) for advertising; GA4 gets an anonymous count.
PLATFORM_CONSENT = {"meta": "marketing_consent", "tiktok": "marketing_consent", "ga4": "analytics_consent"}


def buyer_consent(checkout: Checkout) -> dict[str, bool]:
    """
    The buyer's cookie choice for this sale: the checkout's own (recorded by
    the checkout API), else, for a renewal or an upgrade (no browser there),
    the latest one recorded on its subscription. None recorded: no consent.
    """
    choice = {field: getattr(checkout, field) for field in set(PLATFORM_CONSENT.values())}
    if any(value is None for value in choice.values()) and checkout.subscription_id:
        earlier = (
            Checkout.objects.filter(subscription_id=checkout.subscription_id, marketing_consent__isnull=False)
            .order_by("-created_at", "-pk")
            .values(*choice)
            .first()
        )
        choice = {field: choice[field] if choice[field] is not None else (earlier or {}).get(field) for field in choice}
    return {field: bool(value) for field, value in choice.items()}


def queue_purchase(checkout: Checkout) -> None:
    """
    Called inside activation's transaction: one task per configured platform
    the buyer's cookie choice allows (LGPD: the server-side event shares the
    same data the pixel would, so it needs the same consent), after commit.
    """
    platforms = TrackingPixels.current().platforms()
    if not platforms:
        return
    consent = buyer_consent(checkout)
    platforms = [platform for platform in platforms if consent[PLATFORM_CONSENT[platform]]]
    if not platforms:
        return
    public_id = str(checkout.public_id)

    def queue():
        for platform in platforms:
            try:
                enqueue(send_purchase_task, checkout_id=public_id, platform=platform)
            except Exception:  # a lost conversion must never fail a payment
                logger.exception("purchase conversion not queued", extra={"platform": platform})

    transaction.on_commit(queue)


def meta_request(pixels: TrackingPixels, checkout: Checkout) -> tuple[str, dict, dict]:
    touch = last_touch(checkout.tracking)
    paid_at = checkout.paid_at or checkout.created_at
    user_data = {"em": [sha256(normalised_email(checkout.customer_email))]}
    if checkout.customer_phone:
        user_data["ph"] = [sha256(normalised_phone(checkout.customer_phone))]
    if touch.get("fbclid"):
        # fbc = fb.<subdomain index>.<creation time, ms>.<fbclid> (not hashed).
        user_data["fbc"] = f"fb.1.{int(checkout.created_at.timestamp() * 1000)}.{touch['fbclid']}"
    body = {
        "data": [
            {
                "event_name": "Purchase",
                "event_time": int(paid_at.timestamp()),
                "event_id": str(checkout.public_id),
                "action_source": "website",
                "user_data": user_data,
                "custom_data": {"currency": "BRL", "value": value_brl(checkout.total_cents)},
            }
        ]
    }
    url = f"{settings.META_GRAPH_URL}/{pixels.meta_pixel_id}/events"
    return url, {"access_token": pixels.meta_access_token}, body


def ga4_request(pixels: TrackingPixels, checkout: Checkout) -> tuple[str, dict, dict]:
    body = {
        # No browser client id is stored; the checkout's id keeps the hit apart from every other.
        "client_id": str(checkout.public_id),
        "events": [
            {
                "name": "purchase",
                "params": {
                    "transaction_id": str(checkout.public_id),
                    "currency": "BRL",
                    "value": value_brl(checkout.total_cents),
                },
            }
        ],
    }
    params = {"measurement_id": pixels.ga4_measurement_id, "api_secret": pixels.ga4_api_secret}
    return settings.GA4_COLLECT_URL, params, body


def tiktok_request(pixels: TrackingPixels, checkout: Checkout) -> tuple[str, dict, dict]:
    touch = last_touch(checkout.tracking)
    paid_at = checkout.paid_at or checkout.created_at
    user = {"email": sha256(normalised_email(checkout.customer_email))}
    if checkout.customer_phone:
        user["phone"] = sha256("+" + normalised_phone(checkout.customer_phone))  # E.164
    if touch.get("ttclid"):
        user["ttclid"] = touch["ttclid"]
    body = {
        "event_source": "web",
        "event_source_id": pixels.tiktok_pixel_id,
        "data": [
            {
                "event": "CompletePayment",
                "event_time": int(paid_at.timestamp()),
                "event_id": str(checkout.public_id),
                "user": user,
                "properties": {"currency": "BRL", "value": value_brl(checkout.total_cents)},
            }
        ],
    }
    return settings.TIKTOK_EVENTS_URL, {}, body


BUILDERS = {"meta": meta_request, "ga4": ga4_request, "tiktok": tiktok_request}


def send_purchase(*, checkout_id: str, platform: str) -> int:
    """POSTs one Purchase; raises PlatformError on a non-2xx or a network error (the task retries)."""
    checkout = Checkout.objects.select_related("plan").get(public_id=checkout_id)
    if checkout.status != Checkout.Status.PAID:
        return 0  # refunded before it went out: nothing to report
    pixels = TrackingPixels.current()
    if platform not in pixels.platforms():
        return 0
    url, params, body = BUILDERS[platform](pixels, checkout)
    headers = {"Access-Token": pixels.tiktok_access_token} if platform == "tiktok" else {}
    try:
        response = requests.post(url, params=params, json=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise PlatformError(f"{platform}: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise PlatformError(f"{platform}: HTTP {response.status_code}: {response.text[:200]}")
    logger.info("purchase conversion sent", extra={"platform": platform, "checkout": checkout_id})
    return response.status_code


@shared_task(
    name="integrations.tasks.send_purchase",
    autoretry_for=(PlatformError,),
    retry_backoff=60,
    # Below the broker's visibility timeout (config/settings.py): a waiting retry is an unacked
    # message, delivered twice if it outlives it. 300 tries at most 5 minutes apart cover about a day.
    retry_backoff_max=settings.TASK_RETRY_WAIT_MAX,
    max_retries=300,
)
def send_purchase_task(*, checkout_id: str, platform: str) -> int:
    return send_purchase(checkout_id=checkout_id, platform=platform)

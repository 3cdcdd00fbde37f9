"""
Server-rendered billing pages: plans, the checkout page and the account page.

They are doors like the API views: they read through the models' querysets
and write only through `billing.services`. The checkout page itself talks to
the checkout API from the browser (contract §3); the server computes every
amount, the page only shows them.
"""

import uuid
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from billing import refunds, selectors, services
from billing.gateways import GatewayUnavailable, get_active_gateway
from billing.gateways.sandbox import sandbox_allowed
from billing.models import Checkout, OrderBump, PaymentGateway, Plan
from billing.money import format_brl
from billing.notifications import email_of_unsubscribe_token
from billing.page_cache import sales_page
from billing.receipts import build_receipt, get_marketplace_receipt, get_receipt_checkout, order_lines
from config.errors import DomainError
from config.page_cache import own_values

HISTORY_LIMIT = 50


def card_form_config(plan: Plan) -> dict | None:
    """
    What the checkout page's card form needs (contract §4): the active
    gateway's tokenizer and public key, and the installments the plan allows.
    None when the plan takes no card or no gateway can charge one now.
    """
    if not plan.accepts_card:
        return None
    try:
        gateway = get_active_gateway()
    except GatewayUnavailable:
        return None
    if not gateway.takes_cards:
        return None
    is_sandbox = gateway.kind == PaymentGateway.Kind.SANDBOX
    return {
        "tokenizer_url": gateway.tokenizer_url(),
        # The sandbox's test tokenizer needs a key like the real one; it has none of its own.
        "public_key": gateway.config.public_key or ("pk_sandbox" if is_sandbox else ""),
        "test_mode": is_sandbox,
        "max_installments": plan.max_installments,
    }


def tokenizer_csp(card: dict | None) -> dict:
    """The tokenizer's origin, allowed on the checkout page only (the sandbox's is our own)."""
    if card is None:
        return {}
    parts = urlsplit(card["tokenizer_url"])
    if not parts.scheme or not parts.netloc:
        return {}
    origin = f"{parts.scheme}://{parts.netloc}"
    return {"script-src": [origin], "connect-src": [origin]}


def sandbox_enabled() -> bool:
    """The simulate buttons show only when the sandbox is the active gateway and allowed here."""
    if not sandbox_allowed():
        return False
    return PaymentGateway.objects.filter(
        is_active=True, kind=PaymentGateway.Kind.SANDBOX
    ).exists()


def return_to(request) -> str:
    """
    Where the buyer was when they chose to subscribe (`?next=`, a post or a creator page): the paid
    checkout's "See the content" goes back there. Only a path of this site, never another host.
    """
    value = request.GET.get("next", "")
    if value.startswith("/") and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}):
        return value
    return ""


def prefill(request) -> dict[str, str]:
    """What the checkout form is filled in with for a logged-in buyer."""
    user = request.user
    if not user.is_authenticated:
        return {"name": "", "email": "", "birth_date": ""}
    return {
        "name": getattr(user, "name", ""),
        "email": user.email,
        "birth_date": user.birth_date.isoformat() if user.birth_date else "",
    }


@require_GET
@sales_page()
def plans(request):
    active_plans = list(Plan.objects.filter(is_active=True))
    return render(
        request,
        "site/plans.html",
        {
            "plans": active_plans,
            "subscription": selectors.get_latest_subscription(user=request.user),
            "return_to": return_to(request),
        },
    )


@require_GET
@sales_page(values=prefill)
def checkout(request, plan_id: int):
    plan = get_object_or_404(Plan, pk=plan_id)
    resume_id = request.GET.get("checkout", "")
    try:
        resume_id = str(uuid.UUID(resume_id)) if resume_id else ""
    except ValueError:
        resume_id = ""
    resumed = Checkout.objects.filter(public_id=resume_id, plan=plan).first() if resume_id else None
    if not plan.is_active and (resumed is None or resumed.purpose != Checkout.Purpose.RENEWAL):
        # A discontinued plan is no longer sold, but its renewals stay payable (e-mail link, account page).
        raise Http404
    if plan.checkout_url and resumed is None:
        # Marketplace plans are sold on the marketplace's own page.
        return redirect(plan.checkout_url)

    bumps = list(OrderBump.objects.filter(is_active=True))
    user = request.user
    # Back from a reminder to a checkout that expired: offer a fresh PIX at the same price (a POST).
    reopen = resumed is not None and services.is_reopenable(resumed)
    if reopen:
        resume_id = ""
    card = card_form_config(plan)
    page_data = {
        "plan": {"id": plan.pk, "name": plan.name, "price_cents": plan.price_cents},
        "accepts_pix": plan.accepts_pix,
        # The card form (contract §4): null when the plan takes no card.
        "card": card,
        "resume_method": resumed.payment_method if resumed is not None else "",
        # A resumed checkout is what it was (pixels.js sends no Purchase for a trial); a new one may be a trial.
        "trial": resumed.is_trial if resumed is not None else bool(plan.trial_days),
        "bumps": [{"id": b.pk, "price_cents": b.price_cents} for b in bumps],
        "resume_checkout_id": resume_id,
        # A renewal of a subscription we never charged lacks CPF and phone: the page asks for them.
        "resume_needs_details": bool(
            resumed is not None and resumed.status == Checkout.Status.PENDING and services.needs_customer_details(resumed)
        ),
        "sandbox": sandbox_enabled(),
        # A campaign link (?cupom=CODE, or ?coupon=CODE) pre-fills the coupon field; the page checks it live.
        "coupon": (request.GET.get("cupom") or request.GET.get("coupon") or "").strip()[:40],
        "api": {
            "coupon": "/api/coupons/{id}",
            "process": "/api/checkout/process",
            "pix": "/api/checkout/pix",
            "card": "/api/checkout/card",
            "status": "/api/checkout/{id}",
            "simulate": "/api/checkout/{id}/simulate",
            "events": "/api/checkout/events/{id}",
            "sign_in": "/api/checkout/{id}/sign-in",
        },
        "signed_in": user.is_authenticated,
        # The summary is the server's (order_lines below): the page does not rebuild it from the form.
        "summary_fixed": resumed is not None and not reopen,
    }
    response = render(
        request,
        "site/checkout.html",
        {
            "plan": plan,
            "bumps": bumps,
            "page_data": page_data,
            "sandbox": page_data["sandbox"],
            "subscription": selectors.get_latest_subscription(user=user),
            "reopen_checkout": resumed if reopen else None,
            # Back on a checkout already made (a reload on return from the bank app, a renewal): the summary
            # lists what it sold, bumps and coupon included, not the plan alone.
            "order_lines": order_lines(resumed) if resumed is not None and not reopen else None,
            "order_total": resumed.total_display if resumed is not None else "",
            "prefill": own_values(request, prefill(request)),
            "card": card,
            "return_to": return_to(request) or reverse("catalog:creators"),
        },
    )
    # django-csp reads this: the tokenizer's origin joins this page's policy, and no other page's.
    response._csp_update = tokenizer_csp(card)
    return response


@login_required
@require_GET
def account(request):
    user = request.user
    subscription = selectors.get_latest_subscription(user=user)
    renewal = None
    if subscription is not None and subscription.is_live:
        renewal = (
            Checkout.objects.pending()
            .filter(subscription=subscription, purpose__in=[Checkout.Purpose.RENEWAL, Checkout.Purpose.UPGRADE])
            .select_related("plan")
            .first()
        )
    history = selectors.list_payment_history(user=user, limit=HISTORY_LIMIT)
    other_plans = []
    if subscription is not None and subscription.is_live:
        other_plans = [
            p for p in Plan.objects.filter(is_active=True, checkout_url="") if p.pk != subscription.plan_id
        ]
    return render(
        request,
        "site/account.html",
        {
            "subscription": subscription,
            "renewal": renewal,
            "history": history,
            "other_plans": other_plans,
            "withdrawal": selectors.get_withdrawal_offer(subscription=subscription, now=timezone.now()),
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
def account_cancel(request):
    subscription = selectors.get_live_subscription(user=request.user)
    if subscription is None:
        messages.error(request, _("You have no active subscription to cancel."))
        return redirect("billing:account")
    reason = (request.POST.get("reason") or "").strip()[:500]
    try:
        subscription = services.cancel_subscription(subscription=subscription, reason=reason)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Your subscription was canceled. You keep access until %(date)s.")
            % {"date": _local_date(subscription.end_date)},
        )
    return redirect("billing:account")


@login_required
@require_POST
def account_card_remove(request):
    if services.remove_saved_card(user=request.user):
        messages.success(request, _("Your card was removed. Your next renewals will be PIX charges e-mailed to you."))
    return redirect("billing:account")


@login_required
@require_POST
def account_withdraw(request):
    subscription = selectors.get_live_subscription(user=request.user)
    if subscription is None:
        messages.error(request, _("You have no active subscription to withdraw from."))
        return redirect("billing:account")
    try:
        withdrawal = refunds.withdraw(subscription=subscription)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("billing:account")
    amount = format_brl(withdrawal.amount_cents)
    if withdrawal.status == "refunded":
        messages.success(request, _("You withdrew from your subscription and %(amount)s was refunded.") % {"amount": amount})
    else:
        messages.success(
            request,
            _("You withdrew from your subscription. The refund of %(amount)s is on its way to the account that paid.")
            % {"amount": amount},
        )
    return redirect("billing:account")


@login_required
@require_POST
def account_change_plan(request):
    subscription = selectors.get_live_subscription(user=request.user)
    if subscription is None:
        messages.error(request, _("You have no active subscription to change."))
        return redirect("billing:account")
    try:
        plan = Plan.objects.get(pk=int(request.POST.get("plan_id", "")), is_active=True)
    except (ValueError, Plan.DoesNotExist):
        messages.error(request, _("Choose one of the plans on the list."))
        return redirect("billing:account")
    try:
        result = services.change_plan(subscription=subscription, plan=plan)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("billing:account")

    checkout = result.checkout
    if checkout is not None and checkout.status == Checkout.Status.PENDING:
        # An upgrade: the prorated difference is charged now, with its own PIX.
        messages.success(request, _("Pay the difference to move to %(plan)s now.") % {"plan": plan.name})
        return redirect(_pay_url(checkout))
    if result.kind == "upgrade":
        # The unused credit covered the new price: switched at once.
        messages.success(request, _("You are now on %(plan)s.") % {"plan": plan.name})
    else:
        messages.success(request, _("Your plan changes to %(plan)s at the next renewal.") % {"plan": plan.name})
    return redirect("billing:account")


def _pay_url(checkout: Checkout) -> str:
    return f"{reverse('billing:checkout', args=[checkout.plan_id])}?checkout={checkout.public_id}"


@require_POST
def checkout_reopen(request, checkout_id):
    """The button on the checkout page of an expired checkout (reached from a reminder): pending again, fresh PIX next."""
    try:
        checkout = services.reopen_checkout(checkout_id=checkout_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        checkout = get_object_or_404(Checkout.objects.only("public_id", "plan_id"), public_id=checkout_id)
        return redirect("billing:checkout", plan_id=checkout.plan_id)
    return redirect(_pay_url(checkout))


def reminders_unsubscribe(request, token):
    """The link in every checkout reminder: GET asks (mail scanners follow links), POST stops them."""
    email = email_of_unsubscribe_token(token)
    if email is None:
        raise Http404
    done = False
    if request.method == "POST":
        services.unsubscribe_from_reminders(email=email)
        done = True
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    return render(request, "site/reminders_unsubscribe.html", {"email": email, "done": done})


@require_GET
def checkout_pay(request, checkout_id):
    """The link in renewal e-mails (`billing.notifications.checkout_link`): the PIX step of that checkout."""
    checkout = get_object_or_404(Checkout.objects.only("public_id", "plan_id"), public_id=checkout_id)
    return redirect(_pay_url(checkout))


def _local_date(value):
    return date_format(timezone.localtime(value), "SHORT_DATE_FORMAT") if value else ""


@login_required
@require_GET
def receipt(request, checkout_id):
    """The printable receipt of one of the user's confirmed payments (contract §3)."""
    checkout = get_receipt_checkout(user=request.user, checkout_id=checkout_id)
    if checkout is None:
        raise Http404
    return render(request, "site/receipt.html", {"receipt": build_receipt(checkout)})


@login_required
@require_GET
def marketplace_receipt(request, transaction_id):
    """The printable receipt of one of the user's marketplace (Dias) payments, by the marketplace's transaction id."""
    receipt = get_marketplace_receipt(user=request.user, transaction_id=transaction_id)
    if receipt is None:
        raise Http404
    return render(request, "site/receipt.html", {"receipt": receipt})

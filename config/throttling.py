"""
The API's throttles (contract §3). All of them key on `config.client_ip`
(TRUSTED_PROXIES), never on DRF's default ident, which believes any
X-Forwarded-For a client sends.

Checkouts are throttled per customer (e-mail, CPF, session) with a generous
ceiling per address, because many Brazilian mobile buyers share one public
address (carrier-grade NAT): forty different buyers from one address in a
minute must all get their PIX. A checkout's own PIX and status calls are
counted apart from new purchases, and an authenticated webhook is never
throttled: only requests that fail to authenticate are.
"""

import hashlib
import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.client_ip import client_ip

logger = logging.getLogger(__name__)


class ClientAddressThrottle(SimpleRateThrottle):
    """
    A rate limit per client address for a named scope. The rate is read when
    the throttle is built (not when the class is imported), so settings
    overrides apply.
    """

    scope = None

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view):
        allowed = super().allow_request(request, view)
        if not allowed:
            logger.warning("throttled", extra={"scope": self.scope, "client_ip": client_ip(request), "path": request.path})
        return allowed


class MultiKeyThrottle(ClientAddressThrottle):
    """
    One rate applied to several idents of a request at once (say its e-mail
    and its CPF): refused when any of them is over the rate, counted on all of
    them only when allowed.
    """

    def idents(self, request, view) -> list[str]:
        raise NotImplementedError

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.now = self.timer()
        entries = []
        for ident in self.idents(request, view):
            key = self.cache_format % {"scope": self.scope, "ident": ident}
            history = [t for t in self.cache.get(key, []) if t > self.now - self.duration]
            if len(history) >= self.num_requests:
                self.history = history
                logger.warning("throttled", extra={"scope": self.scope, "on": ident.split(":", 1)[0], "client_ip": client_ip(request)})
                return self.throttle_failure()
            entries.append((key, history))
        for key, history in entries:
            self.cache.set(key, [self.now, *history], self.duration)
        return True


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _body(request) -> dict:
    # An unparseable body raises DRF's ParseError here: the same 400 the view would give.
    data = request.data
    return data if isinstance(data, dict) else {}


class AuthThrottle(ClientAddressThrottle):
    scope = "auth"


class CheckoutAddressThrottle(ClientAddressThrottle):
    """New purchases per address: a ceiling high enough for a carrier-grade NAT."""

    scope = "checkout_address"


class CheckoutCustomerThrottle(MultiKeyThrottle):
    """New purchases per customer: the e-mail, the CPF and the session, each on its own."""

    scope = "checkout_customer"

    def idents(self, request, view) -> list[str]:
        body = _body(request)
        email = str(body.get("email") or "").strip().lower()
        cpf = "".join(ch for ch in str(body.get("cpf") or "") if ch.isdigit())
        session = getattr(getattr(request, "session", None), "session_key", None)
        idents = []
        if email:
            idents.append("email:" + _digest(email))
        if cpf:
            idents.append("cpf:" + _digest(cpf))
        if session:
            idents.append("session:" + _digest(session))
        return idents


class CheckoutPixThrottle(MultiKeyThrottle):
    """PIX calls of one checkout (the page retries, the buyer reloads): per checkout, never against new purchases."""

    scope = "checkout_pix"

    def idents(self, request, view) -> list[str]:
        checkout_id = str(_body(request).get("checkout_id") or view.kwargs.get("checkout_id") or "")
        return ["checkout:" + _digest(checkout_id)] if checkout_id else []


class CheckoutPixAddressThrottle(ClientAddressThrottle):
    """A ceiling per address on PIX calls, apart from the one on new purchases."""

    scope = "checkout_pix_address"


class CheckoutCardThrottle(CheckoutPixThrottle):
    """Card attempts of one checkout: a few cards per buyer, not a card-testing loop."""

    scope = "checkout_card"


class CheckoutCardAddressThrottle(ClientAddressThrottle):
    """A ceiling per address on card attempts (card testing spreads over many checkouts)."""

    scope = "checkout_card_address"


class CouponCheckThrottle(ClientAddressThrottle):
    """The checkout page's live coupon check: per address, so codes cannot be guessed in bulk."""

    scope = "coupon_check"


class CheckoutSimulateThrottle(ClientAddressThrottle):
    """The sandbox's simulate buttons."""

    scope = "checkout_simulate"


class UnauthenticatedWebhookThrottle(ClientAddressThrottle):
    """
    Only requests that fail the webhook's authentication are counted and
    refused: a gateway re-sending a backlog after an outage must have every
    body stored (contract §3). The view says whether a request authenticates
    (`view.authenticates(request)`, a token check and nothing more).
    """

    scope = "webhook"

    def allow_request(self, request, view):
        if view.authenticates(request):
            return True
        return super().allow_request(request, view)

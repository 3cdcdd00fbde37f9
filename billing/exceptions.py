"""
Billing's domain errors. None carries HTTP: `config/api_errors.py` maps their
kinds (config/errors.py) to status codes. Gateways and services raise these.
"""

from config.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, PaymentRefused, Unavailable, UpstreamFailed


class InvalidInput(Invalid):
    """One field is wrong; the message says what to do."""

    def __init__(self, field_name: str, message: str, *, code: str = "invalid"):
        super().__init__(message, code=code, fields={field_name: [message]})


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"


class CheckoutNotFound(NotFound):
    code = "not_found"


class GuestSignInRefused(Forbidden):
    """Not the browser that paid, not an account that payment created, or no longer: the buyer signs in as usual."""

    code = "sign_in_refused"


class CouponNotFound(NotFound):
    """An unknown (or switched off) coupon code; names the `coupon` field like InvalidInput."""

    code = "coupon_unknown"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message, code=code, fields={"coupon": [message]})


class TrialNotAvailable(Conflict):
    """This person (by e-mail or CPF) already had a trial or a paid subscription: the paid plan is offered instead."""

    code = "trial_already_used"


class CheckoutNotPayable(Conflict):
    code = "checkout_not_payable"


class ChargeInProgress(Conflict):
    """Another request is issuing this checkout's charge right now: try again in a moment (never a second charge)."""

    code = "charge_in_progress"


class CustomerDetailsRequired(Invalid):
    """The checkout lacks the CPF or phone a PIX charge needs; the buyer supplies them (renewal page, /pix)."""

    code = "customer_details_required"


class CardRefused(PaymentRefused):
    """A card charge the bank refused; the message is its reason in the buyer's language. The checkout stays payable."""

    code = "card_refused"


class MarketplaceError(DomainError):
    code = "marketplace_payment_invalid"


class GatewayError(UpstreamFailed):
    """A provider failed us; the API answers with the error shape, never a traceback."""

    code = "gateway_error"


class GatewayUnavailable(Unavailable, GatewayError):
    """Timeout, 5xx, connection refused, circuit open: try again later."""

    code = "gateway_unavailable"


class GatewayRejected(GatewayError):
    """The provider answered and said no, or answered something unusable: our configuration, not the buyer."""

    code = "gateway_rejected"


class PaymentDetailsRefused(Invalid, GatewayRejected):
    """The provider refused what the buyer typed (document, phone...): the buyer can fix it (400)."""

    code = "gateway_rejected"


class WithdrawalWindowClosed(TransitionNotAllowed):
    """The WITHDRAWAL_DAYS after the first payment have passed (CDC art. 49); `closed_at` says when."""

    code = "withdrawal_window_closed"

    def __init__(self, message: str, *, closed_at):
        super().__init__(message, fields={"closed_at": [closed_at.isoformat()]})
        self.closed_at = closed_at

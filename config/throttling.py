from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class IPRateThrottle(SimpleRateThrottle):
    """
    Per-client-IP rate limit for a named scope, for anonymous and logged-in
    callers alike. The rate is read when the throttle is built (not when the
    class is imported), so settings overrides apply.
    """

    scope = None

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthThrottle(IPRateThrottle):
    scope = "auth"


class CheckoutThrottle(IPRateThrottle):
    scope = "checkout"


class WebhookThrottle(IPRateThrottle):
    scope = "webhook"

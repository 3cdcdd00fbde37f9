from django.conf import settings
from django.core.checks import Error, register

from accounts.age import DECLARATION, PROVIDERS
from config.sandbox import sandbox_allowed


@register()
def age_verification_is_known(app_configs, **kwargs):
    if settings.AGE_VERIFICATION == DECLARATION or settings.AGE_VERIFICATION in PROVIDERS:
        return []
    return [
        Error(
            f"AGE_VERIFICATION={settings.AGE_VERIFICATION!r} is neither 'declaration' nor a known provider.",
            hint=f"Use 'declaration' or one of: {', '.join(sorted(PROVIDERS))}.",
            id="accounts.E002",
        )
    ]


@register()
def age_sandbox_only_where_sandboxes_are_allowed(app_configs, **kwargs):
    """The sandbox provider confirms anyone who clicks "pass": never on a production site."""
    if settings.AGE_VERIFICATION != "sandbox" or sandbox_allowed():
        return []
    return [
        Error(
            "AGE_VERIFICATION='sandbox' confirms the age of anyone who clicks 'pass', and DEBUG is off.",
            hint="Use 'declaration' or a real provider, or set SANDBOX_GATEWAY_ALLOWED=true on a test site.",
            id="accounts.E003",
        )
    ]
